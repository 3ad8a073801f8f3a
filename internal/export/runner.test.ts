import { Registry } from "prom-client";
import { describe, expect, test } from "vitest";
import type { Task, TaskBatch } from "../../api/gen/taskboard/task/v1/task.js";
import { AppError } from "../platform/errors.js";
import { createLogger } from "../platform/logger.js";
import type { NewEvent } from "../platform/events.js";
import { ExportMetrics } from "./metrics.js";
import { ExportRunner, type RunnerStore, type RunResult } from "./runner.js";
import type { Claim, JobRow } from "./store.js";

/**
 * The runner's settle logic against fakes of its store, outbox and task
 * service: how each way an attempt can end leaves the job and the delivery.
 * (test/exports.test.ts proves the same end to end with real processes.)
 */

const STALE_MS = 5_000;

function jobRow(overrides: Partial<JobRow> = {}): JobRow {
  return {
    workspace_id: "ws",
    id: "job",
    seq: "1",
    type: "tasks",
    format: "json",
    status: "running",
    progress: 0,
    row_count: "0",
    error: null,
    created_by: "ann",
    created_at: new Date(0),
    started_at: new Date(0),
    completed_at: null,
    expires_at: new Date(Date.now() + 3_600_000),
    attempt: 1,
    released: 0,
    worker_id: "w1",
    heartbeat_at: new Date(),
    last_error: null,
    chunk_count: null,
    file_bytes: null,
    ...overrides,
  };
}

const task = (i: number): Task => ({
  id: `t${i}`,
  workspace_id: "ws",
  title: `task ${i}`,
  description: "",
  status: "pending",
  priority: "low",
  created_by: "ann",
  labels: [],
  watcher_ids: ["ann"],
  created_at: "2030-01-01T00:00:00.000Z",
  updated_at: "2030-01-01T00:00:00.000Z",
});

interface Setup {
  /** The job as claim() hands it out (undefined: somebody else holds it, see `locked`). */
  claimed?: JobRow;
  locked?: JobRow & { expired: boolean; heartbeat_age_ms: number | null };
  /** The rows, then how the stream ends: "end", "fail" (the task service errs), or "hang" (until the call is cancelled). */
  rows?: number;
  ending?: "end" | "fail" | "hang";
  /** What heartbeat() answers: false once the claim was taken over. */
  claimHeld?: boolean;
  maxAttempts?: number;
}

function harness(setup: Setup) {
  const calls: string[] = [];
  const events: NewEvent[] = [];
  const chunks: Buffer[] = [];
  const released: { countAttempt: boolean; error?: string }[] = [];
  const job = () => setup.claimed ?? jobRow();
  const store: RunnerStore = {
    claim: async () => setup.claimed,
    lockJob: async () => setup.locked,
    heartbeat: async () => setup.claimHeld ?? true,
    writeChunk: async (_claim: Claim, _n: number, data: Buffer) => {
      chunks.push(Buffer.from(data));
      return true;
    },
    recordProgress: async () => job(),
    complete: async () => ({ ...job(), status: "completed" }),
    fail: async (_tx, _ws, _id, error: string) => ({ ...job(), status: "failed", error }),
    release: async (_tx, _claim, options) => {
      released.push(options);
      return { ...job(), status: "pending" };
    },
    finishRun: async (_claim, outcome) => {
      calls.push(`run ${outcome}`);
    },
  };
  const outbox = {
    transaction: async <T>(work: (tx: never, emit: (e: NewEvent) => { timestamp: number }) => Promise<T>) =>
      work({} as never, (event) => {
        events.push(event);
        return { timestamp: Date.now() };
      }),
  };
  const tasks = {
    call: async () => ({ tasks: setup.rows ?? 0, comments: 0 }),
    stream: (_method: string, _request: unknown, call: { signal?: AbortSignal }) =>
      (async function* (): AsyncGenerator<TaskBatch> {
        const rows = setup.rows ?? 0;
        for (let i = 0; i < rows; i += 10) yield { items: Array.from({ length: Math.min(10, rows - i) }, (_, k) => task(i + k)) };
        // As the gRPC client reports an outage of the task service (its message is what the job shows).
        if (setup.ending === "fail") throw new AppError("dependency_unavailable", "task service unavailable");
        if (setup.ending === "hang") {
          await new Promise((_, reject) => call.signal?.addEventListener("abort", () => reject(new Error("cancelled")), { once: true }));
        }
      })(),
  };
  const runner = new ExportRunner(store, outbox as never, tasks as never, new ExportMetrics(new Registry()), createLogger("test", "silent"), {
    workerId: "w1",
    staleAfterMs: STALE_MS,
    heartbeatMs: 20,
    maxAttempts: setup.maxAttempts ?? 3,
    chunkBytes: 64 * 1024,
    jobTimeoutMs: 60_000,
  });
  const stopping = new AbortController();
  const run = (): Promise<RunResult> => runner.run({ workspace_id: "ws", id: "job" }, { working: () => undefined }, stopping.signal);
  return { run, stopping, calls, events, chunks, released };
}

describe("export runner", () => {
  test("an attempt that streams every row completes the job, stores the file and publishes export.completed", async () => {
    const h = harness({ claimed: jobRow(), rows: 25, ending: "end" });
    expect(await h.run()).toEqual({ kind: "done" });
    expect(JSON.parse(Buffer.concat(h.chunks).toString())).toHaveLength(25);
    expect(h.calls).toEqual(["run completed"]);
    expect(h.events.map((e) => e.type)).toContain("export.completed");
  });

  test("shutting down mid-job hands it back without using an attempt, for another worker at once", async () => {
    const h = harness({ claimed: jobRow(), rows: 5, ending: "hang" });
    const result = h.run();
    setTimeout(() => h.stopping.abort(), 50);
    expect(await result).toEqual({ kind: "retry", delayMs: 0 });
    expect(h.released).toEqual([{ countAttempt: false }]);
    expect(h.calls).toEqual(["run released"]);
  });

  test("a failed attempt with attempts left releases the job with its error, to be retried after the backoff", async () => {
    const h = harness({ claimed: jobRow({ attempt: 1 }), rows: 5, ending: "fail" });
    const result = await h.run();
    expect(result.kind).toBe("retry");
    // retry.ts: 1 s for the first retry, with jitter (× 0.5–1.5).
    expect(result.kind === "retry" && result.delayMs).toBeGreaterThanOrEqual(500);
    expect(result.kind === "retry" && result.delayMs).toBeLessThanOrEqual(1_500);
    expect(h.released).toEqual([{ countAttempt: true, error: "task service unavailable" }]);
    expect(h.calls).toEqual(["run retry"]);
    expect(h.events.map((e) => e.type)).not.toContain("export.failed");
  });

  test("the last attempt failing fails the job, says why, and acknowledges the delivery", async () => {
    const h = harness({ claimed: jobRow({ attempt: 3 }), rows: 5, ending: "fail", maxAttempts: 3 });
    expect(await h.run()).toEqual({ kind: "done" });
    const failed = h.events.find((e) => e.type === "export.failed");
    expect(failed?.data).toMatchObject({ status: "failed", error: "export failed after 3 attempts: task service unavailable" });
    expect(h.calls).toEqual(["run failed"]);
  });

  test("a claim taken over (its heartbeat refused) stops writing and keeps the delivery alive until the job settles elsewhere", async () => {
    const h = harness({ claimed: jobRow(), rows: 5, ending: "hang", claimHeld: false });
    expect(await h.run()).toEqual({ kind: "retry", delayMs: STALE_MS });
    expect(h.calls).toEqual(["run lost"]);
    expect(h.released).toEqual([]);
  });

  test("a job another worker holds is looked at again once that claim could have gone stale; a settled or expired one is acknowledged", async () => {
    const live = harness({ locked: { ...jobRow({ worker_id: "w2" }), expired: false, heartbeat_age_ms: 1_000 } });
    expect(await live.run()).toEqual({ kind: "retry", delayMs: STALE_MS - 1_000 + 250 });
    const completed = harness({ locked: { ...jobRow({ status: "completed" }), expired: false, heartbeat_age_ms: null } });
    expect(await completed.run()).toEqual({ kind: "done" });
    const expired = harness({ locked: { ...jobRow(), expired: true, heartbeat_age_ms: null } });
    expect(await expired.run()).toEqual({ kind: "done" });
  });

  test("a stale job without attempts left is given up as failed, naming why its workers stopped", async () => {
    const h = harness({ locked: { ...jobRow({ attempt: 3, last_error: null }), expired: false, heartbeat_age_ms: 60_000 } });
    expect(await h.run()).toEqual({ kind: "done" });
    expect(h.events.find((e) => e.type === "export.failed")?.data).toMatchObject({ error: "export failed after 3 attempts: the worker running it stopped" });
  });
});
