import type { Msg, NatsConnection, Subscription } from "nats";
import type { TemplatedApp } from "uWebSockets.js";
import type { Subjects } from "../../platform/events.js";
import type { Logger } from "../../platform/logger.js";
import { CloseCode, connectedFrame, eventFrame } from "./frames.js";
import { endConnection, endSlowConnection, type Connection } from "./connection.js";
import type { RealtimeMetrics } from "./metrics.js";
import type { StreamReader } from "./stream-reader.js";

export interface RoomDeps {
  app: TemplatedApp;
  nc: NatsConnection;
  reader: StreamReader;
  subjects: Subjects;
  metrics: RealtimeMetrics;
  log: Logger;
  /** Buffered bytes above which a catching-up client is sent no more until it drains. */
  catchUpHighWater: number;
  /** How long a catching-up client may take to drain before it is closed as slow. */
  drainTimeoutMs: number;
}

interface Pending {
  seq: number;
  subject: string;
  data: Uint8Array;
  storedAt: number;
}

const decoder = new TextDecoder();

/**
 * The room of one workspace on this replica. It subscribes on NATS to the
 * workspace's republished events only while it has local clients, publishes
 * each event once to the uWS topic (serialised once, whatever the number of
 * clients), and brings joining clients up to date from the stream before
 * switching them to the topic, so that no client sees a gap or a duplicate.
 */
export class Room {
  readonly topic: string;
  readonly connections = new Set<Connection>();
  /** The sequence of the last event published to the topic (or the latest stored one at start). */
  lastSeq = 0;
  private state: "starting" | "live" | "resyncing" = "starting";
  private buffer: Pending[] = [];
  private readonly waiting = new Set<Connection>();
  private readonly subscription: Subscription;
  readonly ready: Promise<void>;
  private disposed = false;
  /** An event was published since the hub's last look at this room's buffers. */
  active = false;

  constructor(
    readonly workspaceId: string,
    private readonly deps: RoomDeps,
  ) {
    this.topic = `room:${workspaceId}`;
    this.subscription = deps.nc.subscribe(deps.subjects.roomLive(workspaceId), {
      callback: (error, message) => {
        if (!error) this.onLive(message);
      },
    });
    this.ready = this.start();
  }

  get filter(): string {
    return this.deps.subjects.room(this.workspaceId);
  }

  /** Sends `connected`, then brings the client from `since` to the live topic. */
  async admit(conn: Connection): Promise<void> {
    this.connections.add(conn);
    await this.ready;
    if (conn.phase === "closed" || !conn.socket) return;
    conn.socket.send(connectedFrame(this.workspaceId, conn.id, this.lastSeq));
    if (conn.since === undefined) {
      conn.position = this.lastSeq;
      this.settle(conn);
      return;
    }
    conn.position = conn.since;
    conn.phase = "catching-up";
    await this.catchUp(conn);
  }

  remove(conn: Connection): void {
    this.connections.delete(conn);
    this.waiting.delete(conn);
  }

  /** Called after a NATS reconnect: publishes what the room missed, in order (retrying until JetStream answers). */
  async resync(): Promise<void> {
    if (this.state !== "live") return;
    this.state = "resyncing";
    try {
      for (let attempt = 1; !this.disposed; attempt++) {
        try {
          for await (const message of this.deps.reader.read(this.filter, { afterSeq: this.lastSeq })) {
            if (this.disposed) return;
            this.deliver(message.seq, message.subject, message.data, Date.now());
          }
          return;
        } catch (error) {
          this.deps.log.warn({ err: error, workspace_id: this.workspaceId, attempt }, "room resync failed; retrying");
          await new Promise((resolve) => setTimeout(resolve, Math.min(250 * attempt, 2_000)));
        }
      }
    } finally {
      this.state = "live";
      this.flushBuffer();
    }
  }

  dispose(): void {
    this.disposed = true;
    this.subscription.unsubscribe();
  }

  private async start(): Promise<void> {
    // Once the server has our interest, every event stored from now on reaches us live;
    // the latest stored sequence then says where the live stream takes over.
    await this.deps.nc.flush();
    const latest = await this.deps.reader.lastSeq(this.filter);
    this.lastSeq = Math.max(this.lastSeq, latest);
    this.state = "live";
    this.flushBuffer();
  }

  private onLive(message: Msg): void {
    this.deps.metrics.eventsReceived.inc();
    const seq = Number(message.headers?.get("Nats-Sequence"));
    if (!Number.isSafeInteger(seq)) return;
    const storedAt = Date.parse(message.headers?.get("Nats-Time-Stamp") ?? "") || Date.now();
    if (this.state !== "live") {
      this.buffer.push({ seq, subject: message.subject, data: message.data, storedAt });
      return;
    }
    this.deliver(seq, message.subject, message.data, storedAt);
  }

  private flushBuffer(): void {
    const buffered = this.buffer;
    this.buffer = [];
    for (const p of buffered) this.deliver(p.seq, p.subject, p.data, p.storedAt);
  }

  /** The one way an event reaches the topic: in sequence order, never twice. */
  private deliver(seq: number, subject: string, data: Uint8Array, storedAt: number): void {
    if (seq <= this.lastSeq || this.disposed) return;
    const frame = eventFrame(data, seq);
    if (!frame) return;
    // Clients ahead of the room join the topic just before the first event they lack.
    for (const conn of this.waiting) if (conn.position < seq) this.goLive(conn);
    this.lastSeq = seq;
    this.active = true;
    this.deps.app.publish(this.topic, frame, false);
    this.deps.metrics.delivered(this.deps.app.numSubscribers(this.topic), storedAt);
    this.applyEffects(subject, data);
  }

  /** Membership changes close the sockets that may no longer listen. */
  private applyEffects(subject: string, data: Uint8Array): void {
    const tokens = subject.split(".");
    if (tokens[tokens.length - 3] !== "workspaces") return;
    const action = tokens[tokens.length - 1];
    if (action === "deleted") {
      for (const conn of [...this.connections]) endConnection(conn, CloseCode.workspaceDeleted, "workspace deleted");
    } else if (action === "member_removed") {
      const removed = (JSON.parse(decoder.decode(data)) as { aggregate_id?: string }).aggregate_id;
      for (const conn of [...this.connections]) {
        if (conn.userId === removed) endConnection(conn, CloseCode.removedFromWorkspace, "removed from workspace");
      }
    }
  }

  private async catchUp(conn: Connection): Promise<void> {
    try {
      while (conn.phase === "catching-up") {
        if (conn.position >= this.lastSeq) return this.settle(conn);
        let progressed = false;
        for await (const message of this.deps.reader.read(this.filter, { afterSeq: conn.position })) {
          if (conn.phase !== "catching-up" || !conn.socket) return;
          // Beyond what the room has published: the live topic will bring it.
          if (message.seq > this.lastSeq) break;
          const frame = eventFrame(message.data, message.seq);
          if (frame && conn.socket.send(frame) === 2) return void endSlowConnection(conn, false);
          conn.position = message.seq;
          progressed = true;
          if (conn.socket.getBufferedAmount() > this.deps.catchUpHighWater && !(await this.drained(conn))) {
            return void endSlowConnection(conn, false);
          }
          if (conn.position >= this.lastSeq) break;
        }
        // Nothing stored between the client and the room (expired or never there): skip ahead.
        if (!progressed && conn.position < this.lastSeq) conn.position = this.lastSeq;
      }
    } catch (error) {
      this.deps.log.warn({ err: error, workspace_id: this.workspaceId }, "catch-up failed");
      endConnection(conn, 1011, "catch-up failed; reconnect");
    }
  }

  /** The client has every event up to `lastSeq` (or more): live now, or once the room passes it. */
  private settle(conn: Connection): void {
    if (conn.phase === "closed") return;
    if (conn.position <= this.lastSeq) this.goLive(conn);
    else {
      conn.phase = "waiting";
      this.waiting.add(conn);
    }
  }

  private goLive(conn: Connection): void {
    this.waiting.delete(conn);
    if (conn.phase === "closed" || !conn.socket) return;
    conn.phase = "live";
    conn.socket.subscribe(this.topic);
  }

  private drained(conn: Connection): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        conn.onDrain = undefined;
        resolve(false);
      }, this.deps.drainTimeoutMs);
      conn.onDrain = () => {
        clearTimeout(timer);
        conn.onDrain = undefined;
        resolve(true);
      };
    });
  }
}
