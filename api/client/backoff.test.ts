import { describe, expect, test } from "vitest";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";

describe("backoff", () => {
  test("backoff: full jitter between 0 and base × 2^attempt", () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(0);
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0.999999)).toBe(249);
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0.5)).toBe(250);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0.5)).toBe(1000);
  });

  test("backoff: never beyond the cap, however many attempts", () => {
    for (const attempt of [6, 10, 50, 1000]) {
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0.999999)).toBeLessThan(DEFAULT_BACKOFF.capMs);
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0.999999)).toBeGreaterThan(DEFAULT_BACKOFF.capMs - 2);
    }
  });

  test("backoff: delays are spread (jitter), not the same for every client", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4)));
    expect(delays.size).toBeGreaterThan(20);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(0);
    for (const d of delays) expect(d).toBeLessThan(4000);
  });
});
