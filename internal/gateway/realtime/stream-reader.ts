import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "nats";

export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** Messages of the filter still after this one. */
  pending: number;
}

export type StartAt = { afterSeq: number } | { time: Date };

/**
 * Reads stored events of one filter in stream order (an ordered consumer), for
 * a client's catch-up, a room's resync after a NATS outage, and event listing.
 */
export class StreamReader {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  /** The sequence of the latest stored message of `filter`, 0 if none. */
  async lastSeq(filter: string): Promise<number> {
    try {
      const message = await this.jsm.streams.getMessage(this.stream, { last_by_subj: filter });
      return message.seq;
    } catch (error) {
      if ((error as { code?: string }).code === "404") return 0;
      throw error;
    }
  }

  /**
   * Messages of `filter` from `start`, in order, in batches, until the end of
   * the stream. The caller may stop early by breaking out of the loop.
   */
  async *read(filter: string, start: StartAt, batch = 256): AsyncGenerator<StoredMessage> {
    const consumer = await this.js.consumers.get(this.stream, {
      filterSubjects: filter,
      ...("afterSeq" in start
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.afterSeq + 1 }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.time.toISOString() }),
    });
    try {
      for (;;) {
        const messages = await consumer.fetch({ max_messages: batch, expires: 1_000 });
        let received = 0;
        let last = false;
        for await (const message of messages) {
          received++;
          const pending = message.info.pending;
          yield { seq: message.seq, subject: message.subject, data: message.data, pending };
          if (pending === 0) {
            last = true;
            break;
          }
        }
        if (last || received === 0) return;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }
}
