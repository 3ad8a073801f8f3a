import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AppError } from "../platform/errors.js";
import type { Redis } from "../platform/redis.js";
import { digest } from "./refresh-tokens.js";
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const invalidResetToken = () => new AppError("invalid_token", "the reset token is invalid, expired or already used");

/**
 * Password-reset tokens: 32 random bytes, single use, valid `ttlSeconds`, kept in
 * Redis as SHA-256 digests only (as refresh tokens are). Each user's open tokens
 * are listed, so that a completed reset spends every other one too.
 */
export class PasswordResets {
  constructor(
    private readonly redis: Redis,
    readonly ttlSeconds: number,
  ) {}

  async issue(userId: string): Promise<string> {
    const token = randomBytes(32).toString("base64url");
    const kept = digest(token);
    await this.redis
      .multi()
      .set(this.tokenKey(kept), userId, "EX", this.ttlSeconds)
      .sadd(this.userKey(userId), kept)
      .expire(this.userKey(userId), this.ttlSeconds)
      .exec();
    return token;
  }

  /** Spends `token` (atomically: one use wins) and returns its user; 400 invalid_token otherwise. */
  async consume(token: string): Promise<string> {
    if (!TOKEN_PATTERN.test(token)) throw invalidResetToken();
    const userId = await this.redis.getdel(this.tokenKey(digest(token)));
    if (!userId) throw invalidResetToken();
    return userId;
  }

  /** Spends every open token of a user (after a reset, or when the account is deleted). */
  async revokeAll(userId: string): Promise<void> {
    const digests = await this.redis.smembers(this.userKey(userId));
    await this.redis.del(this.userKey(userId), ...digests.map((d) => this.tokenKey(d)));
  }

  private tokenKey(tokenDigest: string): string {
    return `pwreset:${tokenDigest}`;
  }

  private userKey(userId: string): string {
    return `pwreset-user:${userId}`;
  }
}

/**
 * Unsubscribe tokens (the links of RFC 8058 one-click unsubscribe in every mail):
 * `<user_id>.<HMAC-SHA256(key, user_id)>`, stateless and without expiry, as mail
 * providers expect the link to keep working. The key is derived from the signing key
 * (SigningKey.derive), so rotating that key retires the links of mails already sent.
 */
export class UnsubscribeTokens {
  constructor(private readonly key: Buffer) {}

  tokenFor(userId: string): string {
    return `${userId}.${this.mac(userId).toString("base64url")}`;
  }

  /** The user of a valid token; undefined for a forged or malformed one. */
  userOf(token: string): string | undefined {
    const [userId, mac, extra] = token.split(".");
    if (!userId || !mac || extra !== undefined || !/^[0-9a-f-]{36}$/.test(userId)) return undefined;
    const given = Buffer.from(mac, "base64url");
    const expected = this.mac(userId);
    return given.length === expected.length && timingSafeEqual(given, expected) ? userId : undefined;
  }

  private mac(userId: string): Buffer {
    return createHmac("sha256", this.key).update(`unsubscribe:${userId}`).digest();
  }
}
