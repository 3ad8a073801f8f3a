import { json, noContent, route, type Route } from "../router.js";
import { presentMember, presentPage, presentWorkspace } from "../presenters.js";
import { addMemberBody, createWorkspaceBody, pageQuery, updateMemberBody, updateWorkspaceBody } from "../schemas.js";
import { onBehalfOf, type Services } from "../services.js";

export function workspaceRoutes(services: Services): Route[] {
  const ws = services.workspace;
  return [
    route({
      method: "post",
      path: "/workspaces",
      auth: "user",
      body: createWorkspaceBody,
      handle: async (ctx) => json(201, presentWorkspace(await ws.call("createWorkspace", ctx.body, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/workspaces",
      auth: "user",
      query: pageQuery,
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
      handle: async (ctx) =>
        json(200, presentWorkspace(await ws.call("getWorkspace", { workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/workspaces/{workspace_id}",
      auth: "user",
      body: updateWorkspaceBody,
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
      handle: async (ctx) => {
        await ws.call("deleteWorkspace", { workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/members",
      auth: "user",
      body: addMemberBody,
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
      body: updateMemberBody,
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
