import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AdminServer } from "../../internal/platform/admin-server.js";
import { Subjects } from "../../internal/platform/events.js";
import { connectService } from "../../internal/platform/grpc-client.js";
import { connectNats, pingNats } from "../../internal/platform/nats.js";
import { Outbox } from "../../internal/platform/outbox.js";
import { createPostgres, pingPostgres } from "../../internal/platform/postgres.js";
import { announceReady, createRuntime, runMain } from "../../internal/platform/runtime.js";
import { ensureStream } from "../../internal/platform/stream.js";
import { loadNotifyConfig } from "../../internal/notify/config.js";
import { NotifyConsumers } from "../../internal/notify/consumers.js";
import { ServiceDirectory } from "../../internal/notify/directory.js";
import { CachedMemberships } from "../../internal/platform/memberships.js";
import { SesMailer } from "../../internal/notify/mailer.js";
import { NotifyMetrics } from "../../internal/notify/metrics.js";
import { NotifyService } from "../../internal/notify/service.js";
import { DeliveryStore } from "../../internal/notify/store.js";
import { migrateService } from "../../internal/schemas.js";

runMain("notify", async () => {
  const config = loadNotifyConfig(process.env);
  const runtime = createRuntime("notify", config);
  const { log, registry, health, shutdown } = runtime;
  if (config.NOTIFY_FAULT) log.warn({ fault: config.NOTIFY_FAULT }, "NOTIFY_FAULT is set: this process will kill itself (test only)");

  const sql = createPostgres(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, applicationName: "notify", log });
  await pingPostgres(sql);
  await migrateService(sql, "notify", log);
  const nc = await connectNats(config.NATS_URL, "notify", log);
  const jsm = await nc.jetstreamManager();
  const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
  await ensureStream(jsm, subjects, {
    name: config.NATS_STREAM,
    maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS,
    replicas: config.NATS_STREAM_REPLICAS,
  }, log);

  const auth = connectService(AuthServiceClient, config.AUTH_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const workspace = connectService(WorkspaceServiceClient, config.WORKSPACE_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const tasks = connectService(TaskServiceClient, config.TASK_ADDR, config.INTERNAL_TOKEN, config.GRPC_TIMEOUT_MS);
  const memberships = new CachedMemberships(workspace, log, { registry });
  await memberships.followChanges(nc, subjects);
  const mailer = new SesMailer({
    endpoint: config.SES_ENDPOINT,
    region: config.SES_REGION,
    from: config.SES_FROM,
    timeoutMs: config.SES_TIMEOUT_MS,
    credentialsFromEnvironment: config.awsCredentialsFromEnvironment,
  });
  const outbox = new Outbox(sql, nc, nc.jetstream(), subjects, { schema: "notify", databaseUrl: config.DATABASE_URL }, log, registry);
  const replica = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const service = new NotifyService(
    new DeliveryStore(sql),
    outbox,
    new ServiceDirectory(auth, memberships, tasks),
    mailer,
    new NotifyMetrics(registry),
    log,
    {
      appUrl: config.APP_URL,
      replica,
      claimTtlMs: config.NOTIFY_CLAIM_TTL_MS,
      sendAttempts: config.NOTIFY_SEND_ATTEMPTS,
      retryBaseMs: config.NOTIFY_RETRY_BASE_MS,
      maxDeliver: config.NOTIFY_MAX_DELIVER,
      fault: config.NOTIFY_FAULT,
    },
  );
  outbox.start();
  const consumers = new NotifyConsumers(nc.jetstream(), jsm, subjects, service, {
    stream: config.NATS_STREAM,
    maxDeliver: config.NOTIFY_MAX_DELIVER,
    ackWaitMs: config.NOTIFY_ACK_WAIT_MS,
    redeliveryMs: config.NOTIFY_REDELIVERY_MS,
  }, log);
  await consumers.start();

  health.add("postgres", () => pingPostgres(sql)).add("nats", () => pingNats(nc));
  const admin = new AdminServer(health, registry);
  const adminPort = await admin.listen(config.ADMIN_PORT);

  shutdown
    .add("mark stopping", () => health.markStopping())
    .add("consumers", () => consumers.close())
    .add("outbox", () => outbox.close())
    .add("memberships", () => memberships.close())
    .add("service clients", () => [auth, workspace, tasks].forEach((client) => client.close()))
    .add("ses", () => mailer.close())
    .add("nats", () => nc.drain())
    .add("postgres", () => sql.end({ timeout: 2 }))
    .add("admin", () => admin.close());
  announceReady(log, { admin_port: adminPort, replica, ses_endpoint: config.SES_ENDPOINT });
  return runtime;
});
