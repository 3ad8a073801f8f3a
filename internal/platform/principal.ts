export type UserRole = "user" | "admin";

/**
 * The processes that call each other. Each holds its own internal credential
 * (INTERNAL_SECRET); a server knows the callers by the digests of theirs
 * (INTERNAL_CALLERS, see internal-callers.ts).
 */
export const CALLERS = ["gateway", "auth", "workspace", "task", "export", "notify", "webhooks"] as const;
export type Caller = (typeof CALLERS)[number];

/** Who is calling: a user (with their verified token), another process (by its credential), or nobody. */
export type Principal =
  | { kind: "user"; userId: string; role: UserRole; token: string }
  | { kind: "internal"; caller: Caller }
  | { kind: "anonymous" };

/**
 * What a gRPC method admits, declared beside the method: anyone ("public"), a
 * user by access token ("user"), or the processes named in `callers` by their
 * own credentials (and users too with `user: true`). No other caller passes.
 */
export type Access = "public" | "user" | { callers: readonly Caller[]; user?: true };

/** Whether `access` admits `principal`. */
export function admits(access: Access, principal: Principal): boolean {
  if (access === "public") return true;
  if (principal.kind === "user") return access === "user" || (typeof access === "object" && access.user === true);
  if (principal.kind === "internal") return typeof access === "object" && access.callers.includes(principal.caller);
  return false;
}

