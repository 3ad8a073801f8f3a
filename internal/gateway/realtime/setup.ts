import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { TemplatedApp } from "uWebSockets.js";
import type { Platform } from "../../platform/bootstrap.js";
import { cachedFor } from "../../platform/cached.js";
import { checkRole } from "../../platform/tenancy.js";
import type { Memberships } from "../../platform/memberships.js";
import type { ServiceClient } from "../../platform/grpc-client.js";
import type { WorkspaceServiceClient } from "../../../api/gen/taskboard/workspace/v1/workspace.js";
import type { AccessTokenVerifier } from "../../platform/access-tokens.js";
import type { GatewayConfig } from "../config.js";
import { RoomHub } from "./hub.js";
import { openRoomFeed } from "./rooms.js";
import { RealtimeMetrics } from "./metrics.js";
import { Presence } from "./presence.js";
import { EventPublisher } from "./publisher.js";
import { RealtimeClients } from "./clients.js";
import { ConnectionLimit } from "./connection-limit.js";
import { SocketEndpoint } from "./sockets.js";
import { SseEndpoint, SseTopics } from "./sse.js";
import { Tickets } from "./tickets.js";
import { RateLimiter } from "../../platform/rate-limit.js";
import { ReplicaStatsReporter } from "./stats.js";
import { StreamReader } from "./stream-reader.js";

/**
 * The gateway's real-time side on `app`: rooms fed from the stream, the
 * WebSocket and SSE endpoints behind one admission (tickets, tokens, the
 * per-user connection limit), presence and replica statistics, each with its
 * shutdown step (sockets close before the connections they need).
 */
export async function setUpRealtime(
  platform: Platform,
  config: GatewayConfig,
  app: TemplatedApp,
  memberships: Memberships,
  workspace: ServiceClient<WorkspaceServiceClient>,
  verifier: AccessTokenVerifier,
) {
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
  const sseTopics = new SseTopics();
  const hub = new RoomHub(
    {
      app,
      sse: sseTopics,
      feed: openRoomFeed({ nc, jsm, stream: config.NATS_STREAM, log, heartbeatMs: config.WS_FEED_HEARTBEAT_MS }),
      reader,
      subjects,
      metrics,
      log,
      streamState: cachedFor(1_000, () => reader.state()),
      history: { maxEvents: config.WS_ROOM_HISTORY_EVENTS, maxBytes: config.WS_ROOM_HISTORY_BYTES },
      catchUpHighWater: Math.floor(config.WS_MAX_BACKPRESSURE_BYTES / 4),
      drainTimeoutMs: 10_000,
      // Every group of the workspace with its members, asked as the gateway.
      groups: async (workspaceId) => {
        const { items } = await workspace.call("listGroups", { workspace_id: workspaceId }, { internal: true });
        return new Map(items.map((group) => [group.id, new Set(group.member_ids)]));
      },
    },
    nc,
    subjects,
    log,
    config.WS_MAX_BACKPRESSURE_BYTES,
  );
  const tickets = new Tickets(redis, config.REALTIME_TICKET_SECONDS);
  const limit = new ConnectionLimit(redis, { replicaId, maxPerUser: config.WS_MAX_CONNECTIONS_PER_USER, ttlMs: config.PRESENCE_TTL_SECONDS * 1000 }, log);
  const verify = (token: string) => verifier.verify(token);
  const clients = new RealtimeClients({
    hub,
    presence,
    metrics,
    log,
    tickets,
    limit,
    maxPerUser: config.WS_MAX_CONNECTIONS_PER_USER,
    verify,
    requireMember: async (workspaceId, userId, call) => {
      checkRole(await memberships.roleOf(workspaceId, userId, call), "workspace");
    },
    burst: config.WS_CLIENT_BURST,
  });
  const limiter = new RateLimiter(redis);
  const sockets = new SocketEndpoint({
    clients,
    limitMessages: (userId) => limiter.hit([{ key: `ws-messages:user:${userId}`, max: config.RATE_LIMIT_WS_MESSAGES_PER_USER, windowMs: 60_000 }]),
    hub,
    publisher,
    metrics,
    log,
    verify,
    limits: {
      maxFrameBytes: config.WS_MAX_FRAME_BYTES,
      maxBackpressureBytes: config.WS_MAX_BACKPRESSURE_BYTES,
      idleTimeoutSeconds: config.WS_IDLE_TIMEOUT_SECONDS,
      clientRate: config.WS_CLIENT_RATE,
      clientBurst: config.WS_CLIENT_BURST,
    },
  });
  const streams = new SseEndpoint(clients, sseTopics, config.SSE_HEARTBEAT_SECONDS * 1000);
  const stats = new ReplicaStatsReporter(nc, subjects, replicaId, hub, metrics);
  platform.onStop("listeners", "websockets", () => sockets.closeAll());
  platform.onStop("listeners", "sse heartbeat", () => streams.close());
  platform.onStop("listeners", "presence", () => presence.close());
  platform.onStop("listeners", "connection slots", () => limit.close());
  platform.onStop("listeners", "stats", () => stats.close());
  return { limiter, sockets, streams, tickets, reader, publisher, presence, stats, replicaId, subjects, jsm };
}
