import type { WorkspaceRole } from "../../api/contracts/workspace.js";
import { forbidden, notFound } from "./errors.js";
import type { OutgoingCall } from "./grpc-client.js";
import type { Principal } from "./principal.js";

/**
 * Who may do what in a workspace (ARCHITECTURE.md guarantee 9), in one place:
 * the task, export and workspace services and the gateway's realtime routes
 * all check a caller here. A non-member is told the resource does not exist
 * (404, never 403: that would confirm it exists); a member whose role is not
 * enough is told so (403).
 */

export type UserPrincipal = Extract<Principal, { kind: "user" }>;

/** Owners and admins: who may delete others' tasks and comments, edit the workspace, manage members. */
export const MANAGERS: readonly WorkspaceRole[] = ["owner", "admin"];

/** The calling user; 403 for a call that is not a user's (an internal caller on a user-only path). */
export function userOf(principal: Principal): UserPrincipal {
  if (principal.kind !== "user") throw forbidden("a user is required");
  return principal;
}

/** A role found for a caller, checked: 404 naming `what` when there is none, 403 when `allowed` leaves it out. */
export function checkRole(role: WorkspaceRole | undefined, what: string, allowed?: readonly WorkspaceRole[]): WorkspaceRole {
  if (!role) throw notFound(what);
  if (allowed && !allowed.includes(role)) throw forbidden(`requires the role ${allowed.join(" or ")}`);
  return role;
}

/** Where roles come from: the membership cache (platform/memberships.ts) in every process but the workspace service. */
export interface RoleSource {
  roleOf(workspaceId: string, userId: string, call: OutgoingCall): Promise<WorkspaceRole | undefined>;
}

export class Tenancy {
  constructor(private readonly roles: RoleSource) {}

  /** The caller and their role in `workspaceId`, checked as `checkRole` does. */
  async member(
    principal: Principal,
    workspaceId: string,
    options: { what?: string; allowed?: readonly WorkspaceRole[]; requestId?: string } = {},
  ): Promise<{ caller: UserPrincipal; role: WorkspaceRole }> {
    const caller = userOf(principal);
    const role = await this.roles.roleOf(workspaceId, caller.userId, { token: caller.token, requestId: options.requestId });
    return { caller, role: checkRole(role, options.what ?? "workspace", options.allowed) };
  }

  /** Whether a user (not the caller) is a member: assignees, watchers. Asked as this process. */
  async isMember(workspaceId: string, userId: string): Promise<boolean> {
    return (await this.roles.roleOf(workspaceId, userId, { internal: true })) !== undefined;
  }
}
