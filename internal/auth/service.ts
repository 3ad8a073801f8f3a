import { randomUUID } from "node:crypto";
import type { PasswordReset, TokenPair, UnsubscribeToken, User, UserList } from "../../api/gen/taskboard/auth/v1/auth.js";
import { AppError, badRequest, forbidden, notFound, unauthorized } from "../platform/errors.js";
import { decodeCursor, pageOf, pageSize } from "../platform/cursor.js";
import type { Outbox } from "../platform/outbox.js";
import { PG_UNIQUE_VIOLATION, pgErrorCode } from "../platform/postgres.js";
import type { Principal } from "../platform/principal.js";
import type { RateLimiter } from "../platform/rate-limit.js";
import { parseInput } from "../platform/validate.js";
import { z } from "zod";
import { PasswordResetConfirmation, PasswordResetRequest, Register, UpdateUser, UserRole } from "../../api/contracts/user.js";
import type { Logger } from "../platform/logger.js";
import { invalidResetToken, type PasswordResets, type UnsubscribeTokens } from "./account-tokens.js";
import { hashPassword, verifyPassword } from "./passwords.js";
import type { RefreshTokenFamilies } from "./refresh-tokens.js";
import type { SigningKey } from "./signing-key.js";
import { toUser, type UserRow, type UserStore } from "./store.js";

/** The single-use and signed tokens of account mails. */
export interface AccountTokens {
  resets: PasswordResets;
  unsubscribe: UnsubscribeTokens;
}

export interface AuthRules {
  accessTokenTtlSeconds: number;
  rateLimitWindowSeconds: number;
  rateLimitPerIp: number;
  rateLimitPerEmail: number;
  /** Changes of one's own e-mail address per user per hour (admins are not counted). */
  emailChangesPerHour: number;
}

// The contracts' fields (api/contracts/user.ts); the gRPC requests carry more (client_ip, user_id).
const newUserInput = z.object({ ...Register.shape, role: UserRole.default("user") });
const userChangesInput = z.object(UpdateUser.shape);

/** The rules of users and sessions. */
/** Users one lookup may ask for (a page of members is at most 200). */
const MAX_LOOKUP = 500;

export class AuthService {
  constructor(
    private readonly store: UserStore,
    private readonly outbox: Outbox,
    private readonly key: SigningKey,
    private readonly families: RefreshTokenFamilies,
    private readonly limiter: RateLimiter,
    private readonly rules: AuthRules,
    private readonly accounts: AccountTokens,
    private readonly log: Logger,
  ) {}

  jwks(): string {
    return JSON.stringify(this.key.jwks);
  }

  /**
   * Registers a user. An address that already has an account is answered exactly as a
   * new one (201 and a user of the same shape, after the same password hashing), but
   * nothing is stored or published: nobody learns from register whether an address has
   * an account, and the account's owner keeps it (the new password logs nobody in).
   */
  async register(input: { name: string; email: string; password: string; client_ip: string }): Promise<User> {
    await this.limit("register", input.email, input.client_ip);
    const user = parseInput(newUserInput, { ...input, role: undefined });
    try {
      return await this.create(user, undefined);
    } catch (error) {
      if (!(error instanceof AppError && error.code === "email_taken")) throw error;
      return { id: randomUUID(), name: user.name, email: user.email, role: "user", email_notifications: true, created_at: new Date().toISOString() };
    }
  }

  async login(input: { email: string; password: string; client_ip: string }): Promise<TokenPair> {
    await this.limit("login", input.email, input.client_ip);
    const row = await this.store.byEmail(input.email.trim());
    const valid = await verifyPassword(row?.password_hash, input.password);
    if (!row || !valid) throw unauthorized("invalid e-mail or password");
    return this.issue(row, await this.families.start(row.id));
  }

  /**
   * Asks for a reset mail. Every address gets the same answer after the same work
   * (the rate limits and one lookup); for a known one, user.password_reset_requested
   * is then written in the background (notify mails the token, which never enters the
   * event stream), so the answer's timing does not tell whether the address exists.
   */
  async requestPasswordReset(input: { email: string; client_ip: string }): Promise<void> {
    await this.limit("password-reset", input.email, input.client_ip);
    const { email } = parseInput(PasswordResetRequest, { email: input.email });
    const row = await this.store.byEmail(email);
    if (!row) return;
    void this.outbox
      .transaction(async (_tx, emit) => {
        emit({ type: "user.password_reset_requested", user_id: row.id, aggregate_id: row.id, data: { id: row.id } });
      })
      .catch((error: unknown) => this.log.error({ err: error, user_id: row.id }, "recording a password reset request failed"));
  }

  /** Sets a new password with a reset token: the policy first (a refused password spends nothing), then the token. */
  async confirmPasswordReset(input: { token: string; password: string; client_ip: string }): Promise<void> {
    await this.limit("password-reset-confirm", undefined, input.client_ip);
    const { token, password } = parseInput(PasswordResetConfirmation, { token: input.token, password: input.password });
    const userId = await this.accounts.resets.consume(token);
    const password_hash = await hashPassword(password);
    await this.outbox.transaction(async (tx, emit) => {
      const updated = await this.store.update(tx, userId, { password_hash });
      if (!updated) throw invalidResetToken();
      emit({ type: "user.updated", user_id: userId, aggregate_id: userId, data: { ...toUser(updated) } });
    });
    // Every session ends, and every other reset link dies with this one.
    await Promise.all([this.families.revokeAll(userId), this.accounts.resets.revokeAll(userId)]);
  }

  /** For notify: a fresh reset token of the user of a user.password_reset_requested event. */
  async issuePasswordReset(userId: string): Promise<PasswordReset> {
    const row = z.uuid().safeParse(userId).success ? await this.store.byId(userId) : undefined;
    if (!row) throw notFound("user");
    const token = await this.accounts.resets.issue(row.id);
    return { user: toUser(row), token, expires_in: this.accounts.resets.ttlSeconds };
  }

  /** One-click unsubscribe: e-mail notifications off for the token's user. */
  async unsubscribe(token: string): Promise<User> {
    const userId = this.accounts.unsubscribe.userOf(token);
    if (!userId) throw new AppError("invalid_token", "the unsubscribe link is invalid");
    const row = await this.outbox.transaction(async (tx, emit) => {
      const updated = await this.store.update(tx, userId, { email_notifications: false });
      if (!updated) throw new AppError("invalid_token", "the unsubscribe link is invalid");
      emit({ type: "user.updated", user_id: userId, aggregate_id: userId, data: { ...toUser(updated) } });
      return updated;
    });
    return toUser(row);
  }

  /** For notify: the unsubscribe token of each user (for the links in its mails). */
  unsubscribeTokens(userIds: string[]): UnsubscribeToken[] {
    if (userIds.length > MAX_LOOKUP) throw badRequest(`at most ${MAX_LOOKUP} user ids`);
    return userIds.filter((id) => z.uuid().safeParse(id).success).map((id) => ({ user_id: id, token: this.accounts.unsubscribe.tokenFor(id) }));
  }

  async refresh(refreshToken: string): Promise<TokenPair> {
    const { userId, token } = await this.families.rotate(refreshToken);
    const row = await this.store.byId(userId);
    if (!row) {
      await this.families.revokeAll(userId);
      throw unauthorized("invalid or expired refresh token");
    }
    return this.issue(row, token);
  }

  async logout(principal: Principal, refreshToken: string): Promise<void> {
    const owner = await this.families.ownerOf(refreshToken);
    if (principal.kind !== "user" || principal.userId !== owner) throw unauthorized("invalid or expired refresh token");
    await this.families.revoke(refreshToken);
  }

  async createUser(principal: Principal, input: { name: string; email: string; password: string; role?: string | undefined }) {
    this.requireAdmin(principal);
    return this.create(parseInput(newUserInput, input), principal);
  }

  async listUsers(principal: Principal, page: { limit: number; cursor: string }): Promise<UserList> {
    this.requireAdmin(principal);
    const limit = pageSize(page.limit);
    const rows = await this.store.page(decodeCursor(page.cursor), limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.seq);
    return { items: items.map(toUser), next_cursor };
  }

  async getUser(principal: Principal, userId: string): Promise<User> {
    this.requireSelfOrAdmin(principal, userId);
    const row = await this.store.byId(userId);
    if (!row) throw notFound("user");
    return toUser(row);
  }

  async updateUser(
    principal: Principal,
    input: { user_id: string; name?: string; email?: string; password?: string; email_notifications?: boolean; role?: string },
  ): Promise<User> {
    this.requireSelfOrAdmin(principal, input.user_id);
    const { user_id, ...rest } = input;
    const changes = parseInput(userChangesInput, rest);
    const admin = principal.kind === "user" && principal.role === "admin";
    if (changes.role !== undefined && !admin) throw forbidden("only an admin can change a role");
    if (changes.email !== undefined && !admin) await this.limitEmailChange(user_id, changes.email);
    const password_hash = changes.password === undefined ? undefined : await hashPassword(changes.password);
    const row = await this.writeUser(() =>
      this.outbox.transaction(async (tx, emit) => {
        const updated = await this.store.update(tx, user_id, {
          name: changes.name,
          email: changes.email,
          email_notifications: changes.email_notifications,
          role: changes.role,
          password_hash,
        });
        if (!updated) throw notFound("user");
        emit({ type: "user.updated", user_id: actorId(principal), aggregate_id: updated.id, data: { ...toUser(updated) } });
        return updated;
      }),
    );
    // A new password ends every session.
    if (password_hash !== undefined) await this.families.revokeAll(row.id);
    return toUser(row);
  }

  async deleteUser(principal: Principal, userId: string): Promise<void> {
    this.requireSelfOrAdmin(principal, userId);
    await this.outbox.transaction(async (tx, emit) => {
      if (!(await this.store.delete(tx, userId))) throw notFound("user");
      emit({ type: "user.deleted", user_id: actorId(principal), aggregate_id: userId, data: { id: userId } });
    });
    await Promise.all([this.families.revokeAll(userId), this.accounts.resets.revokeAll(userId)]);
  }

  async lookupUsers(ids: string[], emails: string[]): Promise<User[]> {
    if (ids.length + emails.length > MAX_LOOKUP) throw badRequest(`at most ${MAX_LOOKUP} user ids and e-mail addresses per lookup`);
    if (emails.some((email) => email.length > 254)) throw badRequest("an e-mail address is at most 254 characters");
    const validIds = ids.filter((id) => z.uuid().safeParse(id).success);
    if (validIds.length === 0 && emails.length === 0) return [];
    return (await this.store.byIdsOrEmails(validIds, emails)).map(toUser);
  }

  /** Creates the system admin from BOOTSTRAP_ADMIN_*, or makes the existing account an admin. */
  async bootstrapAdmin(email: string, password: string): Promise<User> {
    const existing = await this.store.byEmail(email);
    if (existing) {
      if (existing.role === "admin") return toUser(existing);
      const row = await this.outbox.transaction(async (tx, emit) => {
        const updated = (await this.store.update(tx, existing.id, { role: "admin" }))!;
        emit({ type: "user.updated", aggregate_id: updated.id, data: { ...toUser(updated) } });
        return updated;
      });
      return toUser(row);
    }
    const user = parseInput(newUserInput, { name: "Administrator", email, password, role: "admin" });
    return this.create(user, undefined);
  }

  private async create(input: z.output<typeof newUserInput>, creator: Principal | undefined): Promise<User> {
    const password_hash = await hashPassword(input.password);
    const id = randomUUID();
    const row = await this.writeUser(() =>
      this.outbox.transaction(async (tx, emit) => {
        const inserted = await this.store.insert(tx, { id, name: input.name, email: input.email, password_hash, role: input.role });
        emit({
          type: "user.registered",
          user_id: creator ? actorId(creator) : id,
          aggregate_id: id,
          data: { ...toUser(inserted) },
        });
        return inserted;
      }),
    );
    return toUser(row);
  }

  /** Maps the e-mail uniqueness violation to 409. */
  private async writeUser(write: () => Promise<UserRow>): Promise<UserRow> {
    try {
      return await write();
    } catch (error) {
      if (pgErrorCode(error) === PG_UNIQUE_VIOLATION) throw new AppError("email_taken", "e-mail address already registered");
      throw error;
    }
  }

  private async issue(row: UserRow, refreshToken: string): Promise<TokenPair> {
    const access = await this.key.signAccessToken(row, this.rules.accessTokenTtlSeconds);
    return {
      access_token: access,
      refresh_token: refreshToken,
      expires_in: this.rules.accessTokenTtlSeconds,
      token_type: "Bearer",
    };
  }

  /** The per-IP and (with an address) per-address limits of the unauthenticated account calls. */
  private limit(action: "login" | "register" | "password-reset" | "password-reset-confirm", email: string | undefined, clientIp: string): Promise<void> {
    const windowMs = this.rules.rateLimitWindowSeconds * 1000;
    return this.limiter.hit([
      { key: `${action}:ip:${clientIp || "unknown"}`, max: this.rules.rateLimitPerIp, windowMs },
      ...(email === undefined ? [] : [{ key: `${action}:email:${email.trim().toLowerCase().slice(0, 254)}`, max: this.rules.rateLimitPerEmail, windowMs }]),
    ]);
  }

  /**
   * Counts an attempt to move a user's address elsewhere (saving the same address again
   * is free). Whether it succeeds or meets a taken address (409) it counts: the 409 says
   * the address has an account, so the attempts must stay few.
   */
  private async limitEmailChange(userId: string, email: string): Promise<void> {
    const current = await this.store.byId(userId);
    if (!current || current.email.toLowerCase() === email) return;
    await this.limiter.hit([{ key: `email-change:user:${userId}`, max: this.rules.emailChangesPerHour, windowMs: 3_600_000 }]);
  }

  private requireAdmin(principal: Principal): void {
    if (principal.kind !== "user" || principal.role !== "admin") throw forbidden("admin only");
  }

  private requireSelfOrAdmin(principal: Principal, userId: string): void {
    if (principal.kind === "user" && (principal.role === "admin" || principal.userId === userId)) return;
    throw forbidden("only the user themself or an admin may do this");
  }
}

function actorId(principal: Principal): string | undefined {
  return principal.kind === "user" ? principal.userId : undefined;
}
