import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { inject } from "vitest";
import { withDatabase } from "./support/databases.js";
import { Mesh } from "./support/mesh.js";

// Short runs of the load tools so they keep working; figures are printed, never asserted.
const execFileAsync = promisify(execFile);
/** Runs a tool; a failure carries the tool's own output, which says what went wrong. */
async function run(command: string, args: string[], options: Parameters<typeof execFileAsync>[2]) {
  try {
    return await execFileAsync(command, args, { ...options, encoding: "utf8" });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed:\n${stdout ?? ""}\n${stderr ?? ""}`, { cause: error });
  }
}
const root = new URL("../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "taskboard-bench-"));
const readLines = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, any>);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bench:ws", () => {
  test("bench: the WebSocket smoke run measures the gateway and both references without loss, and a reconnect storm without faults", async () => {
    const out = join(dir, "ws.jsonl");
    const { stdout } = await run(process.execPath, [join(root, "dist/scripts/bench-ws.js"), "--smoke", "--out", out], {
      cwd: root,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain("deliveries/s");
    const lines = readLines(out);
    for (const target of ["gateway", "uws", "socketio"]) {
      const fan = lines.find((l) => l["target"] === target && !("test" in l));
      expect(fan, `a fan-out result for ${target}`).toBeDefined();
      expect(fan!["deliveries_expected"]).toBeGreaterThan(0);
      expect(fan!["loss"]).toBe(0);
      expect(fan!["server_cpu_us_per_delivery"]).toEqual(expect.any(Number));
      expect(lines.find((l) => l["target"] === target && l["test"] === "idle")?.["failed"]).toBe(0);
    }
    expect(lines.find((l) => l["test"] === "connect-storm")).toMatchObject({ refused: 0 });
    // The reconnect storm (100 clients × 50 missed events): every client told it recovered and got every missed event, in order, once.
    const storm = lines.find((l) => l["test"] === "storm-resume");
    expect(storm, "a storm-resume result").toBeDefined();
    expect(storm).toMatchObject({ version: "current", clients: 100, missed: 50, caught_up: 100, faults_total: 0 });
    expect(storm!["expected_events"]).toBeGreaterThanOrEqual(50);
    expect(Object.values(storm!["faults"] as Record<string, number>).every((n) => n === 0), JSON.stringify(storm!["faults"])).toBe(true);
    expect(storm!["all_caught_up_ms"]).toEqual({ p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) });
    expect(storm!["js_api_requests"]).toEqual(expect.any(Number));
    expect(storm!["consumers_created"]).toEqual(expect.any(Number));
    expect(stdout).toContain("storm-resume current: 100 clients × 50 missed events");
  }, 300_000);
});

describe("loadtest.sh", () => {
  let mesh: Mesh;
  beforeAll(async () => {
    mesh = await Mesh.start();
  });
  afterAll(() => mesh?.stop());

  test("bench: the hey load test runs against a mesh and reports every endpoint without errors", async () => {
    const out = join(dir, "rest.jsonl");
    const { stdout } = await run("bash", [join(root, "scripts/loadtest.sh"), mesh.url], {
      cwd: root,
      timeout: 120_000,
      env: {
        ...process.env,
        DURATION: "1s",
        CONCURRENCY: "5",
        // Other test files share this Postgres (100 connections at most).
        PGBENCH_CLIENTS: "5",
        OUT: out,
        PGBENCH_URL: withDatabase(inject("servers").databaseUrl, "postgres"),
      },
    });
    expect(stdout).toContain("create-task");
    const lines = readLines(out);
    for (const endpoint of ["create-task", "get-task", "list-tasks"]) {
      const line = lines.find((l) => l["endpoint"] === endpoint);
      expect(line, endpoint).toBeDefined();
      expect(line!["requests_per_s"]).toBeGreaterThan(0);
      expect(line!["errors"]).toBe(0);
      // Only success codes in the distribution ("201:123" or "200:456").
      expect(line!["statuses"], endpoint).toMatch(/^2\d\d:\d+$/);
    }
    expect(lines.find((l) => l["tool"] === "pgbench")?.["inserts_per_s"]).toBeGreaterThan(0);
  }, 150_000);
});
