import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnChild, type RunningChild } from "../../internal/devenv/processes.js";
import { freePort } from "../../internal/devenv/ports.js";
import { waitFor } from "./wait.js";

/**
 * Servers of a test's own, on free ports, that the test may kill and start
 * again on the same data: the shared NATS, Postgres and Redis are never
 * stopped. Each keeps its files in a temporary directory removed by `destroy()`.
 */

const PG_BIN = "/usr/lib/postgresql/15/bin";

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** A server process that can be stopped, killed and started again with the same arguments. */
abstract class RestartableServer {
  protected child: RunningChild | undefined;
  readonly dir: string;
  /** Lines the server wrote, for a failure message. */
  readonly output: string[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `taskboard-fault-${name}-`));
  }

  protected abstract command(): { file: string; args: string[]; uid?: number; gid?: number; stopSignal?: NodeJS.Signals };

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && !this.child.hasExited();
  }

  async start(): Promise<void> {
    const { file, args, uid, gid, stopSignal } = this.command();
    this.child = spawnChild(file, args, {
      cwd: this.dir,
      env: { PATH: process.env["PATH"] ?? "", HOME: this.dir },
      ...(uid === undefined ? {} : { uid, gid: gid! }),
      ...(stopSignal ? { parentDeathSignal: stopSignal } : {}),
      onLine: (line) => {
        this.output.push(line);
        if (this.output.length > 200) this.output.shift();
      },
    });
    const child = this.child;
    await waitFor(`${this.name} to accept connections on ${this.port}`, async () => {
      if (child.hasExited()) throw new Error(`${this.name} exited: ${this.output.slice(-5).join(" | ")}`);
      return (await accepts(this.port)) && (await this.ready());
    }, 30_000, 50);
  }

  /** Extra readiness beyond accepting TCP (a log line, say). */
  protected async ready(): Promise<boolean> {
    return true;
  }

  /** Stops it the way an operator's restart does (the server's own fast shutdown signal). */
  async stop(): Promise<void> {
    await this.child?.stop(this.command().stopSignal ?? "SIGTERM", 15_000);
  }

  /** kill -9: no shutdown at all. */
  async kill(): Promise<void> {
    await this.child?.stop("SIGKILL");
  }

  async destroy(): Promise<void> {
    await this.child?.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class NatsServer extends RestartableServer {
  readonly clusterPort: number;
  private routes: number[] = [];

  private constructor(port: number, clusterPort: number, private readonly serverName: string) {
    super(`nats-${serverName}`, port);
    this.clusterPort = clusterPort;
  }

  static async create(name = "n1"): Promise<NatsServer> {
    return new NatsServer(await freePort(), await freePort(), name);
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Joins a cluster: the other members' cluster ports. */
  routeTo(clusterPorts: number[]): void {
    this.routes = clusterPorts;
  }

  protected command() {
    const args = ["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", join(this.dir, "store"), "-n", this.serverName];
    if (this.routes.length > 0) {
      args.push("--cluster_name", "faults", "--cluster", `nats://127.0.0.1:${this.clusterPort}`, "--routes", this.routes.map((p) => `nats://127.0.0.1:${p}`).join(","));
    }
    return { file: "nats-server", args };
  }
}

/** Three NATS servers routed into one JetStream cluster (R3 streams survive losing one). */
export class NatsCluster {
  private constructor(readonly nodes: NatsServer[]) {}

  static async start(): Promise<NatsCluster> {
    const nodes = await Promise.all(["c1", "c2", "c3"].map((name) => NatsServer.create(name)));
    for (const node of nodes) node.routeTo(nodes.filter((n) => n !== node).map((n) => n.clusterPort));
    await Promise.all(nodes.map((node) => node.start()));
    return new NatsCluster(nodes);
  }

  /** Every node's URL, comma separated (as NATS_URL takes them). */
  get url(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  node(serverName: string): NatsServer {
    const node = this.nodes.find((n) => n.name === `nats-${serverName}`);
    if (!node) throw new Error(`no node ${serverName}`);
    return node;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.destroy()));
  }
}

export class PostgresServer extends RestartableServer {
  private user: { uid: number; gid: number } | undefined;

  private constructor(port: number) {
    super("postgres", port);
  }

  /** initdb into a fresh directory (as the postgres system user when we are root). */
  static async create(): Promise<PostgresServer> {
    const server = new PostgresServer(await freePort());
    if (process.getuid?.() === 0) {
      const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("postgres:"));
      if (!line) throw new Error("running as root, and there is no postgres user to run Postgres as");
      const [, , uid, gid] = line.split(":");
      server.user = { uid: Number(uid), gid: Number(gid) };
      chownSync(server.dir, server.user.uid, server.user.gid);
    }
    const init = spawnChild(join(PG_BIN, "initdb"), ["-D", join(server.dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], {
      cwd: server.dir,
      env: { PATH: process.env["PATH"] ?? "" },
      ...(server.user ? { uid: server.user.uid, gid: server.user.gid } : {}),
    });
    const code = await init.exited;
    if (code !== 0) throw new Error(`initdb exited with ${code}: ${init.lastLines().join(" | ")}`);
    mkdirSync(join(server.dir, "socket"), { recursive: true });
    if (server.user) chownSync(join(server.dir, "socket"), server.user.uid, server.user.gid);
    return server;
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  protected command() {
    return {
      file: join(PG_BIN, "postgres"),
      args: ["-D", join(this.dir, "data"), "-p", String(this.port), "-k", join(this.dir, "socket"), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
      ...(this.user ?? {}),
      // SIGINT is Postgres's fast shutdown (pg_ctl restart -m fast).
      stopSignal: "SIGINT" as NodeJS.Signals,
    };
  }

  protected override async ready(): Promise<boolean> {
    return this.output.some((line) => line.includes("database system is ready to accept connections"));
  }

  /**
   * Starts again after a kill of the postmaster: its backends notice and exit,
   * but until the last one has, the old shared memory is in use and Postgres
   * refuses to start. Tries until it starts.
   */
  async startAfterKill(): Promise<void> {
    this.output.length = 0;
    await waitFor("Postgres to start again after its postmaster was killed", async () => {
      try {
        await this.start();
        return true;
      } catch {
        this.output.length = 0;
        return false; // the old backends are still leaving: try again
      }
    }, 60_000, 250);
  }

  override async start(): Promise<void> {
    this.output.length = 0;
    await super.start();
  }
}

export class RedisServer extends RestartableServer {
  private constructor(port: number) {
    super("redis", port);
  }

  static async create(): Promise<RedisServer> {
    return new RedisServer(await freePort());
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected command() {
    // Append-only, as a deployed Redis keeps its data (refresh tokens) across a restart.
    return { file: "redis-server", args: ["--bind", "127.0.0.1", "--port", String(this.port), "--save", "", "--appendonly", "yes", "--dir", this.dir] };
  }
}
