import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setDefaultHighWaterMark } from "node:stream";
import { credentials } from "@grpc/grpc-js";
import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { ExportServiceService } from "../../api/gen/taskboard/export/v1/export.js";
import { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { ExpiredExportsCleanup } from "../../internal/export/cleanup.js";
import { loadExportConfig } from "../../internal/export/config.js";
import { ExportMetrics } from "../../internal/export/metrics.js";
import { exportQueue } from "../../internal/export/queue.js";
import { ExportRunner } from "../../internal/export/runner.js";
import { exportHandlers } from "../../internal/export/server.js";
import { ExportService } from "../../internal/export/service.js";
import { ExportStore } from "../../internal/export/store.js";
import { AccessTokenVerifier } from "../../internal/platform/access-tokens.js";
import { AdminServer } from "../../internal/platform/admin-server.js";
import { AuthKeys } from "../../internal/platform/auth-keys.js";
import { DurableConsumer } from "../../internal/platform/durable-consumer.js";
import { Subjects } from "../../internal/platform/events.js";
import { channelOptions, connectService, ServiceClient } from "../../internal/platform/grpc-client.js";
import { GrpcServer } from "../../internal/platform/grpc-server.js";
import { connectNats, pingNats } from "../../internal/platform/nats.js";
import { Outbox } from "../../internal/platform/outbox.js";
import { createPostgres, pingPostgres } from "../../internal/platform/postgres.js";
import { announceReady, createRuntime, runMain } from "../../internal/platform/runtime.js";
import { ensureStream } from "../../internal/platform/stream.js";
import { migrateService } from "../../internal/schemas.js";
import { CachedMemberships } from "../../internal/platform/memberships.js";

runMain("export", async () => {
  // grpc-js reads 16 messages ahead on a stream (an object-mode highWaterMark it has no option
  // for); decoded rows queued that long outlive V8's young generation and pile up until a full
  // GC. Two keep the row stream busy: the same rows/s, a much lower peak RSS (bench:export).
  setDefaultHighWaterMark(true, 2);
  const config = loadExportConfig(process.env);
  const runtime = createRuntime("export", config);
  const { log, registry, health, shutdown } = runtime;

  // Nagle off: file chunks are written with COPY (see ExportStore.writeChunk).
  const sql = createPostgres(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, applicationName: "export", log, noDelay: true });
  await pingPostgres(sql);
  await migrateService(sql, "export", log);
  const nc = await connectNats(config.NATS_URL, "export", log);
  const jsm = await nc.jetstreamManager();
  const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
  await ensureStream(jsm, subjects, {
    name: config.NATS_STREAM,
    maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS,
    replicas: config.NATS_STREAM_REPLICAS,
  }, log);

  const auth = connectService(AuthServiceClient, config.AUTH_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const workspace = connectService(WorkspaceServiceClient, config.WORKSPACE_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  // A larger HTTP/2 window for the row streams (1 MiB, not 64 KiB in flight): about 10 % more rows/s.
  const tasks = new ServiceClient(
    new TaskServiceClient(config.TASK_ADDR, credentials.createInsecure(), { ...channelOptions, "grpc-node.flow_control_window": 1024 * 1024 }),
    config.INTERNAL_TOKEN,
    config.GRPC_TIMEOUT_MS,
  );
  const memberships = new CachedMemberships(workspace, log, { registry });
  await memberships.followChanges(nc, subjects);
  const store = new ExportStore(sql);
  const outbox = new Outbox(sql, nc, nc.jetstream(), subjects, { schema: "export", databaseUrl: config.DATABASE_URL }, log, registry);
  const service = new ExportService(store, outbox, memberships, { retentionHours: config.EXPORT_RETENTION_HOURS });
  outbox.start();

  const workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const runner = new ExportRunner(store, outbox, tasks, new ExportMetrics(registry), log, {
    workerId,
    staleAfterMs: config.EXPORT_ACK_WAIT_MS,
    heartbeatMs: Math.floor(config.EXPORT_ACK_WAIT_MS / 3),
    maxAttempts: config.EXPORT_MAX_ATTEMPTS,
    chunkBytes: config.EXPORT_CHUNK_BYTES,
    jobTimeoutMs: config.EXPORT_JOB_TIMEOUT_MS,
  });
  const queue = exportQueue(
    nc.jetstream(),
    jsm,
    {
      stream: config.NATS_STREAM,
      durable: "export-jobs",
      filterSubject: subjects.allOf("export.created"),
      ackWaitMs: config.EXPORT_ACK_WAIT_MS,
      concurrency: config.EXPORT_CONCURRENCY,
    },
    (ref, delivery, stopping) => runner.run(ref, delivery, stopping),
    log,
  );
  await queue.start();
  const workspaceDeletions = new DurableConsumer(
    nc.jetstream(),
    jsm,
    { stream: config.NATS_STREAM, durable: "export-workspace-deletions", filterSubject: subjects.allOf("workspace.deleted"), startAt: "all" },
    async (event) => {
      const deleted = await service.purgeWorkspace(event.workspace_id ?? event.aggregate_id);
      log.info({ workspace_id: event.workspace_id, jobs: deleted }, "deleted workspace's exports purged");
    },
    log,
  );
  await workspaceDeletions.start();
  const cleanup = new ExpiredExportsCleanup(store, config.EXPORT_CLEANUP_INTERVAL_MS, log);
  cleanup.start();

  const keys = new AuthKeys(auth);
  const verifier = new AccessTokenVerifier(() => keys.jwks(true));
  const grpcServer = new GrpcServer({
    log,
    registry,
    internalToken: config.INTERNAL_TOKEN,
    verifyAccessToken: (token) => verifier.verify(token),
  }).add(ExportServiceService, exportHandlers(service));

  health.add("postgres", () => pingPostgres(sql)).add("nats", () => pingNats(nc));
  const admin = new AdminServer(health, registry);
  const grpcPort = await grpcServer.listen(config.GRPC_PORT);
  const adminPort = await admin.listen(config.ADMIN_PORT);

  shutdown
    .add("mark stopping", () => health.markStopping())
    .add("grpc", () => grpcServer.close(config.SHUTDOWN_TIMEOUT_MS / 2))
    // Running jobs are handed back (pending) and their messages nak'ed, so another replica takes them at once.
    .add("export queue", () => queue.close())
    .add("consumers", () => workspaceDeletions.close())
    .add("cleanup", () => cleanup.close())
    .add("outbox", () => outbox.close())
    .add("memberships", () => memberships.close())
    .add("service clients", () => [auth, workspace, tasks].forEach((client) => client.close()))
    .add("nats", () => nc.drain())
    .add("postgres", () => sql.end({ timeout: 2 }))
    .add("admin", () => admin.close());
  announceReady(log, { grpc_port: grpcPort, admin_port: adminPort, worker_id: workerId, pid: process.pid });
  return runtime;
});
