export type UserRole = "user" | "admin";

/** Who is calling: a user (with their verified token), another service, or nobody. */
export type Principal =
  | { kind: "user"; userId: string; role: UserRole; token: string }
  | { kind: "internal" }
  | { kind: "anonymous" };

/** What a gRPC method requires of its caller. */
export type Access = "public" | "user" | "internal" | "user-or-internal";

/** The user a call acts for; throws for non-user principals (a programming error). */
export function actingUser(principal: Principal): Extract<Principal, { kind: "user" }> {
  if (principal.kind !== "user") throw new Error(`expected a user principal, got ${principal.kind}`);
  return principal;
}
