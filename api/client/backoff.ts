/** The reconnect policy: exponential backoff with full jitter. */
export interface BackoffPolicy {
  /** The first delay's upper bound, in ms (default 250). */
  baseMs: number;
  /** No delay is longer than this, in ms (default 10 000). */
  capMs: number;
  /** A connection open this long resets the attempt count, in ms (default 5 000). */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 10_000, stableMs: 5_000 };

/**
 * The delay before reconnect attempt `attempt` (0 for the first): a uniformly random
 * time between 0 and min(cap, base × 2^attempt) ("full jitter"), so that the clients
 * of a restarted server do not come back in waves.
 */
export function backoffDelay(attempt: number, policy: Pick<BackoffPolicy, "baseMs" | "capMs"> = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.floor(random() * ceiling);
}
