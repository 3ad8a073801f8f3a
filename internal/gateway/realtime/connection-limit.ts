import type { Logger } from "../../platform/logger.js";
import type { Redis } from "../../platform/redis.js";

// KEYS[1] the user's connections: a sorted set of "<replica>|<connection>" scored by expiry.
// ARGV: member, now, expiry, max, key ttl ms. Drops expired entries (a dead replica's), then
// takes a slot if fewer than max are held. Returns 1 when taken.
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

export interface ConnectionLimitOptions {
  replicaId: string;
  /** Open connections (WebSocket and SSE) a user may hold across every replica. */
  maxPerUser: number;
  /** A dead replica's slots are free again after this long. */
  ttlMs: number;
}

/**
 * At most `maxPerUser` real-time connections per user across every gateway
 * replica: one Redis sorted set per user, one entry per open connection scored
 * by its expiry. The replica refreshes its entries (every third of the TTL)
 * while they are open and removes them when they close; a replica that dies
 * stops refreshing, and its entries stop counting when they expire, like
 * presence. When Redis cannot answer, connections are admitted (the limit
 * guards against abuse; it must not take real time down with Redis) and not
 * counted.
 */
export class ConnectionLimit {
  private readonly local = new Map<string, Set<string>>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly options: ConnectionLimitOptions,
    private readonly log: Logger,
  ) {
    this.heartbeat = setInterval(() => void this.refresh(), Math.max(1_000, options.ttlMs / 3));
    this.heartbeat.unref();
  }

  /**
   * What a refused client is told to wait (`Retry-After`, seconds): a slot frees when one
   * of the user's connections closes, and at the latest when the entry of one that
   * vanished (its replica died) expires.
   */
  get retryAfterSeconds(): number {
    return Math.ceil(this.options.ttlMs / 1000);
  }

  /** Takes a slot for a new connection; false when the user already holds the maximum. */
  async acquire(userId: string, connectionId: string): Promise<boolean> {
    const now = Date.now();
    let taken: number;
    try {
      taken = (await this.redis.eval(
        ACQUIRE,
        1,
        key(userId),
        this.member(connectionId),
        String(now),
        String(now + this.options.ttlMs),
        String(this.options.maxPerUser),
        String(this.options.ttlMs),
      )) as number;
    } catch (error) {
      this.log.warn({ err: error }, "connection limit unavailable; admitting without counting");
      return true;
    }
    if (taken !== 1) return false;
    let mine = this.local.get(userId);
    if (!mine) this.local.set(userId, (mine = new Set()));
    mine.add(connectionId);
    return true;
  }

  /** Frees a connection's slot (safe for one that never took one). */
  release(userId: string, connectionId: string): void {
    const mine = this.local.get(userId);
    if (!mine?.delete(connectionId)) return;
    if (mine.size === 0) this.local.delete(userId);
    this.redis.zrem(key(userId), this.member(connectionId)).catch((error: unknown) => {
      // The entry expires by itself when it is not refreshed.
      this.log.debug({ err: error }, "connection slot not released; it expires");
    });
  }

  close(): void {
    clearInterval(this.heartbeat);
  }

  private async refresh(): Promise<void> {
    if (this.local.size === 0) return;
    const expiry = String(Date.now() + this.options.ttlMs);
    const pipeline = this.redis.pipeline();
    for (const [userId, connections] of this.local) {
      const entries = [...connections].flatMap((id) => [expiry, this.member(id)]);
      pipeline.zadd(key(userId), ...entries).pexpire(key(userId), this.options.ttlMs);
    }
    await pipeline.exec().catch((error: unknown) => this.log.warn({ err: error }, "connection slots not refreshed"));
  }

  private member(connectionId: string): string {
    return `${this.options.replicaId}|${connectionId}`;
  }
}

function key(userId: string): string {
  return `wsconn:${userId}`;
}
