import { Registry } from "prom-client";
import { describe, expect, test } from "vitest";
import { Subjects } from "../../platform/events.js";
import { createLogger } from "../../platform/logger.js";
import { newConnection, type Connection } from "./connection.js";
import { RealtimeMetrics } from "./metrics.js";
import type { FeedEvent } from "./room-feed.js";
import { Room, type RoomDeps } from "./rooms.js";
import { SseStream, SseTopics } from "./sse.js";
import type { StoredMessage } from "./stream-reader.js";

/**
 * The Room against fakes of the stream (stored events, a feed the test pushes
 * live events into) and of uWS (topics, sockets): what a client gets, from
 * where, and when it goes live. test/realtime*.test.ts prove the same end to
 * end with real processes and NATS.
 */

const WS = "ws1";
const subjects = new Subjects("unit");
const envelope = (seq: number) => new TextEncoder().encode(JSON.stringify({ id: `e${seq}`, type: "task.created", workspace_id: WS, aggregate_id: `t${seq}`, data: {}, timestamp: seq }));

class FakeStream {
  /** Stored events of the workspace, by sequence. */
  stored: number[] = [];
  epoch = "epoch-1";
  reads = 0;
  failReads = false;
  feed: { onEvent: (e: FeedEvent) => void; after: number } | undefined;

  /** Stores an event and hands it to the room's feed, as JetStream would. */
  publish(seq: number): void {
    this.stored.push(seq);
    if (this.feed && seq > this.feed.after) this.feed.onEvent({ seq, subject: `unit.tasks.${WS}.created`, data: envelope(seq), storedAt: Date.now() });
  }

  reader: RoomDeps["reader"] = {
    lastSeq: async () => this.stored.at(-1) ?? 0,
    firstSeq: async () => this.stored[0] ?? 0,
    state: async () => ({ epoch: this.epoch, firstSeq: this.stored[0] ?? 1, lastSeq: this.stored.at(-1) ?? 0 }),
    read: (_filter, start, options = {}) => {
      this.reads++;
      const stream = this;
      const after = "afterSeq" in start ? start.afterSeq : 0;
      return (async function* (): AsyncGenerator<StoredMessage> {
        if (stream.failReads) throw new Error("JetStream timed out");
        const wanted = stream.stored.filter((seq) => seq > after && seq <= (options.until ?? Infinity));
        for (const [i, seq] of wanted.entries()) yield { seq, subject: "s", data: envelope(seq), pending: wanted.length - i - 1 };
      })() as ReturnType<RoomDeps["reader"]["read"]>;
    },
  };
}

/** uWS as far as a room uses it: topics published to their subscribers. */
class FakeApp {
  readonly topics = new Map<string, Set<FakeSocket>>();
  publish(topic: string, frame: Buffer | string) {
    for (const socket of this.topics.get(topic) ?? []) socket.frames.push(String(frame));
    return true;
  }
  numSubscribers(topic: string) {
    return this.topics.get(topic)?.size ?? 0;
  }
}

class FakeSocket {
  frames: string[] = [];
  closed: { code: number; reason: string } | undefined;
  constructor(private readonly app: FakeApp) {}
  send(frame: Buffer | string) {
    this.frames.push(String(frame));
    return 1;
  }
  getBufferedAmount() {
    return 0;
  }
  subscribe(topic: string) {
    const set = this.app.topics.get(topic) ?? new Set();
    set.add(this);
    this.app.topics.set(topic, set);
    return true;
  }
  end(code: number, reason: string) {
    this.closed = { code, reason };
  }
  cork(callback: () => void) {
    callback();
  }
  /** The `connected` frame. */
  get connected() {
    return JSON.parse(this.frames[0]!) as { seq: number; recovered?: boolean; epoch: string; first_seq: number };
  }
  /** The sequences of the events received, in order. */
  get seqs() {
    return this.frames.slice(1).map((f) => (JSON.parse(f) as { seq: number }).seq);
  }
}

function setup(options: { historyEvents?: number } = {}) {
  const stream = new FakeStream();
  const app = new FakeApp();
  const sse = new SseTopics();
  const deps: RoomDeps = {
    app: app as unknown as RoomDeps["app"],
    sse,
    feed: (_filter, after, onEvent) => {
      stream.feed = { onEvent, after };
      return { start: async () => Math.max(0, (stream.stored.at(-1) ?? 0) - after), restart: () => undefined, close: () => (stream.feed = undefined) };
    },
    reader: stream.reader,
    subjects,
    metrics: new RealtimeMetrics(new Registry()),
    log: createLogger("test", "silent"),
    streamState: () => stream.reader.state(),
    history: { maxEvents: options.historyEvents ?? 1_000, maxBytes: 8 * 1024 * 1024 },
    groups: async () => new Map(),
    catchUpHighWater: 1024 * 1024,
    drainTimeoutMs: 1_000,
  };
  let n = 0;
  const client = async (room: Room, since?: number, epoch?: string) => {
    const conn: Connection = newConnection({ id: `c${++n}`, transport: "websocket", workspaceId: WS, userId: "u", name: "U", since, epoch, expiresAt: Date.now() + 60_000, burst: 10 });
    const socket = new FakeSocket(app);
    conn.socket = socket as unknown as Connection["socket"];
    await room.admit(conn);
    return { conn, socket };
  };
  /** An SSE client: its stream's bytes are collected as the router would write them. */
  const sseClient = async (room: Room, since?: number, epoch?: string) => {
    const conn: Connection = newConnection({ id: `s${++n}`, transport: "sse", workspaceId: WS, userId: "u", name: "U", since, epoch, expiresAt: Date.now() + 60_000, burst: 10 });
    const stream = new SseStream(sse, () => conn.onDrain?.(), () => undefined);
    conn.socket = stream;
    let text = "";
    const reading = (async () => {
      for await (const chunk of stream) text += chunk.toString();
    })();
    await room.admit(conn);
    return { conn, stream, reading, text: () => text };
  };
  return { stream, app, deps, client, sseClient };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("room", () => {
  test("a client resuming within the room's memory gets every later event from it, then live events, without gap or duplicate", async () => {
    const { stream, deps, client } = setup();
    for (const seq of range(1, 10)) stream.publish(seq);
    const room = new Room(WS, deps);
    const first = await client(room); // starts the room at the latest event
    for (const seq of range(11, 20)) stream.publish(seq);
    const readsBefore = stream.reads;
    const resumed = await client(room, 14, "epoch-1");
    expect(resumed.socket.connected).toMatchObject({ seq: 20, recovered: true, epoch: "epoch-1" });
    for (const seq of range(21, 23)) stream.publish(seq);
    expect(resumed.socket.seqs).toEqual(range(15, 23));
    expect(first.socket.seqs).toEqual(range(11, 23));
    expect(resumed.conn.phase).toBe("live");
    expect(stream.reads, "no JetStream read for what memory holds").toBe(readsBefore);
  });

  test("clients resuming below the memory share one read of the stream (in memory-sized segments), skip what they have, then go live", async () => {
    const { stream, deps, client } = setup({ historyEvents: 5 });
    for (const seq of range(1, 40)) stream.publish(seq);
    const room = new Room(WS, deps);
    await client(room);
    const [a, b] = await Promise.all([client(room, 10, "epoch-1"), client(room, 12, "epoch-1")]);
    stream.publish(41);
    expect(a.socket.connected.recovered).toBe(true);
    expect(a.socket.seqs).toEqual(range(11, 41));
    expect(b.socket.seqs).toEqual(range(13, 41));
    // 30 events below a 5-event memory: read in 6 segments of the memory's size, each read once for both clients.
    expect(stream.reads).toBe(6);
  });

  test("a position from another history, ahead of the room, or expired is told recovered: false and continues live from now", async () => {
    const { stream, deps, client } = setup();
    for (const seq of range(5, 10)) stream.publish(seq); // 1–4 expired
    const room = new Room(WS, deps);
    const foreign = await client(room, 7, "epoch-0");
    const ahead = await client(room, 99, "epoch-1");
    const expired = await client(room, 2, "epoch-1");
    for (const c of [foreign, ahead, expired]) expect(c.socket.connected).toMatchObject({ seq: 10, recovered: false, first_seq: 5 });
    stream.publish(11);
    for (const c of [foreign, ahead, expired]) expect(c.socket.seqs).toEqual([11]);
  });

  test("a stream read that fails closes the client (1011, to reconnect) instead of moving it past events it did not get", async () => {
    const { stream, deps, client } = setup({ historyEvents: 5 });
    for (const seq of range(1, 30)) stream.publish(seq);
    const room = new Room(WS, deps);
    await client(room);
    stream.failReads = true;
    const c = await client(room, 3, "epoch-1");
    expect(c.socket.closed?.code).toBe(1011);
    expect(c.socket.seqs).toEqual([]);
    expect(c.conn.phase).toBe("closed");
  });

  test("an SSE client gets `connected` with the position it resumes from as its id, then every later event as `id`/`event`/`data`, then live events, and `event: close` when ended", async () => {
    const { stream, deps, client, sseClient } = setup();
    for (const seq of range(1, 10)) stream.publish(seq);
    const room = new Room(WS, deps);
    await client(room);
    for (const seq of range(11, 14)) stream.publish(seq);
    const sse = await sseClient(room, 12, "epoch-1");
    stream.publish(15);
    await new Promise((resolve) => setImmediate(resolve)); // the router takes what is queued
    sse.stream.end(1012, "server restarting");
    await sse.reading;
    const messages = sse
      .text()
      .split("\n\n")
      .filter(Boolean)
      .map((block) => Object.fromEntries(block.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)])));
    expect(messages[0]).toMatchObject({ id: "12", event: "connected" });
    expect(JSON.parse(messages[0]!.data!)).toMatchObject({ type: "connected", seq: 14, recovered: true });
    expect(messages.slice(1, -1).map((m) => [m.id, m.event, JSON.parse(m.data!).seq])).toEqual([
      ["13", "task.created", 13],
      ["14", "task.created", 14],
      ["15", "task.created", 15],
    ]);
    expect(messages.at(-1)).toEqual({ event: "close", data: JSON.stringify({ code: 1012, reason: "server restarting" }) });
  });
});
