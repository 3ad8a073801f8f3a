import { describe, expect, test } from "vitest";
import { Platform } from "./bootstrap.js";

const config = {
  LOG_LEVEL: "silent",
  SHUTDOWN_TIMEOUT_MS: 2_000,
  INTERNAL_SECRET: "x".repeat(32),
  LISTEN_HOST: "127.0.0.1",
  NATS_URL: "nats://127.0.0.1:4222",
  NATS_SUBJECT_ROOT: "unit",
  NATS_STREAM: "UNIT",
  NATS_STREAM_MAX_AGE_HOURS: 1,
  NATS_STREAM_REPLICAS: 1,
  ADMIN_PORT: 0,
};

describe("bootstrap", () => {
  test("shutdown runs by phase whatever order the parts were set up in: stop taking work, finish it, then drop what it needed, admin last", async () => {
    const platform = new Platform("unit", config);
    const ran: string[] = [];
    // Set up as a main would: databases first, listeners last.
    platform.onStop("databases", "postgres", () => ran.push("postgres"));
    platform.onStop("messaging", "nats", () => ran.push("nats"));
    platform.onStop("clients", "auth client", () => ran.push("auth client"));
    platform.onStop("outbox", "outbox", () => ran.push("outbox"));
    platform.onStop("consumers", "hand jobs back", () => ran.push("hand jobs back"));
    platform.onStop("consumers", "jobs", () => ran.push("jobs"));
    platform.onStop("caches", "memberships", () => ran.push("memberships"));
    platform.onStop("listeners", "http", () => ran.push("http"));
    await platform.serve();
    expect(platform.health.stopping).toBe(false);
    await platform.shutdown.run("test");
    expect(platform.health.stopping).toBe(true);
    expect(ran).toEqual(["http", "hand jobs back", "jobs", "outbox", "memberships", "auth client", "nats", "postgres"]);
  });

  test("a step that throws is logged and the others still run", async () => {
    const platform = new Platform("unit", config);
    const ran: string[] = [];
    platform.onStop("listeners", "broken", () => {
      throw new Error("boom");
    });
    platform.onStop("databases", "postgres", () => ran.push("postgres"));
    await platform.serve();
    await platform.shutdown.run("test");
    expect(ran).toEqual(["postgres"]);
  });
});
