import type { Redis } from "./redis.js";
import { AppError } from "./errors.js";

// INCR the window's counter; set its expiry on first use. Returns {count, ttl ms}.
const SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return {count, ttl}
`;

export interface Limit {
  /** Key of what is limited, e.g. "login:ip:10.0.0.1". */
  key: string;
  max: number;
  windowMs: number;
}

/** Fixed-window rate limits in Redis, shared by every replica. */
export class RateLimiter {
  constructor(private readonly redis: Redis) {}

  /** Counts one attempt against every limit; throws rate_limited (with retry_after) when one is exceeded. */
  async hit(limits: Limit[]): Promise<void> {
    let retryAfterMs = 0;
    for (const limit of limits) {
      const [count, ttl] = (await this.redis.eval(SCRIPT, 1, `rl:${limit.key}`, String(limit.windowMs))) as [number, number];
      if (count > limit.max) retryAfterMs = Math.max(retryAfterMs, ttl > 0 ? ttl : limit.windowMs);
    }
    if (retryAfterMs > 0) {
      const retryAfter = Math.ceil(retryAfterMs / 1000);
      throw new AppError("rate_limited", `too many attempts; retry in ${retryAfter} s`, {
        retry_after_seconds: retryAfter,
      });
    }
  }
}
