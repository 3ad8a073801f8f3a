import type { NatsConnection, Subscription } from "nats";
import type { Event } from "../../internal/platform/events.js";
import { waitFor } from "./wait.js";

export interface Seen {
  subject: string;
  event: Event;
}

/** Records every event published under the mesh's subject root, for assertions. */
export class EventTap {
  readonly seen: Seen[] = [];
  private readonly subscription: Subscription;

  constructor(nc: NatsConnection, root: string) {
    this.subscription = nc.subscribe(`${root}.>`, {
      callback: (_error, message) => {
        this.seen.push({ subject: message.subject, event: JSON.parse(new TextDecoder().decode(message.data)) as Event });
      },
    });
  }

  /** Resolves with the first event matching `predicate`, or fails naming `what`. */
  waitFor(what: string, predicate: (seen: Seen) => boolean, timeoutMs = 10_000): Promise<Seen> {
    return waitFor(`event: ${what}`, () => this.seen.find(predicate), timeoutMs);
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

/**
 * The sequences of every stored message of `filter`, read straight from the
 * stream (an ordered consumer): the ground truth the clients are checked against.
 */
export async function storedSeqs(nc: NatsConnection, stream: string, filter: string, afterSeq = 0): Promise<number[]> {
  const js = nc.jetstream();
  const consumer = await js.consumers.get(stream, { filterSubjects: filter, opt_start_seq: afterSeq + 1 });
  const seqs: number[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
    let last = false;
    let received = 0;
    for await (const message of batch) {
      received++;
      seqs.push(message.seq);
      if (message.info.pending === 0) {
        last = true;
        break;
      }
    }
    if (last) return seqs;
    if (received === 0) {
      // Nothing came: either nothing is stored after the position, or the fetch timed out; ask.
      const info = await consumer.info();
      if (info.num_pending === 0) return seqs;
    }
  }
}

/** Every stored message of `filter` with its envelope, read straight from the stream. */
export async function storedEvents(nc: NatsConnection, stream: string, filter: string): Promise<{ seq: number; event: Event }[]> {
  const js = nc.jetstream();
  const consumer = await js.consumers.get(stream, { filterSubjects: filter });
  const out: { seq: number; event: Event }[] = [];
  const decoder = new TextDecoder();
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
    let received = 0;
    for await (const message of batch) {
      received++;
      out.push({ seq: message.seq, event: JSON.parse(decoder.decode(message.data)) as Event });
      if (message.info.pending === 0) return out;
    }
    if (received === 0 && (await consumer.info()).num_pending === 0) return out;
  }
}
