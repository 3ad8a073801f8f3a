import { AckPolicy, createInbox, DeliverPolicy, isHeartbeatMsg, nanos, type JetStreamManager, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "nats";
import type { Logger } from "../../platform/logger.js";
import { exponentialBackoff, sleep } from "../../platform/retry.js";
import { isTracing } from "../../platform/tracing.js";

/** One stored event of a room, as the feed passes it on. */
export interface FeedEvent {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** When JetStream stored it (epoch ms). */
  storedAt: number;
  /** The message's headers, read only when tracing (the trace context of whoever published it). */
  headers?: MsgHdrs | undefined;
}

export interface RoomFeedDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  stream: string;
  log: Logger;
  /** The consumer's idle heartbeat; three missed ones make the feed start over. */
  heartbeatMs: number;
}

/** The stream is gone (deleted or recreated): the room's history no longer holds. */
export class StreamGone extends Error {
  override name = "StreamGone";
}

const restartPolicy = exponentialBackoff(100, 5_000);

/**
 * A room's ordered view of the stream: an ephemeral push consumer (no acks,
 * idle heartbeats, in memory) filtered to the workspace, which JetStream fills
 * in stream order. Complete by construction: JetStream numbers the consumer's
 * deliveries 1, 2, 3…, so a number out of turn (a message lost on the way), a
 * heartbeat that says more was sent than arrived, three missed heartbeats (the
 * consumer or its server gone) or a reconnect make the feed start a new
 * consumer right after the last event it passed on. Nothing is skipped, and
 * nothing is passed on twice. Unlike the stream's republished copies, whose
 * order NATS 2.9 does not keep between publishers, this order is the stream's.
 */
export class RoomFeed {
  private subscription: Subscription | undefined;
  private consumer = "";
  private nextDelivery = 1;
  private lastHeard = Date.now();
  private restarting: Promise<void> | undefined;
  private closed = false;
  private readonly watchdog: NodeJS.Timeout;

  constructor(
    private readonly deps: RoomFeedDeps,
    private readonly filter: string,
    /** The sequence of the last event already handled; the feed starts after it. */
    private last: number,
    private readonly onEvent: (event: FeedEvent) => void,
    /** Called once when the feed cannot go on (the stream is gone). */
    private readonly onFailure: (error: Error) => void,
    /** Checked before each restart: throws StreamGone when the history changed (the stream was recreated). */
    private readonly beforeRestart: () => Promise<void> = async () => undefined,
  ) {
    let lastTick = Date.now();
    this.watchdog = setInterval(() => {
      const now = Date.now();
      // A tick that comes late means this process was too busy to read its socket: the
      // heartbeats may be waiting there unread, so silence proves nothing this time.
      const late = now - lastTick > 1.5 * deps.heartbeatMs;
      lastTick = now;
      if (late) this.lastHeard = Math.max(this.lastHeard, now - deps.heartbeatMs);
      else if (!this.restarting && now - this.lastHeard > 3 * deps.heartbeatMs) this.restart("heartbeats missed");
    }, deps.heartbeatMs);
    this.watchdog.unref();
  }

  /** The sequence of the last event passed on. */
  get position(): number {
    return this.last;
  }

  /** Creates the first consumer; resolves with how many events of the room follow the start position. */
  async start(): Promise<number> {
    return this.open();
  }

  /** Starts over after the last event passed on (after a NATS reconnect, say). Safe to call while restarting. */
  restart(reason: string): void {
    if (this.closed || this.restarting) return;
    this.deps.log.debug({ filter: this.filter, after: this.last, reason }, "room feed restarting");
    this.restarting = (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.beforeRestart();
          await this.open();
          return;
        } catch (error) {
          if (error instanceof StreamGone) {
            this.close();
            this.onFailure(error);
            return;
          }
          this.deps.log.warn({ err: error, filter: this.filter, attempt }, "room feed cannot restart yet; retrying");
          await sleep(restartPolicy.backoff(attempt));
        }
      }
    })().finally(() => (this.restarting = undefined));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    this.drop();
  }

  /** A new consumer after `last`, its messages on a fresh inbox subscribed before it exists. */
  private async open(): Promise<number> {
    this.drop();
    const inbox = createInbox();
    const subscription = this.deps.nc.subscribe(inbox, { callback: (error, message) => error || this.receive(subscription, message) });
    this.subscription = subscription;
    this.nextDelivery = 1;
    this.lastHeard = Date.now();
    try {
      await this.deps.nc.flush();
      const info = await this.deps.jsm.consumers.add(this.deps.stream, {
        deliver_subject: inbox,
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.last + 1,
        filter_subject: this.filter,
        idle_heartbeat: nanos(this.deps.heartbeatMs),
        flow_control: false,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(Math.max(5_000, 3 * this.deps.heartbeatMs)),
      });
      if (this.subscription !== subscription) {
        // Closed or restarted meanwhile: this consumer is nobody's.
        void this.deps.jsm.consumers.delete(this.deps.stream, info.name).catch(() => undefined);
        return 0;
      }
      this.consumer = info.name;
      return info.num_pending;
    } catch (error) {
      if (this.subscription === subscription) this.drop();
      if (isStreamNotFound(error)) throw new StreamGone(`stream ${this.deps.stream} not found`, { cause: error });
      throw error;
    }
  }

  private drop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this.consumer) {
      const name = this.consumer;
      this.consumer = "";
      // Best effort: an ephemeral consumer without interest goes away on its own anyway.
      this.deps.jsm.consumers.delete(this.deps.stream, name).catch((error: unknown) =>
        this.deps.log.debug({ err: error, consumer: name }, "room feed consumer not deleted (it expires by itself)"),
      );
    }
  }

  /** Each consumer delivers to an inbox of its own: a message on an older inbox is stale. */
  private receive(subscription: Subscription, message: Msg): void {
    if (subscription !== this.subscription) return;
    this.lastHeard = Date.now();
    if (isHeartbeatMsg(message)) {
      // "Nats-Last-Consumer": deliveries the consumer made; more than arrived means some were lost.
      const sent = Number(message.headers?.get("Nats-Last-Consumer") ?? 0);
      if (sent >= this.nextDelivery) this.restart("a heartbeat reported deliveries that did not arrive");
      return;
    }
    const meta = parseAckSubject(message.reply);
    if (!meta) return;
    if (meta.delivery !== this.nextDelivery) {
      this.restart(`delivery ${meta.delivery} arrived where ${this.nextDelivery} was due`);
      return;
    }
    this.nextDelivery++;
    if (meta.seq <= this.last) return;
    this.last = meta.seq;
    this.onEvent({ seq: meta.seq, subject: message.subject, data: message.data, storedAt: meta.storedAt, headers: isTracing() ? message.headers : undefined });
  }
}

/**
 * The metadata JetStream puts in a delivered message's reply subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`,
 * or, from newer servers, the same after a domain and an account hash token.
 */
export function parseAckSubject(reply: string | undefined): { seq: number; delivery: number; storedAt: number } | undefined {
  if (!reply?.startsWith("$JS.ACK.")) return undefined;
  const tokens = reply.split(".");
  const at = tokens.length === 9 ? 2 : tokens.length >= 11 ? 4 : -1;
  if (at < 0) return undefined;
  const seq = Number(tokens[at + 3]);
  const delivery = Number(tokens[at + 4]);
  const storedAt = Math.floor(Number(tokens[at + 5]) / 1e6);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(delivery)) return undefined;
  return { seq, delivery, storedAt: Number.isFinite(storedAt) ? storedAt : Date.now() };
}

function isStreamNotFound(error: unknown): boolean {
  const e = error as { message?: string; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === 10059 || e?.message === "stream not found";
}
