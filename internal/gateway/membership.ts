import type { WorkspaceRole } from "../../api/contracts/workspace.js";
import { checkRole } from "../platform/tenancy.js";
import { onBehalfOf, type Services } from "./services.js";

/**
 * The caller's role in a workspace, from the membership cache, checked by
 * tenancy.ts: 404 when they are not a member, 403 when the role is not allowed.
 */
export async function requireRole(
  services: Services,
  ctx: { caller: { token: string; userId: string } | undefined; requestId: string },
  workspaceId: string,
  allowed?: WorkspaceRole[],
): Promise<WorkspaceRole> {
  const caller = ctx.caller!;
  const role = await services.memberships.roleOf(workspaceId, caller.userId, { token: caller.token, requestId: ctx.requestId });
  return checkRole(role, "workspace", allowed);
}

/** The groups of a workspace the caller belongs to (asked of the workspace service, fresh). */
export async function myGroups(
  services: Services,
  ctx: { caller: { token: string; userId: string } | undefined; requestId: string },
  workspaceId: string,
): Promise<ReadonlySet<string>> {
  const caller = ctx.caller!;
  const { items } = await services.workspace.call("listGroups", { workspace_id: workspaceId }, onBehalfOf(ctx));
  return new Set(items.filter((group) => group.member_ids.includes(caller.userId)).map((group) => group.id));
}
