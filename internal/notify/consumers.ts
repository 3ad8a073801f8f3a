import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "nats";
import { DurableConsumer } from "../platform/durable-consumer.js";
import type { Subjects } from "../platform/events.js";
import type { Logger } from "../platform/logger.js";
import { NOTIFIED_TYPES, type NotifiedType, type NotifyService } from "./service.js";

export interface NotifyConsumerOptions {
  stream: string;
  maxDeliver: number;
  ackWaitMs: number;
  /** First redelivery delay after a failed delivery; doubled for each further one. */
  redeliveryMs: number;
}

const NANOS = 1_000_000;
/** JetStream API error code: consumer not found. */
const CONSUMER_NOT_FOUND = 10014;

/** The durable name of one notified type: every notify replica uses the same, so they share the work. */
export function durableName(type: NotifiedType): string {
  return `notify-${type.replace(".", "-")}`;
}

/**
 * notify's entry points (what server.ts is to a gRPC service): one JetStream
 * durable pull consumer per notified type, since a NATS 2.9 consumer has a
 * single filter subject, all calling the same handler. Explicit acks, bounded
 * redelivery with backoff (DurableConsumer), and a heartbeat (`working()`)
 * while an event is handled, so a slow SES does not look like a dead replica.
 */
export class NotifyConsumers {
  private readonly consumers: DurableConsumer[];

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    private readonly service: NotifyService,
    private readonly options: NotifyConsumerOptions,
    private readonly log: Logger,
  ) {
    const backoffMs = Array.from({ length: 8 }, (_, i) => Math.min(options.redeliveryMs * 2 ** i, 300_000));
    this.consumers = NOTIFIED_TYPES.map(
      (type) =>
        new DurableConsumer(
          js,
          jsm,
          {
            stream: options.stream,
            durable: durableName(type),
            filterSubject: subjects.allOf(type),
            maxDeliver: options.maxDeliver,
            backoffMs,
            ackWaitMs: options.ackWaitMs,
          },
          async (event, message) => {
            const heartbeat = setInterval(() => message.working(), Math.max(250, Math.floor(options.ackWaitMs / 3)));
            try {
              await service.handle(event, message.info.redeliveryCount);
            } finally {
              clearInterval(heartbeat);
            }
          },
          log,
        ),
    );
  }

  async start(): Promise<void> {
    for (const type of NOTIFIED_TYPES) await this.createIfMissing(type);
    for (const consumer of this.consumers) await consumer.start();
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
  }

  /**
   * A durable created for the first time starts at new events: a fresh
   * deployment must not mail about a week of history. Once it exists, its
   * position survives restarts (DurableConsumer then only updates it).
   */
  private async createIfMissing(type: NotifiedType): Promise<void> {
    const durable = durableName(type);
    try {
      await this.jsm.consumers.info(this.options.stream, durable);
      return;
    } catch (error) {
      const missing = (error as { api_error?: { err_code?: number } }).api_error?.err_code === CONSUMER_NOT_FOUND;
      if (!missing) throw new Error(`reading durable consumer ${durable}`, { cause: error });
    }
    try {
      await this.jsm.consumers.add(this.options.stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        filter_subject: this.subjects.allOf(type),
        max_deliver: this.options.maxDeliver,
        ack_wait: this.options.ackWaitMs * NANOS,
        max_ack_pending: 256,
      });
      this.log.info({ durable }, "durable consumer created at new events");
    } catch (error) {
      // Another replica created it in between; DurableConsumer.start finds it.
      this.log.debug({ err: error, durable }, "durable consumer not created here");
    }
  }
}
