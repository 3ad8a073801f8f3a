import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { ExportServiceClient } from "../../api/gen/taskboard/export/v1/export.js";
import { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AccessTokenVerifier } from "../../internal/platform/access-tokens.js";
import { AdminServer } from "../../internal/platform/admin-server.js";
import { AuthKeys } from "../../internal/platform/auth-keys.js";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { Subjects } from "../../internal/platform/events.js";
import { ensureStream } from "../../internal/platform/stream.js";
import { connectService } from "../../internal/platform/grpc-client.js";
import { connectNats, pingNats } from "../../internal/platform/nats.js";
import { connectRedis, pingRedis } from "../../internal/platform/redis.js";
import { announceReady, createRuntime, runMain } from "../../internal/platform/runtime.js";
import { loadGatewayConfig } from "../../internal/gateway/config.js";
import { RoomHub } from "../../internal/gateway/realtime/hub.js";
import { RealtimeMetrics } from "../../internal/gateway/realtime/metrics.js";
import { Presence } from "../../internal/gateway/realtime/presence.js";
import { EventPublisher } from "../../internal/gateway/realtime/publisher.js";
import { SocketEndpoint } from "../../internal/gateway/realtime/sockets.js";
import { ReplicaStatsReporter } from "../../internal/gateway/realtime/stats.js";
import { StreamReader } from "../../internal/gateway/realtime/stream-reader.js";
import { Router } from "../../internal/gateway/router.js";
import { gatewayRoutes } from "../../internal/gateway/routes/index.js";
import { GatewayServer } from "../../internal/gateway/server.js";
import type { Services } from "../../internal/gateway/services.js";
import { TaskBatches } from "../../internal/gateway/task-batches.js";
import { notFound } from "../../internal/platform/errors.js";
import { CachedMemberships } from "../../internal/platform/memberships.js";
import { StaticFiles } from "../../internal/gateway/static-files.js";
import { cachedFor } from "../../internal/platform/cached.js";

runMain("gateway", async () => {
  const config = loadGatewayConfig(process.env);
  const runtime = createRuntime("gateway", config);
  const { log, registry, health, shutdown } = runtime;

  const nc = await connectNats(config.NATS_URL, "gateway", log);
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
  await ensureStream(jsm, subjects, {
    name: config.NATS_STREAM,
    maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS,
    replicas: config.NATS_STREAM_REPLICAS,
  }, log);
  const redis = await connectRedis(config.REDIS_URL, config.REDIS_PREFIX, log);
  const clients = {
    auth: connectService(AuthServiceClient, config.AUTH_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS),
    workspace: connectService(WorkspaceServiceClient, config.WORKSPACE_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS),
    task: connectService(TaskServiceClient, config.TASK_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS),
    export: connectService(ExportServiceClient, config.EXPORT_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS),
  };
  const memberships = new CachedMemberships(clients.workspace, log, { registry });
  await memberships.followChanges(nc, subjects);
  const services: Services = { ...clients, taskBatches: new TaskBatches(clients.task), memberships };
  const keys = new AuthKeys(services.auth);
  const verifier = new AccessTokenVerifier(() => keys.jwks(true));
  const files = new StaticFiles();

  health.add("nats", () => pingNats(nc)).add("redis", () => pingRedis(redis));
  for (const [name, client] of Object.entries(clients)) health.add(name, () => client.ready(1_000));

  const server = new GatewayServer(log);
  const replicaId = `${hostname()}-${randomBytes(3).toString("hex")}`;
  const metrics = new RealtimeMetrics(registry);
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
      app: server.app,
      feed: { nc, jsm, stream: config.NATS_STREAM, log, heartbeatMs: config.WS_FEED_HEARTBEAT_MS },
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
      if (!(await memberships.roleOf(workspaceId, userId, { token }))) throw notFound("workspace");
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

  const router = new Router({
    log,
    registry,
    verify: (token) => verifier.verify(token),
    maxBodyBytes: config.MAX_BODY_BYTES,
    trustProxy: config.TRUST_PROXY,
    accessLog: config.ACCESS_LOG,
  }).add(...gatewayRoutes({ services, health, files, keys, subjects, streamName: config.NATS_STREAM, jsm, reader, publisher, presence, stats }));
  server.mount(router, files, sockets);
  const admin = new AdminServer(health, registry);
  const httpPort = await server.listen(config.GATEWAY_PORT);
  const adminPort = await admin.listen(config.ADMIN_PORT);

  shutdown
    .add("mark stopping", () => health.markStopping())
    .add("http listener", () => server.stopListening())
    .add("websockets", () => sockets.closeAll())
    .add("presence", () => presence.close())
    .add("stats", () => stats.close())
    .add("http", () => server.close())
    .add("memberships", () => memberships.close())
    .add("service clients", () => Object.values(clients).forEach((client) => client.close()))
    .add("nats", () => nc.drain())
    .add("redis", () => redis.quit())
    .add("admin", () => admin.close());
  announceReady(log, { http_port: httpPort, admin_port: adminPort, replica_id: replicaId });
  return runtime;
});
