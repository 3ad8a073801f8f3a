import { AckPolicy, nanos, type Consumer, type JsMsg, type NatsConnection, type Subscription } from "nats";
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
 * Every message a fresh consumer has for its reader, to the end of the stream as it is
 * now: only JetStream's own count (`pending` 0, or nothing pending when a fetch comes
 * back empty) ends the read, never a quiet moment.
 */
async function* toTheEnd(consumer: Consumer): AsyncGenerator<JsMsg> {
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
    let received = 0;
    for await (const message of batch) {
      received++;
      yield message;
      if (message.info.pending === 0) return;
    }
    if (received === 0 && (await consumer.info()).num_pending === 0) return;
  }
}

/**
 * The sequences of every stored message of `filter`, read straight from the
 * stream (an ordered consumer): the ground truth the clients are checked against.
 */
export async function storedSeqs(nc: NatsConnection, stream: string, filter: string, afterSeq = 0): Promise<number[]> {
  const consumer = await nc.jetstream().consumers.get(stream, { filterSubjects: filter, opt_start_seq: afterSeq + 1 });
  const seqs: number[] = [];
  for await (const message of toTheEnd(consumer)) seqs.push(message.seq);
  return seqs;
}

/** Every stored message of `filter` with its envelope, read straight from the stream. */
export async function storedEvents(nc: NatsConnection, stream: string, filter: string): Promise<{ seq: number; event: Event }[]> {
  const consumer = await nc.jetstream().consumers.get(stream, { filterSubjects: filter });
  const out: { seq: number; event: Event }[] = [];
  for await (const message of toTheEnd(consumer)) out.push({ seq: message.seq, event: message.json<Event>() });
  return out;
}

/**
 * Each stream replica's own copy of the stream ("seq:event id" per message, by
 * server name), read through one ephemeral consumer led by each replica: a
 * consumer reads its own server's copy, so this shows whether the replicas of
 * an R3 stream hold the same messages at the same sequences.
 */
export async function replicaCopies(nc: NatsConnection, stream: string): Promise<Map<string, string[]>> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream);
  const servers = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].filter((s): s is string => !!s);
  const byServer = new Map<string, string>();
  // Placement of an R1 consumer among the stream's peers is the server's choice: ask until each holds one.
  for (let tries = 0; tries < 60 && byServer.size < servers.length; tries++) {
    const consumer = await jsm.consumers.add(stream, { ack_policy: AckPolicy.None, mem_storage: true, num_replicas: 1, inactive_threshold: nanos(30_000) });
    const server = consumer.cluster?.leader;
    if (server && !byServer.has(server)) byServer.set(server, consumer.name);
    else await jsm.consumers.delete(stream, consumer.name);
  }
  const js = nc.jetstream();
  const copies = new Map<string, string[]>();
  for (const [server, name] of byServer) {
    const copy: string[] = [];
    for await (const message of toTheEnd(await js.consumers.get(stream, name))) copy.push(`${message.seq}:${message.json<Event>().id}`);
    copies.set(server, copy);
    await jsm.consumers.delete(stream, name);
  }
  return copies;
}

/** How the replicas' copies differ (first differing position per replica), or undefined when they are the same. */
export function replicaDivergence(copies: Map<string, string[]>): string | undefined {
  const [first, ...others] = [...copies.entries()];
  if (!first) return undefined;
  const differences = others.flatMap(([server, copy]) => {
    const at = copy.findIndex((entry, i) => entry !== first[1][i]);
    if (at === -1 && copy.length === first[1].length) return [];
    const i = at === -1 ? Math.min(copy.length, first[1].length) : at;
    return [`${server} holds ${copy.length} messages, ${first[0]} ${first[1].length}; first difference at position ${i}: ${copy[i] ?? "(none)"} vs ${first[1][i] ?? "(none)"}`];
  });
  return differences.length === 0 ? undefined : differences.join("; ");
}
