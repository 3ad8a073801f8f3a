import { backoff, type Backoff } from "nats";

export type { Backoff };

/**
 * The one retry policy: delays that double from `firstMs` up to `maxMs`, each
 * with nats.js's jitter (× 0.5–1.5), so that replicas retrying the same
 * dependency do not retry in step. `delay(attempt)` counts attempts from 0.
 */
export function exponentialBackoff(firstMs: number, maxMs: number): Backoff {
  const policy: number[] = [];
  for (let ms = firstMs; ms < maxMs; ms *= 2) policy.push(ms);
  policy.push(maxMs);
  return backoff(policy);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
