import { Tenancy } from "../platform/tenancy.js";
import type { WorkspaceRole } from "../../api/contracts/workspace.js";
import type { Services } from "./services.js";

/**
 * The caller's role in a workspace, checked by tenancy.ts against the
 * membership cache: 404 when they are not a member, 403 when the role is not allowed.
 */
export async function requireRole(
  services: Services,
  ctx: { caller: { token: string; userId: string; role: "user" | "admin" } | undefined; requestId: string },
  workspaceId: string,
  allowed?: WorkspaceRole[],
): Promise<WorkspaceRole> {
  const caller = ctx.caller!;
  const tenancy = new Tenancy(services.memberships);
  const principal = { kind: "user" as const, userId: caller.userId, role: caller.role, token: caller.token };
  return (await tenancy.member(principal, workspaceId, { allowed, requestId: ctx.requestId })).role;
}
