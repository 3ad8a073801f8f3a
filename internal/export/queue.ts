import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, DeliverPolicy, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from "nats";
import { decodeEvent } from "../platform/events.js";
import type { Logger } from "../platform/logger.js";
import type { JobDelivery, RunResult } from "./runner.js";

export interface ExportQueueOptions {
  stream: string;
  /** Durable name shared by every replica: they share one queue, each message goes to one of them. */
  durable: string;
  /** The stored subject of export.created in every workspace. */
  filterSubject: string;
  ackWaitMs: number;
  /** Jobs this replica runs at once (one pull loop each). */
  concurrency: number;
  /** How long one pull waits for a message; also bounds how long close() waits for an idle loop. */
  pullExpiresMs?: number;
}

/** Runs one job for one delivery. */
export type RunJob = (ref: { workspace_id: string; id: string }, delivery: JobDelivery, stopping: AbortSignal) => Promise<RunResult>;

const NANOS = 1_000_000;

/**
 * The export work queue: a JetStream durable pull consumer on export.created
 * with explicit acks, shared by every replica. Each of `concurrency` loops pulls
 * one message at a time (`next()`), so a replica holds only the jobs it is
 * running and never lets buffered ones time out. A delivery is acked only once
 * its job is settled (completed, failed or gone); otherwise it is nak'ed with a
 * delay and comes back, so a job is never dropped while it is unfinished: a
 * worker that dies leaves an unacked message that JetStream redelivers after
 * the ack wait. The claim in Postgres (ExportRunner) makes sure that no two
 * workers run the same job at once, whatever JetStream redelivers.
 */
export class ExportQueue {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: ExportQueueOptions,
    private readonly runJob: RunJob,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { stream, durable } = this.options;
    const settings = {
      ack_wait: this.options.ackWaitMs * NANOS,
      // Unlimited: whether a job is retried or given up is decided in Postgres (attempts), not by delivery counts.
      max_deliver: -1,
      max_ack_pending: 10_000,
    };
    try {
      await this.jsm.consumers.info(stream, durable);
      await this.jsm.consumers.update(stream, durable, { ...settings, filter_subject: this.options.filterSubject });
    } catch {
      await this.jsm.consumers.add(stream, {
        ...settings,
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        // Jobs queued before the consumer existed (first start) are run too.
        deliver_policy: DeliverPolicy.All,
        filter_subject: this.options.filterSubject,
      });
    }
    const consumer = await this.js.consumers.get(stream, durable);
    for (let i = 0; i < this.options.concurrency; i++) this.loops.push(this.pull(consumer));
  }

  /** Stops pulling; running jobs are handed back (and their messages released) before it resolves. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping.abort();
      await Promise.all(this.loops);
    })();
    return this.closing;
  }

  private async pull(consumer: Consumer): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let message: JsMsg | null;
      try {
        message = await consumer.next({ expires: this.options.pullExpiresMs ?? 2_000 });
      } catch (error) {
        if (signal.aborted) return;
        this.log.warn({ err: error }, "export queue pull failed; retrying");
        await sleep(1_000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!message) continue;
      if (signal.aborted) {
        message.nak();
        return;
      }
      await this.handle(message, signal);
    }
  }

  private async handle(message: JsMsg, signal: AbortSignal): Promise<void> {
    const event = decodeEvent(message.data);
    if (!event) {
      this.log.error({ subject: message.subject, seq: message.seq }, "undecodable export job dropped");
      message.term();
      return;
    }
    if (!event.workspace_id || !event.aggregate_id) {
      this.log.error({ event_id: event.id }, "export job without workspace or id dropped");
      message.term();
      return;
    }
    try {
      const result = await this.runJob({ workspace_id: event.workspace_id, id: event.aggregate_id }, message, signal);
      if (result.kind === "done") message.ack();
      else message.nak(result.delayMs);
    } catch (error) {
      const attempt = message.info.redeliveryCount;
      const delayMs = Math.min(1_000 * 2 ** Math.min(attempt, 5), 30_000);
      this.log.warn({ err: error, job_id: event.aggregate_id, retry_in_ms: delayMs }, "export job could not be handled; will retry");
      message.nak(delayMs);
    }
  }
}
