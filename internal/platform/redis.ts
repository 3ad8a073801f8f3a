import { Redis } from "ioredis";
import { redactUrl } from "./config.js";
import type { Logger } from "./logger.js";

export type { Redis };

/**
 * An ioredis client with every key under `prefix`. Commands fail fast while
 * Redis is unreachable (no offline queue), so callers answer 503 rather than hang.
 */
export async function connectRedis(url: string, prefix: string, log: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    keyPrefix: prefix,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let wasReady = false;
  redis.on("ready", () => {
    if (wasReady) log.info("redis reconnected");
    wasReady = true;
  });
  redis.on("error", (error: Error) => log.warn({ err: error.message }, "redis error"));
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${redactUrl(url)}`, { cause: error });
  }
  return redis;
}

export async function pingRedis(redis: Redis): Promise<void> {
  await redis.ping();
}
