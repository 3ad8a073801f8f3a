import type { ClientRequest, RealtimeClients } from "./clients.js";
import type { ClientSocket, Connection } from "./connection.js";
import type { HistoryEntry } from "./history.js";

/**
 * Server-Sent Events (API.md "Real-time"): the same rooms, catch-up and
 * limits as the WebSocket, for clients and proxies without it. An SSE stream
 * looks like a WebSocket to its room (ClientSocket): messages queue in memory
 * and the router writes them out with backpressure; what is queued counts as
 * buffered, so a slow SSE client is closed like a slow WebSocket one.
 */

/** One SSE message; `data` is one line of JSON (JSON text has no raw line breaks). */
export function sseMessage(event: string, data: string | Buffer, id?: number): Buffer {
  return Buffer.concat([Buffer.from(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: `), Buffer.from(data), Buffer.from("\n\n")]);
}

/** An event of a room as an SSE message, made once per event and kept with it. */
export function sseEvent(entry: HistoryEntry): Buffer {
  if (!entry.sse) {
    const { type } = JSON.parse(entry.frame.toString("utf8")) as { type: string };
    entry.sse = sseMessage(type, entry.frame, entry.seq);
  }
  return entry.sse;
}

const PING = Buffer.from(": ping\n\n");

/** Live SSE streams by room topic: what uWS's topics are to WebSockets. */
export class SseTopics {
  private readonly topics = new Map<string, Set<SseStream>>();

  subscribe(topic: string, stream: SseStream): void {
    let streams = this.topics.get(topic);
    if (!streams) this.topics.set(topic, (streams = new Set()));
    streams.add(stream);
  }

  unsubscribe(topic: string, stream: SseStream): void {
    const streams = this.topics.get(topic);
    if (!streams?.delete(stream)) return;
    if (streams.size === 0) this.topics.delete(topic);
  }

  /** Sends an event to the topic's streams (serialised once); returns how many there are. */
  publish(topic: string, entry: HistoryEntry): number {
    const streams = this.topics.get(topic);
    if (!streams) return 0;
    const message = sseEvent(entry);
    for (const stream of streams) stream.send(message);
    return streams.size;
  }
}

/** One client's SSE response body: a queue of messages, read by the router as it can write. */
export class SseStream implements ClientSocket, AsyncIterable<Buffer> {
  private queue: Buffer[] = [];
  private queued = 0;
  private wake: (() => void) | undefined;
  private finished = false;
  private reported = false;
  private readonly joined = new Set<string>();

  constructor(
    private readonly topics: SseTopics,
    /** The queue was handed to the network: a catch-up waiting for room may go on. */
    private readonly onDrain: () => void,
    /** Called once when the stream ends, whichever side ended it. */
    private readonly onClose: () => void,
  ) {}

  send(message: string | Buffer): number {
    if (this.finished) return 2;
    const bytes = typeof message === "string" ? Buffer.from(message) : message;
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.notify();
    return 1;
  }

  getBufferedAmount(): number {
    return this.queued;
  }

  subscribe(topic: string): void {
    if (this.finished) return;
    this.joined.add(topic);
    this.topics.subscribe(topic, this);
  }

  cork(callback: () => void): void {
    callback();
  }

  /**
   * Ends the stream with `event: close` (the WebSocket close code and reason as
   * data). What is still queued is dropped: the client holds whole messages up
   * to its last `id`, and resumes from there without a gap.
   */
  end(code: number, reason: string): void {
    if (this.finished) return;
    const close = sseMessage("close", JSON.stringify({ code, reason }));
    this.queue = [close];
    this.queued = close.length;
    this.finish();
  }

  /** The client went away. */
  abort(): void {
    this.queue = [];
    this.queued = 0;
    this.finish();
    this.closed();
  }

  ping(): void {
    if (this.queue.length === 0) this.send(PING);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.queue.length > 0) {
          const chunk = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queued);
          this.queue = [];
          this.queued = 0;
          this.onDrain();
          yield chunk;
        } else if (this.finished) {
          return;
        } else {
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      }
    } finally {
      this.finish();
      this.closed();
    }
  }

  private finish(): void {
    if (!this.finished) {
      this.finished = true;
      for (const topic of this.joined) this.topics.unsubscribe(topic, this);
    }
    this.notify();
  }

  private closed(): void {
    if (this.reported) return;
    this.reported = true;
    this.onClose();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * `GET /workspaces/{workspace_id}/stream`: admits the client like a WebSocket
 * upgrade (ticket or bearer token, membership, connection limit; `since` from
 * `Last-Event-ID` or the query), then hands the router the stream to write.
 * Every open stream gets a `: ping` comment every `heartbeatMs`.
 */
export class SseEndpoint {
  private readonly streams = new Set<SseStream>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly clients: RealtimeClients,
    private readonly topics: SseTopics,
    heartbeatMs: number,
  ) {
    this.heartbeat = setInterval(() => {
      for (const stream of this.streams) stream.ping();
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  async open(request: Omit<ClientRequest, "transport">, signal: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const conn: Connection = await this.clients.admit({ ...request, transport: "sse" });
    if (signal.aborted) {
      this.clients.abandoned(conn);
      return (async function* () {})(); // nobody to write to
    }
    const stream = new SseStream(
      this.topics,
      () => conn.onDrain?.(),
      () => {
        this.streams.delete(stream);
        this.clients.closed(conn);
      },
    );
    conn.socket = stream;
    this.streams.add(stream);
    signal.addEventListener("abort", () => stream.abort(), { once: true });
    this.clients.opened(conn);
    return stream;
  }

  close(): void {
    clearInterval(this.heartbeat);
  }
}
