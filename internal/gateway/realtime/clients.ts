import { randomUUID } from "node:crypto";
import type { AccessClaims } from "../../platform/access-tokens.js";
import { AppError, unauthorized } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { OutgoingCall } from "../../platform/grpc-client.js";
import { parseInput } from "../../platform/validate.js";
import { resumePosition } from "../../../api/contracts/realtime.js";
import { newConnection, type Connection, type Transport } from "./connection.js";
import type { ConnectionLimit } from "./connection-limit.js";
import type { RoomHub } from "./hub.js";
import type { RealtimeMetrics } from "./metrics.js";
import type { Presence } from "./presence.js";
import type { Tickets } from "./tickets.js";

/** What a client presents to open a real-time connection (WebSocket upgrade or SSE request). */
export interface ClientRequest {
  transport: Transport;
  workspaceId: string;
  ticket: string | undefined;
  /** An access token (`?token=` on the WebSocket, or `Authorization: Bearer`). */
  token: string | undefined;
  since: string | undefined;
  epoch: string | undefined;
}

export interface RealtimeClientsDeps {
  hub: RoomHub;
  presence: Presence;
  metrics: RealtimeMetrics;
  log: Logger;
  tickets: Tickets;
  limit: ConnectionLimit;
  maxPerUser: number;
  verify: (token: string) => Promise<AccessClaims>;
  /** Resolves when the user is a member of the workspace; rejects with not_found otherwise. */
  requireMember: (workspaceId: string, userId: string, call: OutgoingCall) => Promise<void>;
  /** Frames a fresh connection may send at once (its flood-control bucket). */
  burst: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The one way into real time, whatever the transport: checks where the client
 * resumes from, its ticket or token and its membership, and takes one of the
 * user's connection slots (429 beyond the limit, across replicas); then, once
 * the transport is open, brings the connection into its room and presence,
 * and takes it out again when it closes.
 */
export class RealtimeClients {
  constructor(private readonly deps: RealtimeClientsDeps) {}

  /** A connection for the request, with its slot taken; refused with the API's error otherwise. */
  async admit(request: ClientRequest): Promise<Connection> {
    const { workspaceId } = request;
    if (!UUID.test(workspaceId)) throw new AppError("not_found", "workspace not found");
    const since = request.since === undefined || request.since === "" ? undefined : parseInput(resumePosition, request.since);
    if (request.epoch !== undefined && request.epoch.length > 64) throw new AppError("validation_failed", "epoch is at most 64 characters");
    let user: { userId: string; name: string; expiresAt: number };
    if (request.ticket) {
      user = await this.deps.tickets.redeem(request.ticket, workspaceId);
      // Still a member: the ticket may be up to its lifetime old.
      await this.deps.requireMember(workspaceId, user.userId, { internal: true });
    } else if (request.token) {
      user = await this.deps.verify(request.token);
      await this.deps.requireMember(workspaceId, user.userId, { token: request.token });
    } else {
      throw unauthorized("missing ticket or token");
    }
    const id = randomUUID();
    if (!(await this.deps.limit.acquire(user.userId, id))) {
      throw new AppError("rate_limited", `at most ${this.deps.maxPerUser} real-time connections per user; close one first`, {
        retry_after_seconds: this.deps.limit.retryAfterSeconds,
      });
    }
    return newConnection({
      id,
      transport: request.transport,
      workspaceId,
      userId: user.userId,
      name: user.name,
      since,
      epoch: request.epoch === "" ? undefined : request.epoch,
      expiresAt: user.expiresAt,
      burst: this.deps.burst,
    });
  }

  /** The transport is open: the client joins its room and shows as present. */
  opened(conn: Connection): void {
    this.deps.metrics.connections.inc();
    // From a later tick: frames sent inside uWS's upgrade callback can be lost (sockets.ts, upgradeSafely).
    setImmediate(() => {
      if (conn.phase !== "closed") void this.deps.hub.join(conn);
    });
    this.deps.presence
      .connected(conn.workspaceId, { id: conn.userId, name: conn.name })
      .catch((error: unknown) => this.deps.log.warn({ err: error }, "presence join failed"));
  }

  /** The transport closed (call once, for an opened connection). */
  closed(conn: Connection): void {
    conn.phase = "closed";
    conn.socket = undefined;
    conn.onDrain?.();
    this.deps.metrics.connections.dec();
    this.deps.hub.leave(conn);
    this.deps.presence.disconnected(conn.workspaceId, conn.userId);
    this.deps.limit.release(conn.userId, conn.id);
  }

  /** An admitted connection whose transport never opened (the client went away first). */
  abandoned(conn: Connection): void {
    this.deps.limit.release(conn.userId, conn.id);
  }
}
