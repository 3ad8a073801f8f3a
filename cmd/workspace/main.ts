import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { WorkspaceServiceService } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AccessTokenVerifier } from "../../internal/platform/access-tokens.js";
import { AuthKeys } from "../../internal/platform/auth-keys.js";
import { AdminServer } from "../../internal/platform/admin-server.js";
import { DurableConsumer } from "../../internal/platform/durable-consumer.js";
import { Subjects } from "../../internal/platform/events.js";
import { connectService } from "../../internal/platform/grpc-client.js";
import { GrpcServer } from "../../internal/platform/grpc-server.js";
import { connectNats, pingNats } from "../../internal/platform/nats.js";
import { Outbox } from "../../internal/platform/outbox.js";
import { createPostgres, pingPostgres } from "../../internal/platform/postgres.js";
import { announceReady, createRuntime, runMain } from "../../internal/platform/runtime.js";
import { migrateService } from "../../internal/schemas.js";
import { ensureStream } from "../../internal/platform/stream.js";
import { loadWorkspaceConfig } from "../../internal/workspace/config.js";
import { NatsMembershipChanges } from "../../internal/workspace/membership-changes.js";
import { workspaceHandlers } from "../../internal/workspace/server.js";
import { WorkspaceService } from "../../internal/workspace/service.js";
import { WorkspaceStore } from "../../internal/workspace/store.js";
import { AuthUserDirectory } from "../../internal/workspace/user-directory.js";

runMain("workspace", async () => {
  const config = loadWorkspaceConfig(process.env);
  const runtime = createRuntime("workspace", config);
  const { log, registry, health, shutdown } = runtime;

  const sql = createPostgres(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, applicationName: "workspace", log });
  await pingPostgres(sql);
  await migrateService(sql, "workspace", log);
  const nc = await connectNats(config.NATS_URL, "workspace", log);
  const jsm = await nc.jetstreamManager();
  const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
  await ensureStream(jsm, subjects, {
    name: config.NATS_STREAM,
    maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS,
    replicas: config.NATS_STREAM_REPLICAS,
  }, log);

  const auth = connectService(AuthServiceClient, config.AUTH_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const outbox = new Outbox(sql, nc, nc.jetstream(), subjects, { schema: "workspace", databaseUrl: config.DATABASE_URL }, log, registry);
  const service = new WorkspaceService(
    new WorkspaceStore(sql),
    outbox,
    new AuthUserDirectory(auth),
    new NatsMembershipChanges(nc, subjects, log),
  );
  outbox.start();
  const userDeletions = new DurableConsumer(
    nc.jetstream(),
    jsm,
    { stream: config.NATS_STREAM, durable: "workspace-user-deletions", filterSubject: subjects.of({ type: "user.deleted" }), startAt: "all" },
    (event) => service.removeUser(event.aggregate_id),
    log,
  );
  await userDeletions.start();

  const keys = new AuthKeys(auth);
  const verifier = new AccessTokenVerifier(() => keys.jwks(true));
  const grpcServer = new GrpcServer({
    log,
    registry,
    internalToken: config.INTERNAL_TOKEN,
    verifyAccessToken: (token) => verifier.verify(token),
  }).add(WorkspaceServiceService, workspaceHandlers(service));

  health.add("postgres", () => pingPostgres(sql)).add("nats", () => pingNats(nc));
  const admin = new AdminServer(health, registry);
  const grpcPort = await grpcServer.listen(config.GRPC_PORT);
  const adminPort = await admin.listen(config.ADMIN_PORT);

  shutdown
    .add("mark stopping", () => health.markStopping())
    .add("grpc", () => grpcServer.close(config.SHUTDOWN_TIMEOUT_MS / 2))
    .add("consumers", () => userDeletions.close())
    .add("outbox", () => outbox.close())
    .add("auth client", () => auth.close())
    .add("nats", () => nc.drain())
    .add("postgres", () => sql.end({ timeout: 2 }))
    .add("admin", () => admin.close());
  announceReady(log, { grpc_port: grpcPort, admin_port: adminPort });
  return runtime;
});
