import { WorkspaceServiceService } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import type { Handlers } from "../platform/grpc-server.js";
import type { WorkspaceService } from "./service.js";

/** gRPC handlers of taskboard.workspace.v1.WorkspaceService. */
export function workspaceHandlers(service: WorkspaceService): Handlers<typeof WorkspaceServiceService> {
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
  };
}
