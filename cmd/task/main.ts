import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { TaskServiceService } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AccessTokenVerifier } from "../../internal/platform/access-tokens.js";
import { AdminServer } from "../../internal/platform/admin-server.js";
import { AuthKeys } from "../../internal/platform/auth-keys.js";
import { DurableConsumer } from "../../internal/platform/durable-consumer.js";
import { Subjects } from "../../internal/platform/events.js";
import { connectService } from "../../internal/platform/grpc-client.js";
import { GrpcServer } from "../../internal/platform/grpc-server.js";
import { connectNats, pingNats } from "../../internal/platform/nats.js";
import { Outbox } from "../../internal/platform/outbox.js";
import { createPostgres, pingPostgres } from "../../internal/platform/postgres.js";
import { announceReady, createRuntime, runMain } from "../../internal/platform/runtime.js";
import { ensureStream } from "../../internal/platform/stream.js";
import { migrateService } from "../../internal/schemas.js";
import { loadTaskConfig } from "../../internal/task/config.js";
import { CachedMemberships } from "../../internal/platform/memberships.js";
import { taskHandlers } from "../../internal/task/server.js";
import { TaskService } from "../../internal/task/service.js";
import { TaskStore } from "../../internal/task/store.js";

runMain("task", async () => {
  const config = loadTaskConfig(process.env);
  const runtime = createRuntime("task", config);
  const { log, registry, health, shutdown } = runtime;

  const sql = createPostgres(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, applicationName: "task", log });
  await pingPostgres(sql);
  await migrateService(sql, "task", log);
  const nc = await connectNats(config.NATS_URL, "task", log);
  const jsm = await nc.jetstreamManager();
  const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
  await ensureStream(jsm, subjects, {
    name: config.NATS_STREAM,
    maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS,
    replicas: config.NATS_STREAM_REPLICAS,
  }, log);

  const auth = connectService(AuthServiceClient, config.AUTH_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const workspace = connectService(WorkspaceServiceClient, config.WORKSPACE_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const memberships = new CachedMemberships(workspace, log, { registry });
  await memberships.followChanges(nc, subjects);
  const outbox = new Outbox(sql, nc, nc.jetstream(), subjects, { schema: "task", databaseUrl: config.DATABASE_URL }, log, registry);
  const service = new TaskService(new TaskStore(sql), outbox, memberships);
  outbox.start();
  const workspaceDeletions = new DurableConsumer(
    nc.jetstream(),
    jsm,
    { stream: config.NATS_STREAM, durable: "task-workspace-deletions", filterSubject: subjects.allOf("workspace.deleted"), startAt: "all" },
    async (event) => {
      const purged = await service.purgeWorkspace(event.workspace_id ?? event.aggregate_id);
      log.info({ workspace_id: event.workspace_id, ...purged }, "deleted workspace purged");
    },
    log,
  );
  await workspaceDeletions.start();

  const keys = new AuthKeys(auth);
  const verifier = new AccessTokenVerifier(() => keys.jwks(true));
  const grpcServer = new GrpcServer({
    log,
    registry,
    internalToken: config.INTERNAL_TOKEN,
    verifyAccessToken: (token) => verifier.verify(token),
  }).add(TaskServiceService, taskHandlers(service, (token) => verifier.verify(token)));

  health.add("postgres", () => pingPostgres(sql)).add("nats", () => pingNats(nc));
  const admin = new AdminServer(health, registry);
  const grpcPort = await grpcServer.listen(config.GRPC_PORT);
  const adminPort = await admin.listen(config.ADMIN_PORT);

  shutdown
    .add("mark stopping", () => health.markStopping())
    .add("grpc", () => grpcServer.close(config.SHUTDOWN_TIMEOUT_MS / 2))
    .add("consumers", () => workspaceDeletions.close())
    .add("outbox", () => outbox.close())
    .add("memberships", () => memberships.close())
    .add("service clients", () => [auth, workspace].forEach((client) => client.close()))
    .add("nats", () => nc.drain())
    .add("postgres", () => sql.end({ timeout: 2 }))
    .add("admin", () => admin.close());
  announceReady(log, { grpc_port: grpcPort, admin_port: adminPort });
  return runtime;
});
