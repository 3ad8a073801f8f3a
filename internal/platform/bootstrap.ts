import type * as grpc from "@grpc/grpc-js";
import type { JetStreamClient, JetStreamManager, NatsConnection } from "nats";
import type { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { migrateService, type ServiceSchema } from "../schemas.js";
import { AccessTokenVerifier } from "./access-tokens.js";
import { AdminServer } from "./admin-server.js";
import { AuthKeys } from "./auth-keys.js";
import { DurableConsumer, type Subscription } from "./durable-consumer.js";
import { Subjects } from "./events.js";
import { connectService, type ServiceClient } from "./grpc-client.js";
import { GrpcServer } from "./grpc-server.js";
import type { Logger } from "./logger.js";
import type { Caller } from "./principal.js";
import { CachedMemberships } from "./memberships.js";
import { connectNats, pingNats } from "./nats.js";
import { Outbox } from "./outbox.js";
import { createPostgres, pingPostgres, type Sql } from "./postgres.js";
import { connectRedis, pingRedis } from "./redis.js";
import { announceReady, createRuntime, runMain, type Runtime } from "./runtime.js";
import { ensureStream } from "./stream.js";
import { startTracing } from "./tracing.js";
import type { Redis } from "ioredis";
import { Gauge } from "prom-client";
import type { JSONWebKeySet } from "jose";

/** What every service's configuration has (platform/config.ts: commonEnv, natsEnv). */
export interface PlatformConfig {
  LOG_LEVEL: string;
  SHUTDOWN_TIMEOUT_MS: number;
  INTERNAL_SECRET: string;
  /** Callers admitted by this process's gRPC server (processes that serve gRPC). */
  INTERNAL_CALLERS?: ReadonlyMap<string, Caller>;
  LISTEN_HOST: string;
  NATS_URL: string;
  NATS_SUBJECT_ROOT: string;
  NATS_STREAM: string;
  NATS_STREAM_MAX_AGE_HOURS: number;
  NATS_STREAM_REPLICAS: number;
  ADMIN_PORT: number;
  DATABASE_URL?: string;
  DATABASE_POOL_SIZE?: number;
  REDIS_URL?: string;
  REDIS_PREFIX?: string;
  GRPC_TIMEOUT_MS?: number;
}

/**
 * When a shutdown step runs, whatever order the parts were set up in: first
 * stop taking work, then finish it, then drop what it needed.
 */
const PHASES = ["listeners", "consumers", "outbox", "caches", "clients", "messaging", "databases"] as const;
type Phase = (typeof PHASES)[number];

export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  subjects: Subjects;
}

/**
 * One process's platform (ARCHITECTURE.md "Layout"): each part a main asks for
 * is connected, registers its readiness check and its shutdown step in the
 * right phase, and `serve` binds the ports and announces "ready". A main is
 * then only the wiring of its service.
 */
export class Platform implements Runtime {
  readonly log: Logger;
  readonly registry: Runtime["registry"];
  readonly health: Runtime["health"];
  readonly shutdown: Runtime["shutdown"];
  private readonly steps: { phase: Phase; name: string; run: () => unknown }[] = [];
  private natsParts: Promise<Nats> | undefined;
  private redisConnection: Promise<Redis> | undefined;
  private verifier: AccessTokenVerifier | undefined;
  private grpcServer: GrpcServer | undefined;
  private readonly durables: string[] = [];

  constructor(
    readonly service: string,
    readonly config: PlatformConfig,
    /** Flushes and stops tracing (startTracing), when it is on: the last shutdown step. */
    private readonly stopTracing?: () => Promise<void>,
  ) {
    const runtime = createRuntime(service, config);
    this.log = runtime.log;
    this.registry = runtime.registry;
    this.health = runtime.health;
    this.shutdown = runtime.shutdown;
  }

  /** Adds a shutdown step to a phase (steps of a phase run in the order they were added). */
  onStop(phase: Phase, name: string, run: () => unknown): void {
    this.steps.push({ phase, name, run });
  }

  /** Postgres: the service's pool, its schema migrated, a readiness check. */
  async postgres(schema: ServiceSchema, options: { noDelay?: boolean } = {}): Promise<Sql> {
    const url = required(this.config.DATABASE_URL, "DATABASE_URL");
    const sql = createPostgres(url, { poolSize: this.config.DATABASE_POOL_SIZE ?? 10, applicationName: this.service, log: this.log, ...options });
    await pingPostgres(sql);
    await migrateService(sql, schema, this.log);
    this.health.add("postgres", () => pingPostgres(sql));
    this.onStop("databases", "postgres", () => sql.end({ timeout: 2 }));
    return sql;
  }

  /** NATS and the event stream (created or updated to the configuration), a readiness check. */
  nats(): Promise<Nats> {
    this.natsParts ??= (async () => {
      const { config } = this;
      const nc = await connectNats(config.NATS_URL, this.service, this.log);
      const jsm = await nc.jetstreamManager();
      const subjects = new Subjects(config.NATS_SUBJECT_ROOT);
      await ensureStream(jsm, subjects, { name: config.NATS_STREAM, maxAgeHours: config.NATS_STREAM_MAX_AGE_HOURS, replicas: config.NATS_STREAM_REPLICAS }, this.log);
      this.health.add("nats", () => pingNats(nc));
      // Drained before the databases close: a handler still running can finish its writes.
      this.onStop("messaging", "nats", () => nc.drain());
      return { nc, js: nc.jetstream(), jsm, subjects };
    })();
    return this.natsParts;
  }

  /** The process's Redis connection (one, however often asked). */
  redis(): Promise<Redis> {
    this.redisConnection ??= (async () => {
      const redis = await connectRedis(required(this.config.REDIS_URL, "REDIS_URL"), this.config.REDIS_PREFIX ?? "tb:", this.log);
      this.health.add("redis", () => pingRedis(redis));
      this.onStop("databases", "redis", () => redis.quit());
      return redis;
    })();
    return this.redisConnection;
  }

  /**
   * A client of another service, authenticated as this process; with `health`,
   * the process is not ready while that service is unreachable (named so in /health).
   */
  client<C extends grpc.Client>(
    Ctor: Parameters<typeof connectService<C>>[0],
    address: string,
    options: { health?: string; channel?: Partial<grpc.ClientOptions> } = {},
  ): ServiceClient<C> {
    const client = connectService(Ctor, address, this.config.INTERNAL_SECRET, this.config.GRPC_TIMEOUT_MS ?? 5_000, options.channel);
    if (options.health) this.health.add(options.health, () => client.ready(1_000));
    this.onStop("clients", `client ${address}`, () => client.close());
    return client;
  }

  /** Access tokens verified against the auth service's public keys (auth itself passes its own key set). */
  tokens(source: ServiceClient<AuthServiceClient> | (() => Promise<JSONWebKeySet>)): AccessTokenVerifier {
    const keys = typeof source === "function" ? undefined : new AuthKeys(source);
    this.verifier = new AccessTokenVerifier(keys ? () => keys.jwks(true) : (source as () => Promise<JSONWebKeySet>));
    return this.verifier;
  }

  /** Workspace roles, cached and invalidated by the membership feed. */
  async memberships(workspace: ServiceClient<WorkspaceServiceClient>): Promise<CachedMemberships> {
    const memberships = new CachedMemberships(workspace, this.log, { registry: this.registry });
    const { nc, subjects } = await this.nats();
    await memberships.followChanges(nc, subjects);
    this.onStop("caches", "memberships", () => memberships.close());
    return memberships;
  }

  /** The transactional outbox of the service's schema, relaying once started. */
  async outbox(sql: Sql, schema: ServiceSchema): Promise<Outbox> {
    const { nc, js, subjects } = await this.nats();
    const outbox = new Outbox(sql, nc, js, subjects, { schema, databaseUrl: required(this.config.DATABASE_URL, "DATABASE_URL") }, this.log, this.registry);
    outbox.start();
    this.onStop("outbox", "outbox", () => outbox.close());
    return outbox;
  }

  /** A durable consumer of the stream for an inbound event, started (see durable-consumer.ts). */
  async consume(subscription: Subscription): Promise<DurableConsumer> {
    const { js, jsm } = await this.nats();
    const { handle, ...options } = subscription;
    const consumer = new DurableConsumer(js, jsm, { ...options, stream: this.config.NATS_STREAM }, handle, this.log);
    await consumer.start();
    if (this.durables.push(options.durable) === 1) this.consumerLagMetrics(jsm);
    this.onStop("consumers", options.durable, () => consumer.close());
    return consumer;
  }

  /**
   * Consumer lag, read from JetStream when Prometheus scrapes: events not yet
   * delivered to each of the process's durables, and those delivered but not yet
   * acknowledged. A durable that cannot be read (NATS away) is left out of that scrape.
   */
  private consumerLagMetrics(jsm: JetStreamManager): void {
    const stream = this.config.NATS_STREAM;
    const durables = this.durables;
    const collectFrom = (read: (info: { num_pending: number; num_ack_pending: number }) => number) =>
      async function (this: Gauge<"consumer">) {
        this.reset();
        for (const durable of durables) {
          const info = await jsm.consumers.info(stream, durable).catch(() => undefined);
          if (info) this.set({ consumer: durable }, read(info));
        }
      };
    new Gauge({
      name: "taskboard_consumer_pending_messages",
      help: "Events in the stream not yet delivered to the durable consumer",
      labelNames: ["consumer"],
      registers: [this.registry],
      collect: collectFrom((info) => info.num_pending),
    });
    new Gauge({
      name: "taskboard_consumer_ack_pending_messages",
      help: "Events delivered to the durable consumer and not yet acknowledged",
      labelNames: ["consumer"],
      registers: [this.registry],
      collect: collectFrom((info) => info.num_ack_pending),
    });
  }

  /** The gRPC server: users authorised by their access tokens, other processes by their own internal credentials. */
  grpc(): GrpcServer {
    const verifier = this.verifier;
    if (!verifier) throw new Error("Platform.grpc() needs Platform.tokens() first");
    this.grpcServer ??= new GrpcServer({
      log: this.log,
      registry: this.registry,
      callers: required(this.config.INTERNAL_CALLERS, "INTERNAL_CALLERS"),
      verifyAccessToken: (token) => verifier.verify(token),
    });
    return this.grpcServer;
  }

  /**
   * Binds the gRPC port (when a server was asked for) and the admin port, puts
   * the shutdown steps in their order and logs "ready" with the ports and `extra`.
   */
  async serve(options: { grpcPort?: number; extra?: Record<string, unknown> } = {}): Promise<Runtime> {
    const ports: Record<string, unknown> = {};
    const grpcServer = this.grpcServer;
    if (grpcServer) {
      ports["grpc_port"] = await grpcServer.listen(options.grpcPort ?? 0, this.config.LISTEN_HOST);
      this.onStop("listeners", "grpc", () => grpcServer.close(this.config.SHUTDOWN_TIMEOUT_MS / 2));
    }
    const admin = new AdminServer(this.health, this.registry);
    ports["admin_port"] = await admin.listen(this.config.ADMIN_PORT, this.config.LISTEN_HOST);
    this.shutdown.add("mark stopping", () => this.health.markStopping());
    for (const phase of PHASES) for (const step of this.steps.filter((s) => s.phase === phase)) this.shutdown.add(step.name, step.run);
    this.shutdown.add("admin", () => admin.close());
    if (this.stopTracing) this.shutdown.add("traces", this.stopTracing);
    announceReady(this.log, { ...ports, ...options.extra });
    return this;
  }
}

/** A process entry: loads its configuration, wires its service on a Platform and serves (runtime.ts runMain). */
export function runService<C extends PlatformConfig>(
  service: string,
  loadConfig: (env: NodeJS.ProcessEnv) => C,
  wire: (platform: Platform, config: C) => Promise<Runtime>,
): void {
  runMain(service, async () => {
    const config = loadConfig(process.env);
    return wire(new Platform(service, config, await startTracing(service, process.env)), config);
  });
}

function required<T>(value: T | undefined, name: string): T {
  if (!value) throw new Error(`${name} is required by this process`);
  return value;
}
