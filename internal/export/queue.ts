import type { Subscription } from "../platform/durable-consumer.js";
import type { Logger } from "../platform/logger.js";
import { ATTEMPT_BACKOFF, type JobDelivery, type RunResult } from "./runner.js";

export interface ExportQueueOptions {
  /** The stored subject of export.created in every workspace. */
  filterSubject: string;
  ackWaitMs: number;
  /** Jobs this replica runs at once. */
  concurrency: number;
}

/** Runs one job for one delivery. */
export type RunJob = (ref: { workspace_id: string; id: string }, delivery: JobDelivery, stopping: AbortSignal) => Promise<RunResult>;

/**
 * The export work queue: the durable consumer of export.created, shared by
 * every replica, each of its `concurrency` loops pulling one job at a time (a
 * replica holds only the jobs it runs). A delivery is acknowledged only once
 * its job is settled (completed, failed or gone); otherwise it comes back
 * after the runner's delay, so a job is never dropped while unfinished, and a
 * worker that dies leaves its delivery to be redelivered after the ack wait.
 * The claim in Postgres (ExportRunner) makes sure that no two workers run the
 * same job at once, whatever JetStream redelivers. `stop()` (before the
 * consumer closes) hands running jobs back.
 */
export function exportQueue(options: ExportQueueOptions, runJob: RunJob, log: Logger): { subscription: Subscription; stop: () => void } {
  const stopping = new AbortController();
  const subscription: Subscription = {
    durable: "export-jobs",
    filterSubject: options.filterSubject,
    // Jobs queued before the consumer existed (first start) are run too.
    startAt: "all",
    ackWaitMs: options.ackWaitMs,
    // Unlimited: whether a job is retried or given up is decided in Postgres (attempts), not by delivery counts.
    maxDeliver: -1,
    maxAckPending: 10_000,
    concurrency: options.concurrency,
    batch: 1,
    // A job the runner could not even settle is tried again like a failed attempt.
    retry: ATTEMPT_BACKOFF,
    handle: async (event, delivery) => {
      if (!event.workspace_id || !event.aggregate_id) {
        log.error({ event_id: event.id }, "export job without workspace or id dropped");
        return;
      }
      const result = await runJob({ workspace_id: event.workspace_id, id: event.aggregate_id }, delivery, stopping.signal);
      return result.kind === "done" ? undefined : { retryInMs: result.delayMs };
    },
  };
  return { subscription, stop: () => stopping.abort() };
}
