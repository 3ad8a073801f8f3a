import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { Redis } from "./redis.js";
import { AppError } from "./errors.js";

export interface Limit {
  /** Key of what is limited, e.g. "login:ip:10.0.0.1". */
  key: string;
  max: number;
  windowMs: number;
}

/**
 * Rate limits shared by every replica: a fixed window per key in Redis
 * (rate-limiter-flexible's RateLimiterRedis: one atomic script per hit). While
 * Redis cannot answer, each process counts on its own in memory (the
 * library's insurance limiter) instead of failing the request: a limit guards
 * against abuse, and must not take the API down with Redis.
 */
export class RateLimiter {
  private readonly limiters = new Map<string, RateLimiterRedis>();

  constructor(private readonly redis: Redis) {}

  /** Counts one attempt against every limit; throws rate_limited (with retry_after) when one is exceeded. */
  async hit(limits: Limit[]): Promise<void> {
    let retryAfterMs = 0;
    await Promise.all(
      limits.map(async (limit) => {
        try {
          await this.limiter(limit).consume(limit.key);
        } catch (rejection) {
          if (!(rejection instanceof RateLimiterRes)) throw rejection;
          retryAfterMs = Math.max(retryAfterMs, rejection.msBeforeNext);
        }
      }),
    );
    if (retryAfterMs > 0) {
      const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000));
      throw new AppError("rate_limited", `too many requests; retry in ${retryAfter} s`, { retry_after_seconds: retryAfter });
    }
  }

  /** One limiter per (max, window): the keys of each kind of limit live under their own prefix. */
  private limiter({ max, windowMs }: Limit): RateLimiterRedis {
    const id = `${max}:${windowMs}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      const duration = Math.max(1, Math.ceil(windowMs / 1000));
      limiter = new RateLimiterRedis({
        storeClient: this.redis,
        keyPrefix: `rl:${id}`,
        points: max,
        duration,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: `rl:${id}`, points: max, duration }),
      });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}
