import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { TemplatedApp } from "uWebSockets.js";
import type { Platform } from "../../platform/bootstrap.js";
import { cachedFor } from "../../platform/cached.js";
import { checkRole } from "../../platform/tenancy.js";
import type { Memberships } from "../../platform/memberships.js";
import type { AccessTokenVerifier } from "../../platform/access-tokens.js";
import type { GatewayConfig } from "../config.js";
import { RoomHub } from "./hub.js";
import { openRoomFeed } from "./rooms.js";
import { RealtimeMetrics } from "./metrics.js";
import { Presence } from "./presence.js";
import { EventPublisher } from "./publisher.js";
import { SocketEndpoint } from "./sockets.js";
import { ReplicaStatsReporter } from "./stats.js";
import { StreamReader } from "./stream-reader.js";

/**
 * The gateway's real-time side on `app`: rooms fed from the stream, the
 * WebSocket endpoint, presence and replica statistics, each with its shutdown
 * step (sockets close before the connections they need).
 */
export async function setUpRealtime(platform: Platform, config: GatewayConfig, app: TemplatedApp, memberships: Memberships, verifier: AccessTokenVerifier) {
  const { nc, js, jsm, subjects } = await platform.nats();
  const { log } = platform;
  const redis = await platform.redis();
  const replicaId = `${hostname()}-${randomBytes(3).toString("hex")}`;
  const metrics = new RealtimeMetrics(platform.registry);
  const reader = new StreamReader(js, jsm, config.NATS_STREAM);
  const publisher = new EventPublisher(js, subjects);
  const presence = new Presence(
    redis,
    { replicaId, ttlMs: config.PRESENCE_TTL_SECONDS * 1000, debounceMs: config.PRESENCE_DEBOUNCE_MS },
    async (type, workspaceId, user) => {
      await publisher.publish({ type, workspace_id: workspaceId, user_id: user.id, aggregate_id: user.id, data: { user_id: user.id, name: user.name } });
    },
    log,
  );
  const hub = new RoomHub(
    {
      app,
      feed: openRoomFeed({ nc, jsm, stream: config.NATS_STREAM, log, heartbeatMs: config.WS_FEED_HEARTBEAT_MS }),
      reader,
      subjects,
      metrics,
      log,
      streamState: cachedFor(1_000, () => reader.state()),
      history: { maxEvents: config.WS_ROOM_HISTORY_EVENTS, maxBytes: config.WS_ROOM_HISTORY_BYTES },
      catchUpHighWater: Math.floor(config.WS_MAX_BACKPRESSURE_BYTES / 4),
      drainTimeoutMs: 10_000,
    },
    nc,
    subjects,
    log,
    config.WS_MAX_BACKPRESSURE_BYTES,
  );
  const sockets = new SocketEndpoint({
    hub,
    presence,
    publisher,
    metrics,
    log,
    verify: (token) => verifier.verify(token),
    requireMember: async (workspaceId, userId, token) => {
      checkRole(await memberships.roleOf(workspaceId, userId, { token }), "workspace");
    },
    limits: {
      maxFrameBytes: config.WS_MAX_FRAME_BYTES,
      maxBackpressureBytes: config.WS_MAX_BACKPRESSURE_BYTES,
      idleTimeoutSeconds: config.WS_IDLE_TIMEOUT_SECONDS,
      clientRate: config.WS_CLIENT_RATE,
      clientBurst: config.WS_CLIENT_BURST,
    },
  });
  const stats = new ReplicaStatsReporter(nc, subjects, replicaId, hub, metrics);
  platform.onStop("listeners", "websockets", () => sockets.closeAll());
  platform.onStop("listeners", "presence", () => presence.close());
  platform.onStop("listeners", "stats", () => stats.close());
  return { sockets, reader, publisher, presence, stats, replicaId, subjects, jsm };
}
