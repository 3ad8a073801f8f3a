import { AckPolicy, DeliverPolicy, nanos, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from "nats";
import { decodeEvent, type Event, type Subjects } from "./events.js";
import type { Logger } from "./logger.js";
import { exponentialBackoff, sleep, type Backoff } from "./retry.js";
import { inSpan, isTracing, messageContext, SpanKind } from "./tracing.js";

export interface DurableConsumerOptions {
  stream: string;
  /** Durable name; every replica with the same name shares the work. */
  durable: string;
  filterSubject: string;
  /**
   * Where the durable starts when it is created for the first time: every
   * stored event (a queue of jobs) or only new ones (a fresh deployment must
   * not act on a week of history). Once it exists, its position survives restarts.
   */
  startAt: "all" | "new";
  /** How long an event may go unacknowledged before JetStream redelivers it (a heartbeat extends it while it is handled). */
  ackWaitMs?: number;
  /** Deliveries before an event is given up (terminated and logged); -1 for never. */
  maxDeliver?: number;
  maxAckPending?: number;
  /** Events handled at once: parallel pull loops, each with one event at a time. */
  concurrency?: number;
  /** Events asked for per pull (1 for long jobs: a replica then holds only what it runs). */
  batch?: number;
  /** Delay before an event whose handling failed is delivered again, by attempt (from 0). */
  retry?: Backoff;
}

/** One delivery of an event, as far as a handler needs it. */
export interface Delivery {
  /** 1 for the first delivery. */
  attempt: number;
  /** The event's stream sequence. */
  seq: number;
  /** Tells JetStream the event is still being worked on (done every third of the ack wait anyway). */
  working(): void;
}

/** What a handler decided: done (acknowledged), or deliver it again after a delay. */
export type Outcome = void | { retryInMs: number };

/** An inbound event a service acts on: its durable consumer (the stream is the platform's) and its handler. */
export interface Subscription extends Omit<DurableConsumerOptions, "stream"> {
  handle(event: Event, delivery: Delivery): Promise<Outcome>;
}

/**
 * A service's share of deleting a workspace: on every workspace.deleted (from
 * the first stored one, so none is missed), `purge` removes what the service
 * keeps of that workspace (idempotent: a redelivery finds nothing) and says how much.
 */
export function workspaceDeletions(
  subjects: Subjects,
  durable: string,
  purge: (workspaceId: string) => Promise<Record<string, number>>,
  log: Logger,
): Subscription {
  return {
    durable,
    filterSubject: subjects.allOf("workspace.deleted"),
    startAt: "all",
    handle: async (event) => {
      const purged = await purge(event.workspace_id ?? event.aggregate_id);
      log.info({ workspace_id: event.workspace_id, ...purged }, "deleted workspace purged");
    },
  };
}

/** What a handler may throw for an event it cannot handle yet. */
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

/** How long one pull waits for events (close() ends a waiting pull at once). */
const PULL_EXPIRES_MS = 5_000;
/** JetStream API error code: consumer not found. */
const CONSUMER_NOT_FOUND = 10014;
/** Reconnecting to a consumer that cannot be pulled (NATS down, consumer being recreated). */
const reconnectPolicy = exponentialBackoff(250, 5_000);

/**
 * The one way events are consumed from JetStream (notify's mails, export jobs,
 * the services' reactions to deleted workspaces and users): a durable pull
 * consumer with explicit acks, shared by every replica. Each of `concurrency`
 * loops pulls a batch at a time (`fetch`, a request that ends by itself, so a
 * loop can never stall on a lost pull), hands each event to the handler while
 * heartbeating its delivery, then acknowledges it, or has it redelivered after
 * the retry policy's delay, or gives it up after `maxDeliver` deliveries. A pull
 * that fails (NATS down, the consumer deleted) is tried again with backoff, the
 * consumer recreated when it is gone. Handlers must be idempotent: JetStream
 * delivers at least once.
 */
export class DurableConsumer {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private closing: Promise<void> | undefined;
  private readonly ackWaitMs: number;
  private readonly maxDeliver: number;
  private readonly retry: Backoff;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: DurableConsumerOptions,
    private readonly handle: (event: Event, delivery: Delivery) => Promise<Outcome>,
    private readonly log: Logger,
  ) {
    this.ackWaitMs = options.ackWaitMs ?? 30_000;
    this.maxDeliver = options.maxDeliver ?? 8;
    this.retry = options.retry ?? exponentialBackoff(1_000, 60_000);
  }

  /** Creates or updates the durable, then starts pulling. */
  async start(): Promise<void> {
    await this.ensure();
    for (let i = 0; i < (this.options.concurrency ?? 1); i++) this.loops.push(this.pull());
  }

  /** Stops pulling; an event being handled finishes first, fetched ones not yet handled are handed back. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping.abort();
      await Promise.all(this.loops);
    })();
    return this.closing;
  }

  /** The durable with this configuration: created at `startAt` if missing, else updated. */
  private async ensure(): Promise<void> {
    const { stream, durable, filterSubject } = this.options;
    const settings = {
      filter_subject: filterSubject,
      ack_wait: nanos(this.ackWaitMs),
      max_deliver: this.maxDeliver,
      max_ack_pending: this.options.maxAckPending ?? 256,
    };
    const existing = await this.jsm.consumers.info(stream, durable).catch((error: unknown) => {
      if (isConsumerNotFound(error)) return undefined;
      throw new Error(`reading durable consumer ${durable}`, { cause: error });
    });
    if (existing) {
      await this.jsm.consumers.update(stream, durable, settings);
      return;
    }
    try {
      await this.jsm.consumers.add(stream, {
        ...settings,
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: this.options.startAt === "new" ? DeliverPolicy.New : DeliverPolicy.All,
      });
      this.log.info({ durable, start_at: this.options.startAt }, "durable consumer created");
    } catch (error) {
      // Another replica created it in between: it is there, with the same configuration.
      if (!(await this.jsm.consumers.info(stream, durable).then(() => true, () => false))) throw error;
    }
  }

  private async pull(): Promise<void> {
    const signal = this.stopping.signal;
    let consumer: Consumer | undefined;
    for (let failures = 0; !signal.aborted; ) {
      try {
        consumer ??= await this.js.consumers.get(this.options.stream, this.options.durable);
        const messages = await consumer.fetch({ max_messages: this.options.batch ?? 32, expires: PULL_EXPIRES_MS });
        // Closing ends an idle pull at once (what it already received is still handed back below).
        const stop = () => messages.stop();
        signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const message of messages) {
            if (signal.aborted) settle(message, "nak", this.log);
            else await this.process(message);
          }
        } finally {
          signal.removeEventListener("abort", stop);
        }
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (isConsumerNotFound(error)) {
          consumer = undefined;
          await this.ensure().catch((ensureError: unknown) => this.log.warn({ err: ensureError, durable: this.options.durable }, "durable consumer not recreated yet"));
        }
        const delayMs = reconnectPolicy.backoff(failures++);
        this.log.warn({ err: error, durable: this.options.durable, retry_in_ms: delayMs }, "pulling events failed; retrying");
        await sleep(delayMs, signal);
      }
    }
  }

  private async process(message: JsMsg): Promise<void> {
    const event = decodeEvent(message.data);
    if (!event) {
      this.log.error({ subject: message.subject, seq: message.seq, durable: this.options.durable }, "undecodable event dropped");
      settle(message, "term", this.log);
      return;
    }
    const attempt = message.info.redeliveryCount;
    const heartbeat = setInterval(() => message.working(), Math.max(250, Math.floor(this.ackWaitMs / 3)));
    const delivery = { attempt, seq: message.seq, working: () => message.working() };
    try {
      const outcome = isTracing() ? await this.traced(message, event, delivery) : await this.handle(event, delivery);
      if (outcome) settle(message, "nak", this.log, outcome.retryInMs);
      else settle(message, "ack", this.log);
    } catch (error) {
      if (this.maxDeliver > 0 && attempt >= this.maxDeliver) {
        this.log.error({ err: error, event_id: event.id, type: event.type, attempt }, "event given up after retries");
        settle(message, "term", this.log);
        return;
      }
      const delayMs = error instanceof RetryLater && error.delayMs !== undefined ? error.delayMs : this.retry.backoff(attempt - 1);
      this.log.warn({ err: error, event_id: event.id, type: event.type, attempt, retry_in_ms: delayMs }, "event handling failed");
      settle(message, "nak", this.log, delayMs);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** The handling of one delivery in a consumer span of the trace that published the event (its headers). */
  private traced(message: JsMsg, event: Event, delivery: Delivery): Promise<Outcome> {
    const attributes = {
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.destination.name": message.subject,
      "messaging.consumer.group.name": this.options.durable,
      "messaging.message.id": event.id,
      "messaging.message.delivery_attempt": delivery.attempt,
      "taskboard.event.type": event.type,
    };
    return inSpan(`${this.options.durable} process`, SpanKind.CONSUMER, attributes, () => this.handle(event, delivery), messageContext(message.headers));
  }
}

/** Acks, naks or terminates a delivery; one that cannot be sent (NATS gone) is redelivered after the ack wait anyway. */
function settle(message: JsMsg, how: "ack" | "nak" | "term", log: Logger, delayMs?: number): void {
  try {
    if (how === "ack") message.ack();
    else if (how === "nak") message.nak(delayMs);
    else message.term();
  } catch (error) {
    log.warn({ err: error, seq: message.seq, how }, "delivery not settled; JetStream redelivers it after the ack wait");
  }
}

function isConsumerNotFound(error: unknown): boolean {
  const e = error as { message?: string; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === CONSUMER_NOT_FOUND || e?.message === "consumer not found";
}
