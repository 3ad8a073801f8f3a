import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "nats";
import { decodeEvent, type Event } from "./events.js";
import type { Logger } from "./logger.js";

export interface DurableConsumerOptions {
  stream: string;
  /** Durable name; every replica with the same name shares the work. */
  durable: string;
  filterSubject: string;
  /** Deliveries before a message is given up (terminated and logged). */
  maxDeliver?: number;
  /** Redelivery delays, by attempt. */
  backoffMs?: number[];
  ackWaitMs?: number;
  maxAckPending?: number;
}

/** What a handler may ask for a message it cannot process yet. */
export class RetryLater extends Error {
  override name = "RetryLater";
  constructor(
    message: string,
    readonly delayMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const NANOS = 1_000_000;

/**
 * A JetStream durable pull consumer with explicit acks: each event is handled,
 * then acked; a failure is redelivered with backoff up to `maxDeliver` times.
 * Handlers must be idempotent: JetStream delivers at least once.
 */
export class DurableConsumer {
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private readonly backoffMs: number[];
  private readonly maxDeliver: number;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: DurableConsumerOptions,
    private readonly handle: (event: Event, message: JsMsg) => Promise<void>,
    private readonly log: Logger,
  ) {
    this.backoffMs = options.backoffMs ?? [1_000, 5_000, 15_000, 60_000];
    this.maxDeliver = options.maxDeliver ?? 8;
  }

  async start(): Promise<void> {
    const config = {
      durable_name: this.options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: this.options.filterSubject,
      max_deliver: this.maxDeliver,
      ack_wait: (this.options.ackWaitMs ?? 30_000) * NANOS,
      max_ack_pending: this.options.maxAckPending ?? 256,
    };
    try {
      await this.jsm.consumers.info(this.options.stream, this.options.durable);
      await this.jsm.consumers.update(this.options.stream, this.options.durable, {
        filter_subject: config.filter_subject,
        max_deliver: config.max_deliver,
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
      });
    } catch {
      await this.jsm.consumers.add(this.options.stream, config);
    }
    const consumer = await this.js.consumers.get(this.options.stream, this.options.durable);
    this.messages = await consumer.consume({ max_messages: 64 });
    this.loop = this.run(this.messages);
  }

  async close(): Promise<void> {
    if (!this.messages) return;
    await this.messages.close();
    await this.loop;
    this.messages = undefined;
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const message of messages) {
      const attempt = message.info.redeliveryCount;
      const event = decodeEvent(message.data);
      if (!event) {
        this.log.error({ subject: message.subject, seq: message.seq }, "undecodable event dropped");
        message.term();
        continue;
      }
      try {
        await this.handle(event, message);
        message.ack();
      } catch (error) {
        if (attempt >= this.maxDeliver) {
          this.log.error({ err: error, event_id: event.id, type: event.type, attempt }, "event given up after retries");
          message.term();
          continue;
        }
        const delay =
          error instanceof RetryLater && error.delayMs !== undefined
            ? error.delayMs
            : this.backoffMs[Math.min(attempt - 1, this.backoffMs.length - 1)]!;
        this.log.warn({ err: error, event_id: event.id, type: event.type, attempt, retry_in_ms: delay }, "event handling failed");
        message.nak(delay);
      }
    }
  }
}
