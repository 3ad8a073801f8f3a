import { AckPolicy, DeliverPolicy, nanos, type Consumer, type JetStreamClient, type JetStreamManager } from "nats";

export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** Messages of the filter still after this one. */
  pending: number;
}

export type StartAt = { afterSeq: number } | { time: Date };

/** What the stream holds now: its identity (changes when it is recreated) and its range. */
export interface StreamState {
  /** When the stream was created: a stream deleted and created again is another history. */
  epoch: string;
  /** The oldest sequence still stored (the stream's retention moved past everything before). */
  firstSeq: number;
  lastSeq: number;
}

/** A read could not go on: JetStream did not deliver what it says it holds. */
export class ReadStalled extends Error {
  override name = "ReadStalled";
}

export interface StreamReaderOptions {
  /** How long one fetch waits for messages. */
  fetchTimeoutMs?: number;
  /** Empty fetches in a row, while JetStream says messages are pending, before the read fails. */
  maxEmptyFetches?: number;
}

/**
 * Reads stored events of one filter in stream order, for catch-up below a
 * room's memory, and the events API. A read ends only when JetStream says
 * nothing more matches (`pending` 0) or at `until`: a fetch that returns
 * nothing (a timeout under load) is asked again, never taken for the end.
 */
export class StreamReader {
  private readonly fetchTimeoutMs: number;
  private readonly maxEmptyFetches: number;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    options: StreamReaderOptions = {},
  ) {
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 1_000;
    this.maxEmptyFetches = options.maxEmptyFetches ?? 5;
  }

  /** The sequence of the latest stored message of `filter`, 0 if none. */
  async lastSeq(filter: string): Promise<number> {
    return this.seqOf({ last_by_subj: filter });
  }

  /** The sequence of the oldest stored message of `filter`, 0 if none. */
  async firstSeq(filter: string): Promise<number> {
    return this.seqOf({ next_by_subj: filter, seq: 0 });
  }

  async state(): Promise<StreamState> {
    const info = await this.jsm.streams.info(this.stream);
    return { epoch: info.created, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
  }

  /**
   * Messages of `filter` from `start`, in order, in batches, until JetStream
   * says none is left or a message at or past `until` has been yielded. The
   * caller may stop early by breaking out of the loop.
   */
  async *read(filter: string, start: StartAt, options: { until?: number; batch?: number } = {}): AsyncGenerator<StoredMessage> {
    const batch = options.batch ?? 256;
    let last = "afterSeq" in start ? start.afterSeq : undefined;
    const from = () => (last === undefined ? start : { afterSeq: last });
    let consumer = await this.consumer(filter, from());
    let expected = 1;
    try {
      for (let empty = 0; ; ) {
        const messages = await consumer.fetch({ max_messages: batch, expires: this.fetchTimeoutMs });
        let received = 0;
        let lost = false;
        for await (const message of messages) {
          // Deliveries are numbered; one out of turn means one was lost on the way.
          if (message.info.deliverySequence !== expected) {
            lost = true;
            break;
          }
          expected++;
          received++;
          last = message.seq;
          yield { seq: message.seq, subject: message.subject, data: message.data, pending: message.info.pending };
          if (message.info.pending === 0 || (options.until !== undefined && message.seq >= options.until)) return;
        }
        if (!lost && received < batch) {
          // Fewer than asked and pending never reached 0: the fetch was cut short. Ask JetStream
          // what is left, and whether it delivered messages that never arrived (to a pull that
          // expired under load): the consumer counts those as delivered, so "none pending" alone
          // would end the read before them.
          const info = await consumer.info(false);
          lost = info.delivered.consumer_seq >= expected;
          if (!lost) {
            if (info.num_pending === 0) return;
            empty = received > 0 ? 0 : empty + 1;
            if (empty >= this.maxEmptyFetches) {
              throw new ReadStalled(`JetStream holds ${info.num_pending} more messages of ${filter} but delivered none in ${empty} fetches`);
            }
          }
        } else if (!lost) {
          empty = 0;
        }
        if (lost) {
          // Start over right after the last message yielded.
          await consumer.delete().catch(() => undefined);
          consumer = await this.consumer(filter, from());
          expected = 1;
        }
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  /** An ephemeral pull consumer (no acks, in memory, gone by itself if abandoned) from `start`. */
  private async consumer(filter: string, start: StartAt): Promise<Consumer> {
    const info = await this.jsm.consumers.add(this.stream, {
      ack_policy: AckPolicy.None,
      filter_subject: filter,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(30_000),
      ...("afterSeq" in start
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.afterSeq + 1 }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.time.toISOString() }),
    });
    return this.js.consumers.get(this.stream, info.name);
  }

  private async seqOf(query: { last_by_subj: string } | { next_by_subj: string; seq: number }): Promise<number> {
    try {
      return (await this.jsm.streams.getMessage(this.stream, query as never)).seq;
    } catch (error) {
      if ((error as { code?: string }).code === "404") return 0;
      throw error;
    }
  }
}
