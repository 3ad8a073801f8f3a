import type { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { classifyError } from "../platform/failures.js";
import type { ServiceClient } from "../platform/grpc-client.js";
import type { Logger } from "../platform/logger.js";
import type { Outbox } from "../platform/outbox.js";
import { ChunkWriter } from "./chunk-writer.js";
import { fileEncoding } from "./formats.js";
import type { ExportMetrics } from "./metrics.js";
import { percentDone, ProgressThrottle } from "./progress.js";
import { jobEvent } from "./resources.js";
import { exponentialBackoff } from "../platform/retry.js";
import { toExportJob, type Claim, type ExportStore, type JobRow } from "./store.js";

/** A failed attempt is tried again after this (retry.ts): 1 s, doubling, at most 30 s. */
export const ATTEMPT_BACKOFF = exponentialBackoff(1_000, 30_000);

export interface ExportRunnerOptions {
  /** This worker's name in claims (unique per process). */
  workerId: string;
  /** A claim whose heartbeat is older than this may be taken over (the JetStream ack wait). */
  staleAfterMs: number;
  /** How often a running job renews its claim and extends its message's ack wait. */
  heartbeatMs: number;
  /** Attempts before a job that keeps failing ends `failed`. */
  maxAttempts: number;
  chunkBytes: number;
  /** Deadline of one attempt's row stream. */
  jobTimeoutMs: number;
}

/** What a run reads and writes of its job (ExportStore; a fake in the unit tests). */
export type RunnerStore = Pick<
  ExportStore,
  "claim" | "lockJob" | "heartbeat" | "writeChunk" | "recordProgress" | "complete" | "fail" | "release" | "finishRun"
>;

/** The JetStream delivery of a job, as far as a run needs it. */
export interface JobDelivery {
  /** Extends the ack wait: the job is still being worked on. */
  working(): void;
}

/** What the queue does with the delivery: ack it (the job is settled), or have it redelivered later. */
export type RunResult = { kind: "done" } | { kind: "retry"; delayMs: number };

/** The attempt's claim was taken over (its heartbeat went stale) or the job is gone: stop writing. */
export class ClaimLost extends Error {
  override name = "ClaimLost";
}

/** The process is shutting down: hand the job back. */
class Stopping extends Error {
  override name = "Stopping";
}

const DONE: RunResult = { kind: "done" };

/**
 * Runs export jobs, each attempt under a claim in Postgres (see ExportStore.claim):
 * streams the rows from the task service, encodes them, and stores the file
 * chunk by chunk as it is produced; every write is fenced by the claim, so a
 * worker that lost its claim can change nothing. Status, progress and the
 * export.* events go through the outbox.
 */
export class ExportRunner {
  constructor(
    private readonly store: RunnerStore,
    private readonly outbox: Pick<Outbox, "transaction">,
    private readonly tasks: Pick<ServiceClient<TaskServiceClient>, "call" | "stream">,
    private readonly metrics: ExportMetrics,
    private readonly log: Logger,
    private readonly options: ExportRunnerOptions,
  ) {}

  /** Takes the job if nobody else is running it, and runs one attempt. */
  async run(ref: { workspace_id: string; id: string }, delivery: JobDelivery, stopping: AbortSignal): Promise<RunResult> {
    const claimed = await this.claim(ref);
    if ("kind" in claimed) return claimed;
    return this.attempt(claimed, delivery, stopping);
  }

  private async claim(ref: { workspace_id: string; id: string }): Promise<JobRow | RunResult> {
    const { workerId, staleAfterMs, maxAttempts } = this.options;
    return this.outbox.transaction(async (tx, emit): Promise<JobRow | RunResult> => {
      const row = await this.store.claim(tx, ref.workspace_id, ref.id, workerId, staleAfterMs, maxAttempts);
      if (row) {
        emit(jobEvent("export.progress", toExportJob(row)));
        return row;
      }
      const current = await this.store.lockJob(tx, ref.workspace_id, ref.id);
      if (!current || current.expired || current.status === "completed" || current.status === "failed") return DONE;
      const stale = current.status === "pending" || (current.heartbeat_age_ms ?? Infinity) >= staleAfterMs;
      const used = current.attempt - current.released;
      // The claim compared the heartbeat with the transaction's start, this with the clock now: at
      // the boundary a claim can miss a job that is stale by now. It is given up only without attempts left.
      if (stale && used < maxAttempts) return { kind: "retry", delayMs: 100 };
      if (stale) {
        // Claimable but out of attempts: the last ones failed or their workers died.
        const why = current.last_error ?? "the worker running it stopped";
        const failed = await this.store.fail(tx, ref.workspace_id, ref.id, `export failed after ${used} attempts: ${why}`);
        if (failed) {
          emit(jobEvent("export.failed", toExportJob(failed)));
          this.log.warn({ job_id: ref.id, attempts: used }, "export given up");
        }
        return DONE;
      }
      // Another worker holds a live claim: look again once it could have gone stale.
      return { kind: "retry", delayMs: Math.max(0, staleAfterMs - (current.heartbeat_age_ms ?? 0)) + 250 };
    });
  }

  private async attempt(job: JobRow, delivery: JobDelivery, stopping: AbortSignal): Promise<RunResult> {
    const claim: Claim = { workspace_id: job.workspace_id, job_id: job.id, attempt: job.attempt, worker_id: this.options.workerId };
    const log = this.log.child({ job_id: job.id, workspace_id: job.workspace_id, attempt: job.attempt });
    const controller = new AbortController();
    const stop = () => controller.abort(new Stopping("shutting down"));
    if (stopping.aborted) stop();
    else stopping.addEventListener("abort", stop, { once: true });
    const heartbeat = setInterval(() => {
      delivery.working();
      this.store.heartbeat(claim).then(
        (held) => {
          if (!held) controller.abort(new ClaimLost("the claim was taken over"));
        },
        (error: unknown) => log.warn({ err: error }, "export heartbeat failed"),
      );
    }, this.options.heartbeatMs);
    const started = performance.now();
    this.metrics.running.inc();
    log.info({ type: job.type, format: job.format }, "export started");
    let rows = 0;
    try {
      const file = await this.produce(job, claim, controller.signal, (n) => (rows = n));
      await this.outbox.transaction(async (tx, emit) => {
        const row = await this.store.complete(tx, claim, file);
        if (!row) throw new ClaimLost("the claim was taken over");
        await this.store.finishRun(claim, "completed", file.rowCount, tx);
        emit(jobEvent("export.completed", toExportJob(row)));
      });
      const seconds = (performance.now() - started) / 1000;
      this.metrics.ended("completed");
      this.metrics.rows.inc(file.rowCount);
      this.metrics.bytes.inc(file.bytes);
      this.metrics.duration.observe({ format: job.format }, seconds);
      log.info({ rows: file.rowCount, bytes: file.bytes, chunks: file.chunkCount, seconds, rows_per_second: Math.round(file.rowCount / seconds) }, "export completed");
      return DONE;
    } catch (error) {
      return await this.settle(job, claim, controller.signal.aborted ? controller.signal.reason : error, rows, log);
    } finally {
      clearInterval(heartbeat);
      stopping.removeEventListener("abort", stop);
      this.metrics.running.dec();
    }
  }

  /** Streams the rows into the file; resolves with what was stored. */
  private async produce(job: JobRow, claim: Claim, signal: AbortSignal, progressed: (rows: number) => void) {
    const call = { internal: true, timeoutMs: this.options.jobTimeoutMs, signal };
    const counts = await this.tasks.call("countRows", { workspace_id: job.workspace_id }, { internal: true });
    const total = job.type === "tasks" ? counts.tasks : counts.comments;
    const messages =
      job.type === "tasks"
        ? this.tasks.stream("streamTasks", { workspace_id: job.workspace_id }, call)
        : this.tasks.stream("streamComments", { workspace_id: job.workspace_id }, call);
    const encoding = fileEncoding(job.type, job.format);
    const throttle = new ProgressThrottle(Date.now());
    let rows = 0;
    let percent = 0;
    const file = new ChunkWriter(this.options.chunkBytes, async (chunk, n) => {
      if (!(await this.store.writeChunk(claim, n, chunk, rows, percent))) throw new ClaimLost("the claim was taken over");
    });
    try {
      for await (const batch of messages) {
        // Progress is counted row by row, so no 10 % step is missed whatever the batch size.
        for (let i = 0; i < batch.items.length; i++) {
          rows++;
          const now = percentDone(rows, total);
          if (now === percent) continue;
          percent = now;
          progressed(rows);
          if (throttle.due(now, Date.now())) throttle.sent(now, await this.reportProgress(claim, rows, now));
        }
        for (const piece of encoding.batch(batch.items)) {
          const full = file.write(piece);
          if (full) await full;
        }
      }
      progressed(rows);
      const full = file.write(encoding.end());
      if (full) await full;
      await file.close();
    } catch (error) {
      // Nothing may be written once the attempt is settled: let the store in flight finish first.
      await file.idle();
      throw error;
    }
    return { rowCount: rows, chunkCount: file.chunkCount, bytes: file.byteCount };
  }

  /** Writes progress and its event; resolves with the event's timestamp. */
  private async reportProgress(claim: Claim, rows: number, progress: number): Promise<number> {
    return this.outbox.transaction(async (tx, emit) => {
      const row = await this.store.recordProgress(tx, claim, rows, progress);
      if (!row) throw new ClaimLost("the claim was taken over");
      return emit(jobEvent("export.progress", toExportJob(row))).timestamp;
    });
  }

  /** After a failed attempt: hand the job back, retry it, or give it up. */
  private async settle(job: JobRow, claim: Claim, reason: unknown, rows: number, log: Logger): Promise<RunResult> {
    if (reason instanceof ClaimLost) {
      this.metrics.ended("lost");
      log.warn({ rows }, "export claim lost; another worker has the job");
      await this.store.finishRun(claim, "lost", rows).catch((error: unknown) => log.warn({ err: error }, "run not recorded"));
      // Keep the delivery alive until the job is settled by whoever holds it.
      return { kind: "retry", delayMs: this.options.staleAfterMs };
    }
    if (reason instanceof Stopping) {
      await this.outbox.transaction(async (tx) => {
        if (await this.store.release(tx, claim, { countAttempt: false })) await this.store.finishRun(claim, "released", rows, tx);
      });
      this.metrics.ended("released");
      log.info({ rows }, "export handed back (shutting down)");
      return { kind: "retry", delayMs: 0 };
    }
    const failure = classifyError(reason);
    const used = claim.attempt - job.released;
    if (used >= this.options.maxAttempts) {
      await this.outbox.transaction(async (tx, emit) => {
        const failed = await this.store.fail(tx, claim.workspace_id, claim.job_id, `export failed after ${used} attempts: ${failure.message}`, claim);
        if (!failed) return;
        await this.store.finishRun(claim, "failed", rows, tx);
        emit(jobEvent("export.failed", toExportJob(failed)));
      });
      this.metrics.ended("failed");
      log.error({ err: reason, attempts: used }, "export failed");
      return DONE;
    }
    await this.outbox.transaction(async (tx) => {
      if (await this.store.release(tx, claim, { countAttempt: true, error: failure.message })) await this.store.finishRun(claim, "retry", rows, tx);
    });
    this.metrics.ended("retry");
    const delayMs = ATTEMPT_BACKOFF.backoff(used - 1);
    log.warn({ err: reason, attempts: used, retry_in_ms: delayMs }, "export attempt failed; will retry");
    return { kind: "retry", delayMs };
  }
}
