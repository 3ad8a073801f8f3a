import { STATUS_CODES } from "node:http";
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, WebSocket } from "uWebSockets.js";
import { bearerToken, type AccessClaims } from "../../platform/access-tokens.js";
import { errorBody, retryAfterOf } from "../../platform/errors.js";
import { classifyError } from "../../platform/failures.js";
import type { Logger } from "../../platform/logger.js";
import type { RealtimeClients } from "./clients.js";
import { endConnection, endSlowConnection, type Connection } from "./connection.js";
import { CloseCode, errorFrame, pongFrame } from "./frames.js";
import type { RoomHub } from "./hub.js";
import type { RealtimeMetrics } from "./metrics.js";
import type { EventPublisher } from "./publisher.js";

export interface SocketLimits {
  /** Client frames larger than this get an error frame. */
  maxFrameBytes: number;
  /** Buffered bytes beyond which a client is too slow and is closed with 1013. */
  maxBackpressureBytes: number;
  idleTimeoutSeconds: number;
  /** Sustained client frames per second, and the burst allowed above it. */
  clientRate: number;
  clientBurst: number;
}

export interface SocketDeps {
  clients: RealtimeClients;
  hub: RoomHub;
  publisher: EventPublisher;
  metrics: RealtimeMetrics;
  log: Logger;
  verify: (token: string) => Promise<AccessClaims>;
  /** Counts a custom message of the user (over all their sockets); throws rate_limited beyond their limit. */
  limitMessages: (userId: string) => Promise<void>;
  limits: SocketLimits;
}

const decoder = new TextDecoder();

/**
 * `GET /ws/:workspace_id?ticket=…|token=…&since=…&epoch=…`: the client is
 * admitted during the upgrade (RealtimeClients: 401/404/429 before the socket
 * opens); then the socket joins its room. Client frames: ping, custom.message,
 * auth.
 */
export class SocketEndpoint {
  private readonly connections = new Set<Connection>();

  constructor(private readonly deps: SocketDeps) {}

  mount(app: TemplatedApp): void {
    const { limits } = this.deps;
    app.ws<Connection>("/ws/:workspace_id", {
      // Larger frames than this are cut off by uWS itself; up to it we answer with an error frame.
      maxPayloadLength: limits.maxFrameBytes * 4,
      // The hard cap: messages beyond it are dropped. The hub's sweep (every 100 ms) closes
      // clients over maxBackpressureBytes well before, while a close frame still fits (1013, no gap).
      maxBackpressure: Math.max(limits.maxBackpressureBytes * 16, 8 * 1024 * 1024),
      closeOnBackpressureLimit: false,
      idleTimeout: limits.idleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, message, isBinary) => this.message(ws, message, isBinary),
      drain: (ws) => ws.getUserData().onDrain?.(),
      dropped: (ws) => this.slow(ws.getUserData()),
      close: (ws) => this.close(ws.getUserData()),
    });
  }

  /** Closes every socket with 1012 so clients reconnect (elsewhere) with `since`. */
  closeAll(): void {
    this.deps.hub.closeAll(CloseCode.restarting, "server restarting");
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const workspaceId = req.getParameter(0) ?? "";
    const query = new URLSearchParams(req.getQuery() ?? "");
    const header = req.getHeader("authorization");
    const key = req.getHeader("sec-websocket-key");
    const protocol = req.getHeader("sec-websocket-protocol");
    const extensions = req.getHeader("sec-websocket-extensions");
    const request = {
      transport: "websocket" as const,
      workspaceId,
      ticket: query.get("ticket") ?? undefined,
      token: query.get("token") ?? bearerToken(header),
      since: query.get("since") ?? undefined,
      epoch: query.get("epoch") ?? undefined,
    };

    this.deps.clients.admit(request).then(
      (conn) => {
        if (aborted) return this.deps.clients.abandoned(conn);
        this.upgradeSafely(res, () => res.upgrade(conn, key, protocol, extensions, context));
      },
      (error: unknown) => {
        const appError = classifyError(error);
        this.deps.metrics.connectsRefused.inc({ status: String(appError.httpStatus) });
        if (appError.code === "internal") this.deps.log.error({ err: error }, "websocket upgrade failed");
        if (aborted) return;
        res.cork(() => {
          res.writeStatus(`${appError.httpStatus} ${STATUS_CODES[appError.httpStatus] ?? ""}`);
          res.writeHeader("content-type", "application/json; charset=utf-8");
          const retryAfter = retryAfterOf(appError);
          if (retryAfter) res.writeHeader("retry-after", retryAfter);
          res.end(JSON.stringify(errorBody(appError.code, appError.message)));
        });
      },
    );
  }

  /**
   * Upgrades after the async checks without uWS's bug in that case: a real
   * `res.cork(() => res.upgrade())` from outside a uWS callback can close the
   * fresh socket (uWS reads the new WebSocket's memory as HTTP state;
   * uNetworking/uWebSockets#1928, fixed upstream in #1929, after the v20 binaries
   * of uws-pack 20.0.8). While another socket is corked, `res.cork` runs its
   * callback without corking (so without that epilogue) yet still counts as
   * corked for uWS.js; any open socket of this replica serves. With none open,
   * the upgrade runs uncorked: correct, at the cost of one uWS warning line.
   */
  private upgradeSafely(res: HttpResponse, upgrade: () => void): void {
    for (const conn of this.connections) {
      if (conn.phase === "closed" || !conn.socket) continue;
      conn.socket.cork(() => res.cork(upgrade));
      return;
    }
    upgrade();
  }

  private open(ws: WebSocket<Connection>): void {
    const conn = ws.getUserData();
    conn.socket = ws;
    this.connections.add(conn);
    this.deps.clients.opened(conn);
  }

  private close(conn: Connection): void {
    if (this.connections.delete(conn)) this.deps.clients.closed(conn);
  }

  /** uWS could not buffer a message for this client: it has a gap now, so it must go. */
  private slow(conn: Connection): void {
    // Rare: the hub's sweep closes slow clients well before uWS's hard cap drops anything.
    if (endSlowConnection(conn, true)) this.deps.metrics.droppedSlowClients.inc();
  }

  private message(ws: WebSocket<Connection>, message: ArrayBuffer, isBinary: boolean): void {
    const conn = ws.getUserData();
    this.deps.metrics.messagesIn.inc();
    if (!this.admitFrame(conn)) return;
    const reply = (code: string, text: string) => ws.send(errorFrame(code, text));
    if (message.byteLength > this.deps.limits.maxFrameBytes) {
      return void reply("frame_too_large", `frames are limited to ${this.deps.limits.maxFrameBytes} bytes`);
    }
    if (isBinary) return void reply("unsupported_frame", "binary frames are not supported; send JSON text");
    let frame: unknown;
    try {
      frame = JSON.parse(decoder.decode(message));
    } catch {
      return void reply("invalid_json", "frame is not valid JSON");
    }
    const type = typeof frame === "object" && frame !== null && !Array.isArray(frame) ? (frame as { type?: unknown }).type : undefined;
    switch (type) {
      case "ping":
        ws.send(pongFrame);
        return;
      case "custom.message":
        return this.customMessage(conn, (frame as { data?: unknown }).data, (frame as { group_id?: unknown }).group_id);
      case "auth":
        return this.reauthenticate(conn, (frame as { token?: unknown }).token);
      default:
        reply("unknown_type", "type must be ping, custom.message or auth");
    }
  }

  /** Token bucket per socket: over the rate a frame is refused; a client that keeps flooding is closed. */
  private admitFrame(conn: Connection): boolean {
    const { clientRate, clientBurst } = this.deps.limits;
    const now = Date.now();
    conn.tokens = Math.min(clientBurst, conn.tokens + ((now - conn.refilledAt) / 1000) * clientRate);
    conn.refilledAt = now;
    if (conn.tokens >= 1) {
      conn.tokens -= 1;
      conn.refusals = 0;
      return true;
    }
    conn.refusals++;
    if (conn.refusals > clientBurst) {
      this.deps.metrics.closedFlooding.inc();
      endConnection(conn, CloseCode.flooding, "too many frames");
    } else if (conn.refusals === 1) {
      conn.socket?.send(errorFrame("rate_limited", `at most ${clientRate} frames per second; slow down or be disconnected`));
    }
    return false;
  }

  /** A message to the room, or with `group_id` to the members of one of its groups (the sender must be one). */
  private customMessage(conn: Connection, data: unknown, groupId: unknown): void {
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      conn.socket?.send(errorFrame("validation_failed", "custom.message needs a data object"));
      return;
    }
    if (groupId !== undefined && (typeof groupId !== "string" || !this.deps.hub.inGroup(conn.workspaceId, groupId, conn.userId))) {
      conn.socket?.send(errorFrame("forbidden", "group_id must name a group of this workspace you belong to"));
      return;
    }
    this.deps
      .limitMessages(conn.userId)
      .then(() =>
        this.deps.publisher.publish({
          type: "custom.message",
          workspace_id: conn.workspaceId,
          user_id: conn.userId,
          aggregate_id: conn.id,
          data: data as Record<string, unknown>,
          group_id: groupId as string | undefined,
        }),
      )
      .catch((error: unknown) => {
        if (conn.phase === "closed") return;
        const refused = classifyError(error);
        if (refused.code === "rate_limited") return void conn.socket?.send(errorFrame("rate_limited", refused.message));
        this.deps.log.warn({ err: error }, "custom message not published");
        conn.socket?.send(errorFrame("dependency_unavailable", "message not delivered; try again"));
      });
  }

  private reauthenticate(conn: Connection, token: unknown): void {
    if (typeof token !== "string" || token.length === 0) {
      conn.socket?.send(errorFrame("validation_failed", "auth needs a token"));
      return;
    }
    this.deps.verify(token).then(
      (claims) => {
        if (conn.phase === "closed") return;
        if (claims.userId !== conn.userId) {
          conn.socket?.send(errorFrame("forbidden", "the token belongs to another user"));
          return;
        }
        conn.expiresAt = claims.expiresAt;
      },
      () => {
        if (conn.phase !== "closed") conn.socket?.send(errorFrame("unauthorized", "invalid or expired token"));
      },
    );
  }
}
