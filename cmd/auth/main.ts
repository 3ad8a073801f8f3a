import { AuthServiceService } from "../../api/gen/taskboard/auth/v1/auth.js";
import { AccessTokenVerifier } from "../../internal/platform/access-tokens.js";
import { AdminServer } from "../../internal/platform/admin-server.js";
import { Subjects } from "../../internal/platform/events.js";
import { GrpcServer } from "../../internal/platform/grpc-server.js";
import { connectNats, pingNats } from "../../internal/platform/nats.js";
import { Outbox } from "../../internal/platform/outbox.js";
import { createPostgres, pingPostgres } from "../../internal/platform/postgres.js";
import { RateLimiter } from "../../internal/platform/rate-limit.js";
import { connectRedis, pingRedis } from "../../internal/platform/redis.js";
import { announceReady, createRuntime, runMain } from "../../internal/platform/runtime.js";
import { migrateService } from "../../internal/schemas.js";
import { ensureStream } from "../../internal/platform/stream.js";
import { loadAuthConfig } from "../../internal/auth/config.js";
import { RefreshTokenFamilies } from "../../internal/auth/refresh-tokens.js";
import { authHandlers } from "../../internal/auth/server.js";
import { AuthService } from "../../internal/auth/service.js";
import { SigningKey } from "../../internal/auth/signing-key.js";
import { UserStore } from "../../internal/auth/store.js";

runMain("auth", async () => {
  const config = loadAuthConfig(process.env);
  const runtime = createRuntime("auth", config);
  const { log, registry, health, shutdown } = runtime;

  const key = await SigningKey.load(config.JWT_PRIVATE_KEY, config.NODE_ENV !== "production");
  if (!config.JWT_PRIVATE_KEY) log.warn("JWT_PRIVATE_KEY unset: signing with a key generated for this run");

  const sql = createPostgres(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, applicationName: "auth", log });
  await pingPostgres(sql);
  await migrateService(sql, "auth", log);
  const redis = await connectRedis(config.REDIS_URL, config.REDIS_PREFIX, log);
  const nc = await connectNats(config.NATS_URL, "auth", log);
  const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
  await ensureStream(await nc.jetstreamManager(), subjects, {
    name: config.NATS_STREAM,
    maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS,
    replicas: config.NATS_STREAM_REPLICAS,
  }, log);

  const outbox = new Outbox(sql, nc, nc.jetstream(), subjects, { schema: "auth", databaseUrl: config.DATABASE_URL }, log, registry);
  const service = new AuthService(
    new UserStore(sql),
    outbox,
    key,
    new RefreshTokenFamilies(redis, config.REFRESH_TOKEN_TTL_SECONDS),
    new RateLimiter(redis),
    {
      accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
      rateLimitWindowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
      rateLimitPerIp: config.RATE_LIMIT_PER_IP,
      rateLimitPerEmail: config.RATE_LIMIT_PER_EMAIL,
    },
  );
  outbox.start();
  if (config.BOOTSTRAP_ADMIN_EMAIL && config.BOOTSTRAP_ADMIN_PASSWORD) {
    const admin = await service.bootstrapAdmin(config.BOOTSTRAP_ADMIN_EMAIL, config.BOOTSTRAP_ADMIN_PASSWORD);
    log.info({ user_id: admin.id }, "bootstrap admin ready");
  }

  const verifier = new AccessTokenVerifier(async () => key.jwks);
  const grpcServer = new GrpcServer({
    log,
    registry,
    internalToken: config.INTERNAL_TOKEN,
    verifyAccessToken: (token) => verifier.verify(token),
  }).add(AuthServiceService, authHandlers(service));

  health.add("postgres", () => pingPostgres(sql)).add("redis", () => pingRedis(redis)).add("nats", () => pingNats(nc));
  const admin = new AdminServer(health, registry);
  const grpcPort = await grpcServer.listen(config.GRPC_PORT);
  const adminPort = await admin.listen(config.ADMIN_PORT);

  shutdown
    .add("mark stopping", () => health.markStopping())
    .add("grpc", () => grpcServer.close(config.SHUTDOWN_TIMEOUT_MS / 2))
    .add("outbox", () => outbox.close())
    .add("nats", () => nc.drain())
    .add("redis", () => redis.quit())
    .add("postgres", () => sql.end({ timeout: 2 }))
    .add("admin", () => admin.close());
  announceReady(log, { grpc_port: grpcPort, admin_port: adminPort });
  return runtime;
});
