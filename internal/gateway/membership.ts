import { forbidden, notFound } from "../platform/errors.js";
import type { WorkspaceRole } from "../platform/memberships.js";
import type { Services } from "./services.js";

/**
 * The caller's role in a workspace (from the membership cache, which asks the
 * workspace service); not_found (404) when they are not a member, forbidden
 * (403) when the role is not allowed.
 */
export async function requireRole(
  services: Services,
  ctx: { caller: { token: string; userId: string } | undefined; requestId: string },
  workspaceId: string,
  allowed?: WorkspaceRole[],
): Promise<WorkspaceRole> {
  const caller = ctx.caller!;
  const role = await services.memberships.roleOf(workspaceId, caller.userId, { token: caller.token, requestId: ctx.requestId });
  if (!role) throw notFound("workspace");
  if (allowed && !allowed.includes(role)) throw forbidden(`requires the role ${allowed.join(" or ")}`);
  return role;
}
