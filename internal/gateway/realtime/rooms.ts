import type { TemplatedApp } from "uWebSockets.js";
import { cachedFor } from "../../platform/cached.js";
import { decodeEvent, type Subjects } from "../../platform/events.js";
import type { Logger } from "../../platform/logger.js";
import { CloseCode, connectedFrame, eventFrame } from "./frames.js";
import { endConnection, endSlowConnection, type Connection } from "./connection.js";
import { HistorySegment, RoomHistory, type HistoryEntry, type HistoryLimits } from "./history.js";
import type { RealtimeMetrics } from "./metrics.js";
import { RoomFeed, StreamGone, type FeedEvent, type RoomFeedDeps } from "./room-feed.js";
import { sseEvent, sseMessage, type SseTopics } from "./sse.js";
import type { StreamReader, StreamState } from "./stream-reader.js";
import { messageContext, SpanKind, tracer } from "../../platform/tracing.js";

/** The room's ordered feed of its workspace's events (RoomFeed; a fake in the unit tests). */
export interface Feed {
  /** Starts after `after`; resolves with how many stored events are still to come. */
  start(): Promise<number>;
  restart(reason: string): void;
  close(): void;
}

export type OpenFeed = (
  filter: string,
  after: number,
  onEvent: (event: FeedEvent) => void,
  onFailure: (error: Error) => void,
  beforeRestart: () => Promise<void>,
) => Feed;

/** Feeds on JetStream, with these settings. */
export function openRoomFeed(deps: RoomFeedDeps): OpenFeed {
  return (...args) => new RoomFeed(deps, ...args);
}

export interface RoomDeps {
  app: Pick<TemplatedApp, "publish" | "numSubscribers">;
  /** The rooms' live SSE streams (uWS topics serve the WebSockets). */
  sse: Pick<SseTopics, "publish">;
  /** Opens the room's feed: a RoomFeed on JetStream (openRoomFeed), a fake in the unit tests. */
  feed: OpenFeed;
  reader: Pick<StreamReader, "lastSeq" | "firstSeq" | "state" | "read">;
  subjects: Subjects;
  metrics: RealtimeMetrics;
  log: Logger;
  /** The stream's identity and range, fresh to within a second (shared by every room). */
  streamState: () => Promise<StreamState>;
  history: HistoryLimits;
  /** Buffered bytes above which a catching-up client is sent no more until it drains. */
  catchUpHighWater: number;
  /** How long a catching-up client may take to drain before it is closed as slow. */
  drainTimeoutMs: number;
  /** The workspace's groups and their members now (the workspace service; a fake in the unit tests). */
  groups: (workspaceId: string) => Promise<Map<string, ReadonlySet<string>>>;
}

/** The live topic of one user's connections to a room: group messages reach their members through it. */
export function userTopic(workspaceId: string, userId: string): string {
  return `room:${workspaceId}:user:${userId}`;
}

/** How long a finished JetStream read stays for clients that come to it late. */
const SEGMENT_GRACE_MS = 5_000;

/** Catch-up frames sent to a client in one corked write before others get their turn. */
const CATCH_UP_BATCH = 256;

/** The room's history does not reach where a client stands any more (expired, purged or recreated under it). */
class HistoryReset extends Error {
  override name = "HistoryReset";
}

/**
 * The room of one workspace on this replica, while it has local clients.
 *
 * Events come from one ordered feed (RoomFeed: the workspace's events in
 * stream order, complete), are kept in a bounded history in memory and
 * published once to the room's uWS topic, serialised once whatever the number
 * of clients. A joining client is told whether it can be brought up to date
 * (`recovered`); if so, it gets every event after its `since` from memory, or
 * below the memory from a JetStream read shared with the other clients that
 * need it (HistorySegment), then joins the topic at the exact event where
 * catch-up ended: no gap, no duplicate. A read that returns nothing never moves
 * a client on; only what JetStream has proven is covered does.
 *
 * Group messages (API.md "Groups") reach only the group's members: the room keeps
 * each group's members, loaded at start and then set by every group event in stream
 * order, and gives each group message the members of the moment it arrives as its
 * audience. Live, it is published (serialised once) to the members' user topics,
 * which every live connection joins with the room's topic (uWS keeps the order
 * across topics); in catch-up, an entry is sent only to its audience.
 */
export class Room {
  readonly topic: string;
  readonly connections = new Set<Connection>();
  readonly ready: Promise<void>;
  /** An event was published since the hub's last look at this room's buffers. */
  active = false;
  /** The feed could not start or ended (the stream is gone): the hub replaces this room. */
  failed = false;
  private history: RoomHistory;
  private feed: Feed | undefined;
  private readonly waiting = new Set<Connection>();
  private readonly segments: HistorySegment[] = [];
  /** The latest stored event of the workspace when the room started. */
  private latestAtStart = 0;
  private epoch = "";
  /** The oldest stored event of the workspace, looked up at most once a second. */
  private readonly firstSeq = cachedFor(1_000, () => this.deps.reader.firstSeq(this.filter));
  private disposed = false;
  /** Each group's members; a set is replaced, never changed, so an audience stays as it was. */
  private groups = new Map<string, ReadonlySet<string>>();

  constructor(
    readonly workspaceId: string,
    private readonly deps: RoomDeps,
  ) {
    this.topic = `room:${workspaceId}`;
    this.history = new RoomHistory(deps.history, 0);
    this.ready = this.start().catch((error: unknown) => {
      // JetStream did not answer: this room is done; the next client starts another (RoomHub.join).
      this.failed = true;
      this.feed?.close();
      throw error;
    });
  }

  get filter(): string {
    return this.deps.subjects.room(this.workspaceId);
  }

  /** Sends `connected`, then brings the client from `since` to the live topic. */
  async admit(conn: Connection): Promise<void> {
    this.connections.add(conn);
    await this.ready;
    const [state, firstSeq] = await Promise.all([this.deps.streamState(), this.firstSeq()]);
    if (conn.phase === "closed" || !conn.socket) return;
    const latest = Math.max(this.history.head, this.latestAtStart);
    let recovered: boolean | undefined;
    if (conn.since === undefined) {
      conn.position = latest;
    } else if ((conn.epoch !== undefined && conn.epoch !== this.epoch) || conn.since > latest || conn.since + 1 < state.firstSeq) {
      // Another history, a position this history never reached, or events after it expired: reload, then live.
      recovered = false;
      conn.position = latest;
    } else {
      recovered = true;
      conn.position = conn.since;
    }
    const connected = connectedFrame({ workspaceId: this.workspaceId, connectionId: conn.id, seq: latest, epoch: this.epoch, firstSeq, recovered });
    // An SSE client's `connected` carries the position events follow from, as its last event id.
    conn.socket.send(conn.transport === "sse" ? sseMessage("connected", connected, conn.position) : connected);
    if (conn.position >= this.history.head) return this.settle(conn);
    conn.phase = "catching-up";
    await this.catchUp(conn);
  }

  remove(conn: Connection): void {
    this.connections.delete(conn);
    this.waiting.delete(conn);
  }

  /** Whether a user is a member of a group of this room's workspace now. */
  inGroup(groupId: string, userId: string): boolean {
    return this.groups.get(groupId)?.has(userId) ?? false;
  }

  /** Starts the feed over after its last event (after a NATS reconnect). */
  restartFeed(reason: string): void {
    this.feed?.restart(reason);
  }

  dispose(): void {
    this.disposed = true;
    this.feed?.close();
  }

  /**
   * Starts the feed at the oldest position a joining client can be brought
   * from (a reconnect storm comes in with positions just behind the latest
   * event), so that one read serves them all; a position so old that its
   * events would not fit in memory starts the feed at the latest event instead.
   */
  private async start(): Promise<void> {
    const [state, latest, groups] = await Promise.all([
      this.deps.streamState(),
      this.deps.reader.lastSeq(this.filter),
      this.deps.groups(this.workspaceId),
    ]);
    this.groups = groups;
    this.epoch = state.epoch;
    this.latestAtStart = latest;
    const positions = [...this.connections]
      .filter((c) => c.since !== undefined && (c.epoch === undefined || c.epoch === state.epoch) && c.since <= latest && c.since + 1 >= state.firstSeq)
      .map((c) => c.since!);
    const oldest = positions.length > 0 ? Math.min(...positions) : latest;
    const pending = await this.startFeed(oldest);
    if (oldest < latest && pending > this.deps.history.maxEvents) await this.startFeed(latest);
  }

  private async startFeed(after: number): Promise<number> {
    this.feed?.close();
    this.history = new RoomHistory(this.deps.history, after);
    this.feed = this.deps.feed(
      this.filter,
      after,
      (event) => this.deliver(event),
      (error) => this.fail(error),
      async () => {
        if ((await this.deps.reader.state()).epoch !== this.epoch) throw new StreamGone("the stream was recreated");
      },
    );
    return this.feed.start();
  }

  /** The one way an event reaches the topic: from the feed, in stream order, once. */
  private deliver(event: FeedEvent): void {
    if (this.disposed) return;
    this.deps.metrics.eventsReceived.inc();
    // Clients ahead of the room join the topic just before the first event they lack.
    for (const conn of this.waiting) if (conn.position < event.seq) this.goLive(conn);
    const frame = eventFrame(event.data, event.seq);
    // Traced (when the event carries a trace context): one span per replica for the event's fan-out.
    const span = event.headers
      ? tracer.startSpan(
          "ws fan-out",
          { kind: SpanKind.CONSUMER, attributes: { "messaging.system": "nats", "messaging.destination.name": event.subject, "taskboard.workspace_id": this.workspaceId, "taskboard.seq": event.seq } },
          messageContext(event.headers),
        )
      : undefined;
    if (frame) {
      const audience = this.audienceOf(event.subject);
      const entry: HistoryEntry = { seq: event.seq, frame, audience };
      this.history.append(entry);
      this.active = true;
      let listeners = 0;
      for (const topic of audience ? [...audience].map((userId) => userTopic(this.workspaceId, userId)) : [this.topic]) {
        this.deps.app.publish(topic, frame, false);
        listeners += this.deps.app.numSubscribers(topic) + this.deps.sse.publish(topic, entry);
      }
      this.deps.metrics.delivered(listeners, event.storedAt);
      span?.setAttribute("taskboard.listeners", listeners);
    }
    span?.end();
    this.applyEffects(event.subject, event.data);
  }

  /** A group message's audience (the group's members now); undefined for everyone's events. */
  private audienceOf(subject: string): ReadonlySet<string> | undefined {
    const groupId = this.deps.subjects.groupOf(subject);
    return groupId === undefined ? undefined : (this.groups.get(groupId) ?? new Set());
  }

  /** The stream is gone: every client must reload (they reconnect and are told `recovered: false`). */
  private fail(error: Error): void {
    this.failed = true;
    this.deps.log.warn({ err: error, workspace_id: this.workspaceId }, "room feed failed; clients must reload");
    for (const conn of [...this.connections]) endConnection(conn, CloseCode.restarting, "event history reset; reconnect");
  }

  /** Membership changes close the sockets that may no longer listen; group events set the group's members. */
  private applyEffects(subject: string, data: Uint8Array): void {
    const tokens = subject.split(".");
    if (tokens[tokens.length - 3] === "groups") return this.applyGroupEvent(data);
    if (tokens[tokens.length - 3] !== "workspaces") return;
    const action = tokens[tokens.length - 1];
    if (action === "deleted") {
      for (const conn of [...this.connections]) endConnection(conn, CloseCode.workspaceDeleted, "workspace deleted");
    } else if (action === "member_removed") {
      const removed = decodeEvent(data)?.aggregate_id;
      for (const conn of [...this.connections]) {
        if (conn.userId === removed) endConnection(conn, CloseCode.removedFromWorkspace, "removed from workspace");
      }
    }
  }

  private applyGroupEvent(data: Uint8Array): void {
    const event = decodeEvent(data);
    if (!event) return;
    if (event.type === "group.deleted") this.groups.delete(event.aggregate_id);
    else if (Array.isArray(event.data?.["member_ids"])) this.groups.set(event.aggregate_id, new Set(event.data["member_ids"] as string[]));
  }

  /** Brings a client from its position to the room's head, then live. */
  private async catchUp(conn: Connection): Promise<void> {
    try {
      while (conn.phase === "catching-up" && conn.socket) {
        if (conn.position >= this.history.head) return this.settle(conn);
        const batch = this.history.after(conn.position, CATCH_UP_BATCH);
        if (batch.length > 0) {
          if (!(await this.send(conn, batch, "memory"))) return;
        } else {
          await this.catchUpFromStream(conn);
        }
      }
    } catch (error) {
      if (conn.phase === "closed") return;
      if (error instanceof HistoryReset) {
        endConnection(conn, CloseCode.restarting, "event history reset; reconnect");
      } else {
        this.deps.log.warn({ err: error, workspace_id: this.workspaceId }, "catch-up failed");
        endConnection(conn, 1011, "catch-up failed; reconnect");
      }
    }
  }

  /** The events below the history's floor, from a read shared with other clients. */
  private async catchUpFromStream(conn: Connection): Promise<void> {
    const segment = this.segmentFor(conn.position);
    segment.readers++;
    try {
      let next = segment.indexAfter(conn.position);
      for (;;) {
        while (next < segment.events.length) {
          const batch = segment.events.slice(next, next + CATCH_UP_BATCH);
          next += batch.length;
          if (!(await this.send(conn, batch, "jetstream"))) return;
        }
        if (segment.done) break;
        await segment.changed();
        if (conn.phase !== "catching-up") return;
      }
      if (segment.error) throw segment.error;
      // The segment read every event of the room up to its end: the client has them all.
      conn.position = Math.max(conn.position, segment.end);
    } finally {
      segment.readers--;
      this.release(segment);
    }
  }

  /**
   * A read nobody reads any more is dropped, a few seconds later: clients of a
   * storm catch up at different speeds, and a straggler reuses it instead of
   * reading the same events again.
   */
  private release(segment: HistorySegment): void {
    if (segment.readers > 0 || !segment.done) return;
    setTimeout(() => {
      const at = this.segments.indexOf(segment);
      if (segment.readers === 0 && at >= 0) this.segments.splice(at, 1);
    }, SEGMENT_GRACE_MS).unref();
  }

  private segmentFor(position: number): HistorySegment {
    const shared = this.segments.find((s) => s.covers(position));
    if (shared) return shared;
    const segment = new HistorySegment(position, this.history.floor);
    this.segments.push(segment);
    this.deps.metrics.historyReads.inc();
    void this.read(segment);
    return segment;
  }

  /** Reads the room's events in (from, end] into a segment, at most a history's worth. */
  private async read(segment: HistorySegment): Promise<void> {
    try {
      const state = await this.deps.reader.state();
      if (state.epoch !== this.epoch) throw new HistoryReset("the stream was recreated");
      if (state.firstSeq > segment.from + 1) throw new HistoryReset("events after the position expired");
      for await (const message of this.deps.reader.read(this.filter, { afterSeq: segment.from }, { until: segment.end })) {
        if (message.seq > segment.end) break;
        const frame = eventFrame(message.data, message.seq);
        if (frame) segment.add({ seq: message.seq, frame, audience: this.audienceOf(message.subject) });
        if (segment.events.length >= this.deps.history.maxEvents && message.seq < segment.end) {
          segment.finish(message.seq);
          return;
        }
      }
      segment.finish(segment.end);
    } catch (error) {
      segment.finish(segment.end, error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Sends catch-up frames in one corked write, moving the client past each
   * (those it has already are skipped), until its buffer passes the high
   * water mark; then waits for it to drain, or lets other clients have a turn.
   * False when the client is gone or was closed as slow.
   */
  private async send(conn: Connection, entries: HistoryEntry[], source: "memory" | "jetstream"): Promise<boolean> {
    const socket = conn.socket;
    if (!socket || conn.phase !== "catching-up") return false;
    const { catchUpHighWater } = this.deps;
    let sent = 0;
    let dropped = false;
    socket.cork(() => {
      for (const entry of entries) {
        // A client that joined a shared read before it reached its position skips what it has.
        if (entry.seq <= conn.position) continue;
        // A group message outside the client's groups: passed over, never sent.
        if (entry.audience && !entry.audience.has(conn.userId)) {
          conn.position = entry.seq;
          continue;
        }
        if (socket.send(conn.transport === "sse" ? sseEvent(entry) : entry.frame) === 2) {
          dropped = true;
          return;
        }
        conn.position = entry.seq;
        sent++;
        if (socket.getBufferedAmount() > catchUpHighWater) return;
      }
    });
    this.deps.metrics.caughtUp.inc({ source }, sent);
    if (dropped || (socket.getBufferedAmount() > catchUpHighWater && !(await this.drained(conn)))) {
      endSlowConnection(conn, false);
      return false;
    }
    // The rest of the room's clients get their turn before this one's next batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return conn.phase === "catching-up";
  }

  /** The client has every event up to the head (or more): live now, or once the room passes it. */
  private settle(conn: Connection): void {
    if (conn.phase === "closed") return;
    if (conn.position <= this.history.head) this.goLive(conn);
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
    conn.socket.subscribe(userTopic(this.workspaceId, conn.userId));
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
