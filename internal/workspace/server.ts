import { WorkspaceServiceService } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import type { Handlers } from "../platform/grpc-server.js";
import type { Groups } from "./groups.js";
import type { WorkspaceService } from "./service.js";

/** gRPC handlers of taskboard.workspace.v1.WorkspaceService. */
export function workspaceHandlers(service: WorkspaceService, groups: Groups): Handlers<typeof WorkspaceServiceService> {
  return {
    createWorkspace: { access: "user", handle: (req, ctx) => service.create(ctx.principal, req) },
    listWorkspaces: { access: "user", handle: (req, ctx) => service.list(ctx.principal, req) },
    getWorkspace: { access: "user", handle: (req, ctx) => service.get(ctx.principal, req) },
    updateWorkspace: { access: "user", handle: (req, ctx) => service.update(ctx.principal, req) },
    deleteWorkspace: {
      access: "user",
      handle: async (req, ctx) => {
        await service.delete(ctx.principal, req);
        return {};
      },
    },
    addMember: { access: "user", handle: (req, ctx) => service.addMember(ctx.principal, req) },
    listMembers: { access: "user", handle: (req, ctx) => service.listMembers(ctx.principal, req) },
    updateMember: { access: "user", handle: (req, ctx) => service.updateMember(ctx.principal, req) },
    removeMember: {
      access: "user",
      handle: async (req, ctx) => {
        await service.removeMember(ctx.principal, req);
        return {};
      },
    },
    // A user asks for their own membership; the gateway (realtime admission by ticket) and
    // the task service (is an assignee a member?) ask about anyone.
    getMembership: {
      access: { user: true, callers: ["gateway", "task"] },
      handle: (req, ctx) => service.membership(ctx.principal, req),
    },
    // Whole member lists: notify's recipients.
    listMemberIds: { access: { callers: ["notify"] }, handle: (req) => service.memberIds(req) },
    createGroup: { access: "user", handle: (req, ctx) => groups.create(ctx.principal, req) },
    // Every group with its members for the gateway, whose rooms deliver group messages.
    listGroups: { access: { user: true, callers: ["gateway"] }, handle: (req, ctx) => groups.list(ctx.principal, req) },
    deleteGroup: {
      access: "user",
      handle: async (req, ctx) => {
        await groups.delete(ctx.principal, req);
        return {};
      },
    },
    addGroupMember: { access: "user", handle: (req, ctx) => groups.setMember(ctx.principal, req, true) },
    removeGroupMember: { access: "user", handle: (req, ctx) => groups.setMember(ctx.principal, req, false) },
  };
}
