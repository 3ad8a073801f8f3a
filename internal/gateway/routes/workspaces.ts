import { json, noContent, route, type Route } from "../router.js";
import { presentMember, presentPage, presentWorkspace } from "../presenters.js";
import { pageQuery } from "../../../api/contracts/fields.js";
import { AddMember, Member, MemberList, UpdateMember } from "../../../api/contracts/member.js";
import { CreateWorkspace, UpdateWorkspace, Workspace, WorkspaceList } from "../../../api/contracts/workspace.js";
import { onBehalfOf, type Services } from "../services.js";

export function workspaceRoutes(services: Services): Route[] {
  const ws = services.workspace;
  return [
    route({
      method: "post",
      path: "/workspaces",
      auth: "user",
      body: CreateWorkspace,
      doc: {
        operationId: "createWorkspace",
        summary: "Create a workspace",
        description: "Who: any user. The caller becomes its owner.",
        tag: "Workspaces",
        ok: { status: 201, description: "The new workspace (`role` is \"owner\").", schema: Workspace },
      },
      handle: async (ctx) => json(201, presentWorkspace(await ws.call("createWorkspace", ctx.body, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/workspaces",
      auth: "user",
      query: pageQuery,
      doc: {
        operationId: "listWorkspaces",
        summary: "List the caller's workspaces",
        description: "Who: any user. Only workspaces the caller is a member of.",
        tag: "Workspaces",
        ok: { status: 200, description: "A page of workspaces.", schema: WorkspaceList },
      },
      handle: async (ctx) => {
        const list = await ws.call(
          "listWorkspaces",
          { limit: ctx.query.limit ?? 0, cursor: ctx.query.cursor ?? "" },
          onBehalfOf(ctx),
        );
        return json(200, presentPage(list, presentWorkspace));
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}",
      auth: "user",
      doc: {
        operationId: "getWorkspace",
        summary: "Get a workspace",
        description: "Who: member. 404 for non-members.",
        tag: "Workspaces",
        ok: { status: 200, description: "The workspace.", schema: Workspace },
      },
      handle: async (ctx) =>
        json(200, presentWorkspace(await ws.call("getWorkspace", { workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/workspaces/{workspace_id}",
      auth: "user",
      body: UpdateWorkspace,
      doc: {
        operationId: "updateWorkspace",
        summary: "Update a workspace",
        description: "Who: owner, admin (workspace roles). Partial update.",
        tag: "Workspaces",
        ok: { status: 200, description: "The updated workspace.", schema: Workspace },
      },
      handle: async (ctx) =>
        json(
          200,
          presentWorkspace(
            await ws.call("updateWorkspace", { ...ctx.body, workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx)),
          ),
        ),
    }),
    route({
      method: "delete",
      path: "/workspaces/{workspace_id}",
      auth: "user",
      doc: {
        operationId: "deleteWorkspace",
        summary: "Delete a workspace",
        description: "Who: owner (workspace role).",
        tag: "Workspaces",
        ok: { status: 204, description: "Deleted." },
      },
      handle: async (ctx) => {
        await ws.call("deleteWorkspace", { workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/members",
      auth: "user",
      body: AddMember,
      doc: {
        operationId: "addMember",
        summary: "Add a member",
        description: "Who: owner, admin (workspace roles). Identify the user by exactly one of `user_id` or `email`. 404 when the workspace or the user does not exist (or the caller is not a member); 409 when the user is already a member.",
        tag: "Members",
        ok: { status: 201, description: "The new member.", schema: Member },
        errors: [409, 422],
      },
      handle: async (ctx) => {
        const who = ctx.body.user_id
          ? { $case: "user_id" as const, value: ctx.body.user_id }
          : { $case: "email" as const, value: ctx.body.email! };
        const member = await ws.call(
          "addMember",
          { workspace_id: ctx.params.workspace_id!, who, role: ctx.body.role },
          onBehalfOf(ctx),
        );
        return json(201, presentMember(member));
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/members",
      auth: "user",
      query: pageQuery,
      doc: {
        operationId: "listMembers",
        summary: "List the members of a workspace",
        description: "Who: member.",
        tag: "Members",
        ok: { status: 200, description: "A page of members.", schema: MemberList },
      },
      handle: async (ctx) => {
        const list = await ws.call(
          "listMembers",
          { workspace_id: ctx.params.workspace_id!, page: { limit: ctx.query.limit ?? 0, cursor: ctx.query.cursor ?? "" } },
          onBehalfOf(ctx),
        );
        return json(200, presentPage(list, presentMember));
      },
    }),
    route({
      method: "put",
      path: "/workspaces/{workspace_id}/members/{user_id}",
      auth: "user",
      body: UpdateMember,
      doc: {
        operationId: "updateMemberRole",
        summary: "Change a member's role",
        description: "Who: owner (workspace role). The owner's own role cannot be changed (403).",
        tag: "Members",
        ok: { status: 200, description: "The updated member.", schema: Member },
      },
      handle: async (ctx) => {
        const member = await ws.call(
          "updateMember",
          { workspace_id: ctx.params.workspace_id!, user_id: ctx.params.user_id!, role: ctx.body.role },
          onBehalfOf(ctx),
        );
        return json(200, presentMember(member));
      },
    }),
    route({
      method: "delete",
      path: "/workspaces/{workspace_id}/members/{user_id}",
      auth: "user",
      doc: {
        operationId: "removeMember",
        summary: "Remove a member (or leave)",
        description: "Who: owner, admin (workspace roles), or the member themself to leave. The owner cannot be removed (403).",
        tag: "Members",
        ok: { status: 204, description: "Removed." },
      },
      handle: async (ctx) => {
        await ws.call(
          "removeMember",
          { workspace_id: ctx.params.workspace_id!, user_id: ctx.params.user_id! },
          onBehalfOf(ctx),
        );
        return noContent();
      },
    }),
  ];
}
