import type { NatsConnection, Subscription } from "nats";
import { decodeEvent, type Subjects } from "../../platform/events.js";
import type { Logger } from "../../platform/logger.js";
import { endConnection, endSlowConnection, type Connection } from "./connection.js";
import { CloseCode } from "./frames.js";
import { Room, type RoomDeps } from "./rooms.js";

/**
 * The rooms this replica hosts: a room exists while it has local clients. It
 * also restarts every room's feed after a NATS reconnect, closes sockets whose
 * token expired, and closes the sockets of deleted accounts.
 */
export class RoomHub {
  private readonly rooms = new Map<string, Room>();
  private readonly expirySweep: NodeJS.Timeout;
  private readonly backpressureSweep: NodeJS.Timeout;
  private readonly accountDeletions: Subscription;
  private closed = false;

  constructor(
    private readonly deps: RoomDeps,
    private readonly nc: NatsConnection,
    subjects: Subjects,
    private readonly log: Logger,
    private readonly maxBufferedBytes: number,
  ) {
    this.expirySweep = setInterval(() => this.sweep(this.rooms.values(), true), 1_000);
    this.expirySweep.unref();
    // Often, but only over rooms that published since: a slow client is closed while its
    // buffer is still far under uWS's hard cap, so it gets its 1013 and no gap.
    this.backpressureSweep = setInterval(() => this.sweep(this.activeRooms(), false), 100);
    this.backpressureSweep.unref();
    this.accountDeletions = nc.subscribe(subjects.liveAll("user.deleted"), {
      callback: (error, message) => {
        if (error) return;
        const userId = decodeEvent(message.data)?.aggregate_id;
        if (userId) this.closeUser(userId, CloseCode.tokenExpired, "account deleted");
      },
    });
    void this.restartFeedsOnReconnect();
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  get connectionCount(): number {
    let count = 0;
    for (const room of this.rooms.values()) count += room.connections.size;
    return count;
  }

  /** Whether a user belongs to a group, as the workspace's room here knows it (false without a room). */
  inGroup(workspaceId: string, groupId: string, userId: string): boolean {
    return this.rooms.get(workspaceId)?.inGroup(groupId, userId) ?? false;
  }

  /** Admits a newly opened socket to its workspace's room. */
  async join(conn: Connection): Promise<void> {
    let room = this.rooms.get(conn.workspaceId);
    if (room?.failed) {
      // Its feed could not start or ended (the stream was deleted or recreated): start a new room.
      room.dispose();
      room = undefined;
    }
    if (!room) {
      room = new Room(conn.workspaceId, this.deps);
      this.rooms.set(conn.workspaceId, room);
      this.deps.metrics.rooms.set(this.rooms.size);
    }
    try {
      await room.admit(conn);
    } catch (error) {
      this.log.error({ err: error, workspace_id: conn.workspaceId }, "cannot open room");
      endConnection(conn, 1011, "room unavailable; reconnect");
    }
  }

  /** A socket closed: the room goes (and its NATS subscription) with its last local client. */
  leave(conn: Connection): void {
    const room = this.rooms.get(conn.workspaceId);
    if (!room) return;
    room.remove(conn);
    if (room.connections.size === 0 && this.rooms.get(conn.workspaceId) === room) {
      room.dispose();
      this.rooms.delete(conn.workspaceId);
      this.deps.metrics.rooms.set(this.rooms.size);
    }
  }

  /** Closes every socket (shutdown: 1012, clients reconnect elsewhere with `since`). */
  closeAll(code: number, reason: string): void {
    this.closed = true;
    clearInterval(this.expirySweep);
    clearInterval(this.backpressureSweep);
    this.accountDeletions.unsubscribe();
    for (const room of [...this.rooms.values()]) for (const conn of [...room.connections]) endConnection(conn, code, reason);
  }

  private closeUser(userId: string, code: number, reason: string): void {
    for (const room of this.rooms.values()) {
      for (const conn of [...room.connections]) if (conn.userId === userId) endConnection(conn, code, reason);
    }
  }

  private *activeRooms(): Iterable<Room> {
    for (const room of this.rooms.values()) {
      if (!room.active) continue;
      room.active = false;
      yield room;
    }
  }

  /** Closes sockets over the backpressure limit (1013) and, with `expiry`, those whose token expired (4001). */
  private sweep(rooms: Iterable<Room>, expiry: boolean): void {
    const now = Date.now();
    // Collected first: ending a socket removes it from the set being walked.
    const slow: Connection[] = [];
    const expired: Connection[] = [];
    for (const room of rooms) {
      for (const conn of room.connections) {
        if (!conn.socket || conn.phase === "closed") continue;
        if (conn.socket.getBufferedAmount() > this.maxBufferedBytes) slow.push(conn);
        else if (expiry && conn.expiresAt <= now) expired.push(conn);
      }
    }
    for (const conn of slow) if (endSlowConnection(conn, false)) this.deps.metrics.droppedSlowClients.inc();
    for (const conn of expired) endConnection(conn, CloseCode.tokenExpired, "token expired");
  }

  /** The server may have lost the rooms' consumers with the connection: each feed starts over after its last event. */
  private async restartFeedsOnReconnect(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (this.closed) return;
      if (status.type !== "reconnect") continue;
      this.log.info({ rooms: this.rooms.size }, "nats reconnected: restarting room feeds");
      for (const room of this.rooms.values()) room.restartFeed("nats reconnected");
    }
  }
}
