import { execFile } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, chown, mkdtemp, readFile, realpath, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { redactUrl, type Env } from "../platform/config.js";
import { pgErrorCode } from "../platform/postgres.js";
import { canListen, freePort } from "./ports.js";
import { spawnChild, type RunningChild } from "./processes.js";

/**
 * Finds or starts the servers the mesh and the tests need (ARCHITECTURE.md
 * "Running it"): the URL in the environment, else a server on the default
 * local port, else a binary on PATH, else testcontainers; else it says what
 * to install.
 */

export type ServerKind = "nats" | "postgres" | "redis" | "ses";

/** The field of ProvidedServers that carries each kind's URL. */
const URL_FIELDS = { nats: "natsUrl", postgres: "databaseUrl", redis: "redisUrl", ses: "sesEndpoint" } as const;

export type ServerUrls<K extends ServerKind> = { [P in K as (typeof URL_FIELDS)[P]]: string };

/** A URL for each needed server (natsUrl, databaseUrl, redisUrl, sesEndpoint), and a way to stop what was started. */
export type ProvidedServers<K extends ServerKind = ServerKind> = ServerUrls<K> & {
  /** How each server was found, for a log line. */
  sources: Record<K, string>;
  /** Stops every server this call started and removes their files; safe to call twice. */
  stop(): Promise<void>;
};

export interface ProvideOptions {
  /** Do not use servers on the default local ports (tests that want their own server). */
  skipDefaultPorts?: boolean;
  /** Do not try testcontainers. */
  skipContainers?: boolean;
  /** How long a started binary may take to accept connections; default 15 s. */
  startTimeoutMs?: number;
  /** Aborting stops what was started and rejects with the abort reason. */
  signal?: AbortSignal;
}

/** No way to provide one or more servers; `lines` has one line per server saying how to provide it. */
export class MissingServersError extends Error {
  override name = "MissingServersError";
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
  }
}

const LOCALHOST = "127.0.0.1";

/** A server found or started for one kind. */
interface Provided {
  url: string;
  source: string;
  /** Present when this call started it. */
  stop?: () => Promise<void>;
}

interface ContainerSpec {
  image: string;
  port: number;
  command?: string[];
  environment?: Record<string, string>;
  /** Log line that says it accepts connections, and how many times it appears. */
  readyLog: RegExp;
  readyLogTimes?: number;
}

interface LocalContext {
  env: Env;
  log: (line: string) => void;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

/** How one kind of server is found, started and explained. */
interface Recipe {
  label: string;
  envVar: string;
  defaultPort: number;
  urlFor(host: string, port: number): string;
  /** Starts a local binary, or throws Unavailable saying why it cannot. */
  startLocal(context: LocalContext): Promise<Provided>;
  container?: ContainerSpec;
  /** Every way to provide it, for the missing-server line. */
  hint: string;
}

/** A step that cannot serve, with the reason shown in the missing-server line. */
class Unavailable extends Error {
  override name = "Unavailable";
}

const RECIPES: Record<ServerKind, Recipe> = {
  nats: {
    label: "NATS",
    envVar: "NATS_URL",
    defaultPort: 4222,
    urlFor: (host, port) => `nats://${host}:${port}`,
    startLocal: async (context) => {
      const binary = await requireOnPath("nats-server", context.env);
      const port = await freePort();
      return startBinary(context, "nats", async (dir) => ({
        name: "nats-server",
        command: binary,
        args: ["-a", LOCALHOST, "-p", String(port), "-js", "-sd", dir],
        port,
        url: `nats://${LOCALHOST}:${port}`,
      }));
    },
    container: { image: "nats:2.10-alpine", port: 4222, command: ["-js"], readyLog: /Server is ready/ },
    hint: "Set NATS_URL, run nats-server on 127.0.0.1:4222, put nats-server on PATH (apt-get install nats-server), or install Docker for testcontainers.",
  },
  postgres: {
    label: "Postgres",
    envVar: "DATABASE_URL",
    defaultPort: 5432,
    urlFor: (host, port) => `postgres://postgres@${host}:${port}/taskboard`,
    startLocal: startLocalPostgres,
    container: {
      image: "postgres:16-alpine",
      port: 5432,
      environment: { POSTGRES_HOST_AUTH_METHOD: "trust", POSTGRES_DB: "taskboard" },
      // The image's entrypoint starts the server twice: once to initialise, then for real.
      readyLog: /database system is ready to accept connections/,
      readyLogTimes: 2,
    },
    hint: "Set DATABASE_URL, run Postgres on 127.0.0.1:5432 (user postgres, trust auth), put postgres and initdb on PATH (apt-get install postgresql, then add /usr/lib/postgresql/NN/bin to PATH), or install Docker for testcontainers.",
  },
  redis: {
    label: "Redis",
    envVar: "REDIS_URL",
    defaultPort: 6379,
    urlFor: (host, port) => `redis://${host}:${port}`,
    startLocal: async (context) => {
      const binary = await requireOnPath("redis-server", context.env);
      const port = await freePort();
      return startBinary(context, "redis", async (dir) => ({
        name: "redis-server",
        command: binary,
        args: ["--bind", LOCALHOST, "--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir],
        port,
        url: `redis://${LOCALHOST}:${port}`,
      }));
    },
    container: { image: "redis:7-alpine", port: 6379, readyLog: /Ready to accept connections/ },
    hint: "Set REDIS_URL, run redis-server on 127.0.0.1:6379, put redis-server on PATH (apt-get install redis-server), or install Docker for testcontainers.",
  },
  ses: {
    label: "SES stand-in",
    envVar: "SES_ENDPOINT",
    defaultPort: 8005,
    urlFor: (host, port) => `http://${host}:${port}`,
    startLocal: async (context) => {
      let cli: string;
      try {
        cli = createRequire(import.meta.url).resolve("aws-ses-v2-local/dist/cli.js");
      } catch (error) {
        throw new Unavailable("aws-ses-v2-local is not installed", { cause: error });
      }
      const port = (await canListen(8005, LOCALHOST)) ? 8005 : await freePort();
      return startBinary(context, "ses", async () => ({
        name: "aws-ses-v2-local",
        command: process.execPath,
        args: [cli, "--host", LOCALHOST, "--port", String(port)],
        port,
        url: `http://${LOCALHOST}:${port}`,
      }));
    },
    hint: "Set SES_ENDPOINT, run aws-ses-v2-local on 127.0.0.1:8005, or run npm install (aws-ses-v2-local is a devDependency).",
  },
};

/**
 * Provides every server in `need`, trying for each: its URL in `env`, the
 * default local port, a binary on PATH (PATH from `env`), testcontainers.
 * Throws MissingServersError listing every server it could not provide, after
 * stopping what it started.
 */
export async function provideServers<K extends ServerKind>(
  env: Env,
  need: readonly K[],
  log: (line: string) => void,
  options: ProvideOptions = {},
): Promise<ProvidedServers<K>> {
  const kinds = [...new Set(need)];
  let docker: Promise<boolean> | undefined;
  const dockerAnswers = () => (docker ??= dockerEngineAnswers(env));
  const results = await Promise.allSettled(kinds.map((kind) => provideOne(kind, env, log, options, dockerAnswers)));

  const started = results.flatMap((result) =>
    result.status === "fulfilled" && "stop" in result.value && result.value.stop ? [result.value.stop] : [],
  );
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopAll(started));

  const fail = async (error: unknown): Promise<never> => {
    try {
      await stop();
    } catch (stopError) {
      throw new AggregateError([error, stopError], `${describe(error)} (and a started server did not stop cleanly)`);
    }
    throw error;
  };
  const missing: string[] = [];
  for (const result of results) {
    if (result.status === "rejected") return fail(result.reason);
    if ("missing" in result.value) missing.push(result.value.missing);
  }
  if (options.signal?.aborted) return fail(options.signal.reason);
  if (missing.length > 0) return fail(new MissingServersError(missing));

  const urls: Record<string, string> = {};
  const sources = {} as Record<K, string>;
  kinds.forEach((kind, i) => {
    const result = results[i];
    if (result?.status !== "fulfilled" || !("url" in result.value)) return;
    urls[URL_FIELDS[kind]] = result.value.url;
    sources[kind] = result.value.source;
  });
  return { ...(urls as ServerUrls<K>), sources, stop };
}

async function provideOne(
  kind: ServerKind,
  env: Env,
  log: (line: string) => void,
  options: ProvideOptions,
  dockerAnswers: () => Promise<boolean>,
): Promise<Provided | { missing: string }> {
  const recipe = RECIPES[kind];
  const found = (provided: Provided) => {
    log(`${kind}: ${provided.source} (${redactUrl(provided.url)})`);
    return provided;
  };

  const fromEnv = env[recipe.envVar];
  if (fromEnv) {
    const endpoints = endpointsOf(fromEnv, recipe.defaultPort);
    if (endpoints.length === 0) return found({ url: fromEnv, source: `${recipe.envVar}, not checked (no host:port)` });
    const problems = await Promise.all(endpoints.map(({ host, port }) => probe(host, port, 2_000)));
    if (problems.some((problem) => problem === undefined)) return found({ url: fromEnv, source: recipe.envVar });
    return {
      missing: `${recipe.label}: ${recipe.envVar}=${redactUrl(fromEnv)} is not reachable (${problems.join("; ")}). Start that server or unset ${recipe.envVar}.`,
    };
  }

  const reasons: string[] = [];
  if (!options.skipDefaultPorts) {
    if ((await probe(LOCALHOST, recipe.defaultPort, 1_000)) === undefined) {
      return found({ url: recipe.urlFor(LOCALHOST, recipe.defaultPort), source: `server on ${LOCALHOST}:${recipe.defaultPort}` });
    }
    reasons.push(`nothing on ${LOCALHOST}:${recipe.defaultPort}`);
  }

  if (options.signal?.aborted) return { missing: `${recipe.label}: not started (aborted)` };
  try {
    return found(
      await recipe.startLocal({ env, log, timeoutMs: options.startTimeoutMs ?? 15_000, signal: options.signal }),
    );
  } catch (error) {
    reasons.push(describe(error));
  }

  if (recipe.container && !options.skipContainers && !options.signal?.aborted) {
    if (await dockerAnswers()) {
      try {
        return found(await startContainer(kind, recipe, recipe.container, log));
      } catch (error) {
        reasons.push(`container ${recipe.container.image} did not start: ${describe(error)}`);
      }
    } else {
      reasons.push("no Docker engine answers");
    }
  }
  return { missing: `${recipe.label}: not found (${reasons.join("; ")}). ${recipe.hint}` };
}

async function stopAll(stops: (() => Promise<void>)[]): Promise<void> {
  const results = await Promise.allSettled(stops.map((stop) => stop()));
  const errors = results.flatMap((result) => (result.status === "rejected" ? [result.reason] : []));
  if (errors.length > 0) throw new AggregateError(errors, "some servers did not stop cleanly");
}

// Local binaries

interface BinaryLaunch {
  /** What it is, for log lines and errors. */
  name: string;
  command: string;
  args: string[];
  port: number;
  url: string;
  /** Run as this user (Postgres when we are root). */
  user?: SystemUser;
  /** An output line that must appear before it is ready, besides accepting connections. */
  readyLine?: RegExp;
  /** Postgres needs SIGINT (fast shutdown); SIGTERM waits for every client to leave. */
  stopSignal?: NodeJS.Signals;
}

/** Starts a server binary in a fresh temporary directory and waits until it accepts connections. */
async function startBinary(
  context: LocalContext,
  kind: ServerKind,
  prepare: (dir: string) => Promise<BinaryLaunch>,
): Promise<Provided> {
  const dir = await mkdtemp(join(tmpdir(), `taskboard-${kind}-`));
  let child: RunningChild | undefined;
  try {
    const launch = await prepare(dir);
    context.log(`${kind}: starting ${launch.name} (${launch.command}) on ${LOCALHOST}:${launch.port}`);
    let sawReadyLine = launch.readyLine === undefined;
    child = spawnChild(launch.command, launch.args, {
      cwd: dir,
      env: minimalEnv(context.env),
      ...(launch.stopSignal ? { parentDeathSignal: launch.stopSignal } : {}),
      ...(launch.user ? { uid: launch.user.uid, gid: launch.user.gid } : {}),
      onLine: (line) => {
        if (launch.readyLine?.test(line)) sawReadyLine = true;
      },
    });
    const running = child;
    await waitUntil(
      async () => sawReadyLine && (await probe(LOCALHOST, launch.port, 500)) === undefined,
      { child: running, timeoutMs: context.timeoutMs, signal: context.signal, what: `${launch.name} to accept connections on ${LOCALHOST}:${launch.port}` },
    );
    let stopping: Promise<void> | undefined;
    return {
      url: launch.url,
      source: `started ${launch.name} in ${dir}`,
      stop: () =>
        (stopping ??= (async () => {
          await running.stop(launch.stopSignal ?? "SIGTERM", 5_000);
          await rm(dir, { recursive: true, force: true });
        })()),
    };
  } catch (error) {
    await child?.stop("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startLocalPostgres(context: LocalContext): Promise<Provided> {
  const linked = await requireOnPath("postgres", context.env);
  // Often a symlink into /usr/lib/postgresql/NN/bin, where initdb of the same version lives.
  const binDir = dirname(await realpath(linked));
  const initdb = join(binDir, "initdb");
  if (!(await isExecutable(initdb))) throw new Unavailable(`initdb not found beside ${linked} (in ${binDir})`);
  let user: SystemUser | undefined;
  if (process.getuid?.() === 0) {
    user = await systemUser("postgres");
    if (!user) throw new Unavailable("postgres refuses to run as root and there is no postgres system user to run it as");
  }
  const port = await freePort();
  return startBinary(context, "postgres", async (dir) => {
    const data = join(dir, "data");
    if (user) await chown(dir, user.uid, user.gid);
    context.log(`postgres: initdb ${data}`);
    const init = spawnChild(initdb, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], {
      cwd: dir,
      env: minimalEnv(context.env),
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    const timer = setTimeout(() => void init.stop("SIGKILL"), 60_000);
    const code = await init.exited.finally(() => clearTimeout(timer));
    if (code !== 0) throw new Error(`initdb exited with code ${code}: ${lastOutput(init)}`);
    return {
      name: "postgres",
      command: join(binDir, "postgres"),
      // Throwaway data: no fsync.
      args: ["-D", data, "-p", String(port), "-k", dir, "-c", `listen_addresses=${LOCALHOST}`, "-c", "fsync=off"],
      port,
      url: `postgres://postgres@${LOCALHOST}:${port}/taskboard`,
      ...(user ? { user } : {}),
      readyLine: /database system is ready to accept connections/,
      stopSignal: "SIGINT",
    };
  });
}

interface SystemUser {
  uid: number;
  gid: number;
}

/** A local account from /etc/passwd, or undefined. */
async function systemUser(name: string): Promise<SystemUser | undefined> {
  const passwd = await readFile("/etc/passwd", "utf8");
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** The absolute path of `name` on the PATH of `env`, or Unavailable. */
async function requireOnPath(name: string, env: Env): Promise<string> {
  for (const dir of (env["PATH"] ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  throw new Unavailable(`${name} not on PATH`);
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false; // missing or not executable: the caller looks elsewhere
  }
}

/** What a server child inherits: where to find programs, and home. */
function minimalEnv(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["PATH", "HOME"]) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function lastOutput(child: RunningChild): string {
  const lines = child.lastLines().slice(-3);
  return lines.length > 0 ? lines.join(" | ") : "no output";
}

// Containers

/** True when a Docker engine answers `docker info` within a few seconds. */
async function dockerEngineAnswers(env: Env): Promise<boolean> {
  let docker: string;
  try {
    docker = await requireOnPath("docker", env);
  } catch {
    return false; // no docker CLI: testcontainers is not an option here
  }
  const childEnv = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return new Promise((resolve) => {
    execFile(docker, ["info"], { env: childEnv, timeout: 5_000 }, (error) => resolve(error === null));
  });
}

async function startContainer(kind: ServerKind, recipe: Recipe, spec: ContainerSpec, log: (line: string) => void): Promise<Provided> {
  log(`${kind}: starting container ${spec.image}`);
  // Loaded only here: testcontainers is heavy and only useful with Docker.
  const { GenericContainer, Wait } = await import("testcontainers");
  let container = new GenericContainer(spec.image)
    .withExposedPorts(spec.port)
    .withWaitStrategy(Wait.forLogMessage(spec.readyLog, spec.readyLogTimes ?? 1))
    .withStartupTimeout(120_000);
  if (spec.command) container = container.withCommand(spec.command);
  if (spec.environment) container = container.withEnvironment(spec.environment);
  const started = await container.start();
  let stopping: Promise<void> | undefined;
  return {
    url: recipe.urlFor(started.getHost(), started.getMappedPort(spec.port)),
    source: `container ${spec.image}`,
    stop: () => (stopping ??= started.stop().then(() => undefined)),
  };
}

// Network

/** Undefined when host:port accepts a TCP connection, else why not. */
function probe(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`${host}:${port}: no answer within ${timeoutMs} ms`));
    socket.once("connect", () => done(undefined));
    socket.once("error", (error: NodeJS.ErrnoException) => done(`${host}:${port}: ${error.code ?? error.message}`));
  });
}

/** Polls `check` until it is true; fails with what it waited for when the child exits or time runs out. */
async function waitUntil(
  check: () => Promise<boolean>,
  wait: { child: RunningChild; timeoutMs: number; signal: AbortSignal | undefined; what: string },
): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    wait.signal?.throwIfAborted();
    if (await check()) return;
    if (wait.child.hasExited()) {
      const code = await wait.child.exited;
      throw new Error(`waiting for ${wait.what}: it exited with code ${code}: ${lastOutput(wait.child)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`waited ${wait.timeoutMs} ms for ${wait.what}: ${lastOutput(wait.child)}`);
    }
    await sleep(100);
  }
}

/**
 * The host:port pairs of a server URL, for a reachability check: handles
 * comma-separated lists (NATS, multi-host Postgres), "host:port" without a
 * scheme, [IPv6] and user:password@. Empty for a Unix-socket URL.
 */
function endpointsOf(url: string, defaultPort: number): { host: string; port: number }[] {
  const schemePort: Record<string, number> = { http: 80, https: 443 };
  let fallbackPort = defaultPort;
  const endpoints: { host: string; port: number }[] = [];
  for (const piece of url.split(",")) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(piece);
    if (scheme?.[1]) fallbackPort = schemePort[scheme[1].toLowerCase()] ?? defaultPort;
    const authority = piece.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/^[^@/?#]*@/, "").split(/[/?#]/)[0] ?? "";
    const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(authority);
    const host = match?.[1] ?? match?.[2];
    if (host) endpoints.push({ host, port: match?.[3] ? Number(match[3]) : fallbackPort });
  }
  return endpoints;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error && !(error instanceof Unavailable) ? `${error.message}: ${describe(error.cause)}` : error.message;
}

// Databases

/**
 * Creates the database named in `databaseUrl` when it does not exist, through
 * the same server's `postgres` maintenance database. Resolves true when it created it.
 */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!name) return false; // no database named: Postgres uses the user's, which we do not create
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`database name ${JSON.stringify(name)} in the URL is not a plain identifier (letters, digits, _)`);
  }
  url.pathname = "/postgres";
  const sql = postgres(url.toString(), { max: 1, connect_timeout: 10, onnotice: () => undefined });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${name}`;
    if (rows.length > 0) return false;
    await sql.unsafe(`create database "${name}"`);
    return true;
  } catch (error) {
    if (pgErrorCode(error) === "42P04") return false; // created concurrently by another caller
    throw new Error(`cannot ensure database ${name} on ${url.host}`, { cause: error });
  } finally {
    await sql.end({ timeout: 2 });
  }
}
