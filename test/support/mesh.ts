import { randomBytes } from "node:crypto";
import { startOrder } from "../../internal/devenv/topology.js";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { Redis } from "ioredis";
import postgres from "postgres";
import { inject } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { LocalCredentials } from "../../internal/devenv/credentials.js";
import { startProcess, type MeshProcess } from "../../internal/devenv/processes.js";
import { Subjects } from "../../internal/platform/events.js";
import { connectService, type ServiceClient } from "../../internal/platform/grpc-client.js";
import type { Caller } from "../../internal/platform/principal.js";
import { withDatabase } from "./databases.js";
import { Api } from "./http.js";

const repoRoot = new URL("../../", import.meta.url).pathname;
const logDir = join(repoRoot, "test", "artifacts", "logs");

/**
 * The services of the mesh, in start order (the gateway comes last), each with the
 * variable that gives later processes its gRPC address (none for processes without gRPC).
 */
export const SERVICES: { name: string; addressVar?: string }[] = startOrder()
  .flat()
  .filter((p) => p.name !== "gateway");

export interface MeshOptions {
  /** Extra environment for every process. */
  env?: Record<string, string>;
  /** How many gateway replicas to start (default 1). */
  gateways?: number;
  /**
   * Servers of the test's own (fault tests), instead of the run's shared ones;
   * those not given are the shared ones. The database named in `databaseUrl`
   * must exist; the services migrate it.
   */
  servers?: { natsUrl?: string; redisUrl?: string; databaseUrl?: string };
}

/**
 * One test file's own Taskboard: its own database (cloned from the migrated
 * template), NATS subject root and stream, and Redis key prefix, with real
 * processes (`node dist/cmd/<name>/main.js`) on free ports.
 */
export class Mesh {
  readonly processes = new Map<string, MeshProcess>();
  readonly gateways: { url: string; process: MeshProcess }[] = [];
  readonly subjects: Subjects;
  readonly streamName: string;
  readonly env: Record<string, string>;
  /** Each process's own internal credential (given to it as INTERNAL_SECRET). */
  readonly credentials = new LocalCredentials();
  private readonly logs: WriteStream[] = [];
  private readonly cleanups: (() => Promise<unknown>)[] = [];
  private nc: NatsConnection | undefined;

  private constructor(
    readonly id: string,
    readonly databaseUrl: string,
    private readonly options: MeshOptions,
  ) {
    const servers = { ...inject("servers"), ...options.servers };
    this.subjects = new Subjects(id);
    this.streamName = id.toUpperCase();
    this.env = {
      NATS_URL: servers.natsUrl,
      REDIS_URL: servers.redisUrl,
      DATABASE_URL: databaseUrl,
      SES_ENDPOINT: inject("servers").sesEndpoint,
      NATS_SUBJECT_ROOT: id,
      NATS_STREAM: this.streamName,
      REDIS_PREFIX: `${id}:`,
      LOG_LEVEL: "debug",
      GRPC_PORT: "0",
      ADMIN_PORT: "0",
      GATEWAY_PORT: "0",
      SHUTDOWN_TIMEOUT_MS: "5000",
      DATABASE_POOL_SIZE: "5",
      RATE_LIMIT_PER_IP: "100000",
      RATE_LIMIT_PER_EMAIL: "100000",
      // Tests drive one user hard; the limits themselves are tested with small values.
      RATE_LIMIT_API_PER_USER: "1000000",
      RATE_LIMIT_WS_MESSAGES_PER_USER: "1000000",
      WS_MAX_CONNECTIONS_PER_USER: "100000",
      EXPORT_MAX_ACTIVE_PER_WORKSPACE: "100000",
      ...options.env,
    };
  }

  static async start(options: MeshOptions = {}): Promise<Mesh> {
    const servers = inject("servers");
    const id = `t${randomBytes(5).toString("hex")}`;
    let databaseUrl = options.servers?.databaseUrl;
    if (!databaseUrl) {
      const database = `tb_${id}`;
      const admin = postgres(withDatabase(servers.databaseUrl, "postgres"), { max: 1, onnotice: () => undefined });
      await admin.unsafe(`create database ${database} template ${servers.templateDatabase}`);
      await admin.end();
      databaseUrl = withDatabase(servers.databaseUrl, database);
    }
    const mesh = new Mesh(id, databaseUrl, options);
    try {
      for (const service of SERVICES) {
        const started = await mesh.startProcess(service.name);
        if (service.addressVar) mesh.env[service.addressVar] = `127.0.0.1:${started.ports["grpc"]}`;
      }
      for (let i = 0; i < (options.gateways ?? 1); i++) await mesh.startGateway();
    } catch (error) {
      await mesh.stop();
      throw error;
    }
    return mesh;
  }

  /** The first gateway's base URL. */
  get url(): string {
    return this.gateways[0]!.url;
  }

  /** An API client on the first gateway. */
  get api(): Api {
    return new Api(this.url);
  }

  async startProcess(name: string, extraEnv: Record<string, string> = {}, label = name): Promise<MeshProcess> {
    mkdirSync(logDir, { recursive: true });
    const log = createWriteStream(join(logDir, `${this.id}-${label}.log`), { flags: "a" });
    this.logs.push(log);
    const started = await startProcess(name, {
      cwd: repoRoot,
      env: { ...this.env, ...this.credentials.env(name), ...extraEnv },
      output: (line) => log.write(`${line}\n`),
    });
    this.processes.set(label, started);
    return started;
  }

  /** Starts another gateway replica; returns its base URL. */
  async startGateway(extraEnv: Record<string, string> = {}): Promise<{ url: string; process: MeshProcess }> {
    const label = `gateway-${this.gateways.length + 1}`;
    const started = await this.startProcess("gateway", extraEnv, label);
    const gateway = { url: `http://127.0.0.1:${started.ports["http"]}`, process: started };
    this.gateways.push(gateway);
    return gateway;
  }

  /** Stops and starts a process again with the same environment. */
  async restart(label: string, extraEnv: Record<string, string> = {}): Promise<MeshProcess> {
    const old = this.processes.get(label);
    if (!old) throw new Error(`no process ${label}`);
    await old.stop();
    return this.startProcess(old.name, extraEnv, label);
  }

  /**
   * A gRPC client of process `name` (closed by stop()); a call with `internal: true`
   * presents the credential of process `as`.
   */
  grpcClient<C extends grpc.Client>(Ctor: Parameters<typeof connectService<C>>[0], name: string, as: Caller, timeoutMs = 5_000): ServiceClient<C> {
    const client = connectService(Ctor, `127.0.0.1:${this.processes.get(name)!.ports["grpc"]}`, this.credentials.secrets[as], timeoutMs);
    this.cleanups.push(async () => client.close());
    return client;
  }

  /** A NATS connection for assertions (closed by stop()). */
  async nats(): Promise<NatsConnection> {
    this.nc ??= await connect({ servers: this.env["NATS_URL"]!.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    return this.nc;
  }

  /** A Postgres connection to this mesh's database (closed by stop()). */
  sql(): postgres.Sql {
    const sql = postgres(this.databaseUrl, { max: 2, onnotice: () => undefined });
    this.cleanups.push(() => sql.end({ timeout: 2 }));
    return sql;
  }

  /** A Redis client under this mesh's key prefix (closed by stop()). */
  redis(): Redis {
    const redis = new Redis(this.env["REDIS_URL"]!, { keyPrefix: `${this.id}:` });
    this.cleanups.push(() => redis.quit());
    return redis;
  }

  async stop(): Promise<void> {
    const labels = [...this.processes.keys()].reverse();
    await Promise.all(this.gateways.map((g) => g.process.stop()));
    for (const label of labels) await this.processes.get(label)!.stop();
    for (const cleanup of this.cleanups.splice(0)) await cleanup().catch(() => undefined);
    const servers = inject("servers");
    const own = this.options.servers ?? {};
    // Private servers go away with their data: clean only what lives on the shared ones.
    if (!own.natsUrl) {
      const nc = this.nc ?? (await connect({ servers: this.env["NATS_URL"]!, maxReconnectAttempts: 2 }).catch(() => undefined));
      if (nc) {
        const jsm = await nc.jetstreamManager();
        await jsm.streams.delete(this.streamName).catch(() => undefined);
        if (nc !== this.nc) await nc.close();
      }
    }
    await this.nc?.close();
    if (!own.redisUrl) {
      const redis = new Redis(servers.redisUrl);
      for (let cursor = "0"; ; ) {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${this.id}:*`, "COUNT", 1000);
        if (keys.length > 0) await redis.del(...keys);
        if (next === "0") break;
        cursor = next;
      }
      await redis.quit();
    }
    if (!own.databaseUrl) {
      const admin = postgres(withDatabase(servers.databaseUrl, "postgres"), { max: 1, onnotice: () => undefined });
      await admin.unsafe(`drop database if exists tb_${this.id} with (force)`);
      await admin.end();
    }
    for (const log of this.logs) log.end();
  }
}
