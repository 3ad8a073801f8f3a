import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "../platform/redis.js";
import { unauthorized } from "../platform/errors.js";

// KEYS[1] family hash; ARGV: presented secret hash, next secret hash, ttl ms.
// A presented token that is not the family's current one is a reuse: the
// family is revoked, whoever holds its newer token.
const ROTATE = `
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return {'unknown'} end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return {'revoked'} end
if redis.call('HGET', KEYS[1], 'current') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {'reused', user}
end
redis.call('HSET', KEYS[1], 'current', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'ok', user}
`;

const TOKEN_PATTERN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

/** How auth keeps a bearer secret (refresh and password-reset tokens): its SHA-256, never the secret. */
export const digest = (secret: string) => createHash("sha256").update(secret).digest("base64url");

/**
 * Refresh tokens in families (one per login), kept in Redis as hashes only.
 * Each refresh spends the token and issues the next of its family; presenting
 * a spent token revokes the whole family. Tokens are `<family>.<secret>`.
 */
export class RefreshTokenFamilies {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  /** Starts a family for a fresh login; returns its first token. */
  async start(userId: string): Promise<string> {
    const family = randomBytes(16).toString("base64url");
    const secret = randomBytes(32).toString("base64url");
    const ttlMs = this.ttlSeconds * 1000;
    await this.redis
      .multi()
      .hset(this.familyKey(family), { user: userId, current: digest(secret), revoked: "0" })
      .pexpire(this.familyKey(family), ttlMs)
      .sadd(this.userKey(userId), family)
      .pexpire(this.userKey(userId), ttlMs)
      .exec();
    return `${family}.${secret}`;
  }

  /** Spends `token` and returns the user and the family's next token; 401 if unknown, revoked or reused. */
  async rotate(token: string): Promise<{ userId: string; token: string }> {
    const { family, secret } = this.parse(token);
    const next = randomBytes(32).toString("base64url");
    const ttlMs = this.ttlSeconds * 1000;
    const [state, userId] = (await this.redis.eval(
      ROTATE,
      1,
      this.familyKey(family),
      digest(secret),
      digest(next),
      String(ttlMs),
    )) as [string, string | undefined];
    if (state === "reused") throw unauthorized("refresh token reuse detected; the session has been revoked");
    if (state !== "ok" || !userId) throw unauthorized("invalid or expired refresh token");
    await this.redis.pexpire(this.userKey(userId), ttlMs);
    return { userId, token: `${family}.${next}` };
  }

  /** The user a token's family belongs to; 401 if the family is unknown. */
  async ownerOf(token: string): Promise<string> {
    const { family } = this.parse(token);
    const userId = await this.redis.hget(this.familyKey(family), "user");
    if (!userId) throw unauthorized("invalid or expired refresh token");
    return userId;
  }

  /** Revokes the family of `token`. */
  async revoke(token: string): Promise<void> {
    const { family } = this.parse(token);
    await this.redis
      .multi()
      .hset(this.familyKey(family), "revoked", "1")
      .pexpire(this.familyKey(family), this.ttlSeconds * 1000)
      .exec();
  }

  /** Revokes every family of a user (deletion, password change). */
  async revokeAll(userId: string): Promise<void> {
    const families = await this.redis.smembers(this.userKey(userId));
    if (families.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const family of families) {
      pipeline.hset(this.familyKey(family), "revoked", "1").pexpire(this.familyKey(family), this.ttlSeconds * 1000);
    }
    pipeline.del(this.userKey(userId));
    await pipeline.exec();
  }

  private parse(token: string): { family: string; secret: string } {
    const match = TOKEN_PATTERN.exec(token);
    if (!match) throw unauthorized("invalid or expired refresh token");
    return { family: match[1]!, secret: match[2]! };
  }

  private familyKey(family: string): string {
    return `rf:${family}`;
  }

  private userKey(userId: string): string {
    return `ru:${userId}`;
  }
}
