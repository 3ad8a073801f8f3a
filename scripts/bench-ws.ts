import { fork, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, type JetStreamClient, type NatsConnection } from "nats";
import postgres from "postgres";
import { startProcess, spawnChild, type MeshProcess } from "../internal/devenv/processes.js";
import { provideServers } from "../internal/devenv/servers.js";
import { startOrder } from "../internal/devenv/topology.js";
import type { ClientKind, Command, Target } from "./bench/clients.js";
import { cpuMs, LatencyHistogram, nowMs, rssBytes } from "./bench/measure.js";

/**
 * `npm run bench:ws`: N WebSocket clients across R rooms, events published
 * through NATS (or, with --via rest, through POST /broadcast), measured on the
 * Taskboard gateway and, under the same load, on two references: a minimal
 * uWebSockets.js relay (the ceiling) and a Socket.IO relay (the common
 * alternative). Prints deliveries/s, loss, latency, server CPU per delivered
 * message and RSS per connection, and appends JSON lines to --out.
 */

const { values: args } = parseArgs({
  options: {
    clients: { type: "string", default: "1000" },
    rooms: { type: "string", default: "20" },
    replicas: { type: "string", default: "1" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    payload: { type: "string", default: "200" },
    via: { type: "string", default: "nats" },
    targets: { type: "string", default: "gateway,uws,socketio" },
    idle: { type: "string", default: "0" },
    storm: { type: "string", default: "0" },
    workers: { type: "string", default: "2" },
    out: { type: "string", default: "bench-results.jsonl" },
    smoke: { type: "boolean", default: false },
    /** Only the idle and connect-storm measurements. */
    "skip-fanout": { type: "boolean", default: false },
    /** Write CPU profiles of the gateway and the relays (node --cpu-prof) into this folder. */
    profile: { type: "string" },
  },
});
/** A whole number of at least `min` from a flag, or the bench stops naming the flag. */
function count(flag: keyof typeof args, min: number): number {
  const value = Number(args[flag]);
  if (!Number.isInteger(value) || value < min) usage(`--${flag} must be a whole number of at least ${min}, got ${String(args[flag])}`);
  return value;
}
function usage(problem: string): never {
  process.stderr.write(`bench-ws: ${problem}\n`);
  process.exit(2);
}
const TARGETS = ["gateway", "uws", "socketio"];
if (args.via !== "nats" && args.via !== "rest") usage(`--via must be nats or rest, got ${args.via}`);
for (const target of args.targets!.split(",")) if (!TARGETS.includes(target)) usage(`--targets takes a list of ${TARGETS.join(", ")}; got ${target}`);
const smoke = args.smoke;
const opts = {
  clients: smoke ? 40 : count("clients", 1),
  rooms: smoke ? 4 : count("rooms", 1),
  replicas: count("replicas", 1),
  rate: smoke ? 100 : count("rate", 1),
  seconds: smoke ? 2 : count("seconds", 1),
  payload: count("payload", 0),
  via: args.via,
  targets: (smoke ? TARGETS.join(",") : args.targets!).split(","),
  idle: smoke ? 200 : count("idle", 0),
  storm: smoke ? 200 : count("storm", 0),
  workers: count("workers", 1),
  out: args.out!,
  profile: args.profile,
  fanout: !args["skip-fanout"],
};
/** Node arguments of the servers under test: --cpu-prof when asked. */
const nodeArgs = opts.profile ? ["--cpu-prof", `--cpu-prof-dir=${opts.profile}`] : [];
const root = fileURLToPath(new URL("../../", import.meta.url));
const runId = `b${randomBytes(4).toString("hex")}`;
const log = (line: string) => process.stdout.write(`${line}\n`);
/** One client process can hold fewer sockets than the per-process descriptor limit. */
const PER_WORKER_LIMIT = 4_500;

interface Room {
  workspaceId: string;
  token: string;
}

interface Result {
  target: string;
  [key: string]: unknown;
}

const results: Result[] = [];

/** What must be stopped if the bench is interrupted (Ctrl-C): child processes and servers. */
const interruptCleanups = new Set<() => Promise<unknown>>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the bench`);
    void Promise.allSettled([...interruptCleanups].map((cleanup) => cleanup())).then(() => process.exit(130));
  });
}

function record(result: Result): void {
  results.push(result);
  appendFileSync(opts.out, `${JSON.stringify({ run: runId, at: new Date().toISOString(), options: opts, ...result })}\n`);
}

// --- processes -------------------------------------------------------------

class Workers {
  readonly children: ChildProcess[] = [];
  private constructor() {}

  static async start(count: number): Promise<Workers> {
    const workers = new Workers();
    for (let i = 0; i < count; i++) {
      const child = fork(`${root}dist/scripts/bench/clients.js`, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      interruptCleanups.add(async () => child.kill());
      await new Promise<void>((resolve) => child.once("message", () => resolve()));
      workers.children.push(child);
    }
    return workers;
  }

  ask<T>(child: ChildProcess, command: Command, event: string): Promise<T> {
    return new Promise((resolve) => {
      const onMessage = (message: { event: string }) => {
        if (message.event !== event) return;
        child.off("message", onMessage);
        resolve(message as T);
      };
      child.on("message", onMessage);
      child.send(command);
    });
  }

  /** Spreads targets over the workers and opens them all at once. */
  async open(kind: ClientKind, targets: Target[], waitForConnected = true) {
    const shares: Target[][] = this.children.map(() => []);
    targets.forEach((t, i) => shares[i % shares.length]!.push(t));
    const replies = await Promise.all(
      this.children.map((child, i) =>
        this.ask<{ ok: number; failed: number; ms: number; errors: [string, number][] }>(
          child,
          { cmd: "open", kind, targets: shares[i]!, runId, waitForConnected },
          "opened",
        ),
      ),
    );
    return {
      ok: replies.reduce((n, r) => n + r.ok, 0),
      failed: replies.reduce((n, r) => n + r.failed, 0),
      ms: Math.max(...replies.map((r) => r.ms)),
      errors: replies.flatMap((r) => r.errors),
    };
  }

  async measure(): Promise<void> {
    await Promise.all(this.children.map((child) => this.ask(child, { cmd: "measure" }, "measuring")));
  }

  async received(): Promise<number> {
    const replies = await Promise.all(this.children.map((child) => this.ask<{ received: number }>(child, { cmd: "progress" }, "progress")));
    return replies.reduce((n, r) => n + r.received, 0);
  }

  async report() {
    const replies = await Promise.all(
      this.children.map((child) =>
        this.ask<{ perRoom: Record<string, { connections: number; received: number }>; closed: number; histogram: [number, number][]; max: number }>(
          child,
          { cmd: "report" },
          "report",
        ),
      ),
    );
    const histogram = new LatencyHistogram();
    const perRoom = new Map<string, { connections: number; received: number }>();
    let closed = 0;
    for (const reply of replies) {
      histogram.merge(reply.histogram, reply.max);
      closed += reply.closed;
      for (const [room, counts] of Object.entries(reply.perRoom)) {
        const total = perRoom.get(room) ?? { connections: 0, received: 0 };
        total.connections += counts.connections;
        total.received += counts.received;
        perRoom.set(room, total);
      }
    }
    return { histogram, perRoom, closed };
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.send({ cmd: "close" } satisfies Command);
    await Promise.all(this.children.map((child) => new Promise((resolve) => child.once("exit", resolve))));
  }
}

async function startRelay(script: string, env: Record<string, string>): Promise<{ pid: number; port: number; stop(): Promise<unknown> }> {
  let onPort: (port: number) => void = () => undefined;
  const ready = new Promise<number>((resolve) => (onPort = resolve));
  const child = spawnChild(process.execPath, [...nodeArgs, `${root}dist/scripts/bench/${script}`], {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", ...env },
    onLine: (line) => {
      if (line.includes('"ready"')) onPort((JSON.parse(line) as { http_port: number }).http_port);
      else if (line.trim()) log(`  [${script}] ${line}`);
    },
  });
  interruptCleanups.add(() => child.stop("SIGTERM", 5_000));
  const port = await Promise.race([
    ready,
    child.exited.then((code) => Promise.reject(new Error(`${script} exited with ${code}`))),
  ]);
  return { pid: child.pid!, port, stop: () => child.stop("SIGTERM", 5_000) };
}

// --- the system under test ----------------------------------------------------

async function api<T = any>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const response = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function createRooms(base: string, count: number): Promise<Room[]> {
  const rooms: Room[] = [];
  for (let i = 0; i < count; i++) {
    const email = `${runId}.${i}@bench.local`;
    const password = "Bench-passw0rd";
    await api(base, "POST", "/auth/register", { name: `Bench ${i}`, email, password });
    const { access_token: token } = await api<{ access_token: string }>(base, "POST", "/auth/login", { email, password });
    const { id } = await api<{ id: string }>(base, "POST", "/workspaces", { name: `Bench room ${i}` }, token);
    rooms.push({ workspaceId: id, token });
  }
  return rooms;
}

/** Publishes `rate` events a second for `seconds`, round-robin over the rooms; resolves with the count per room. */
async function publishLoad(js: JetStreamClient, root: string, rooms: Room[], gatewayUrl: string): Promise<Map<string, number>> {
  const perRoom = new Map(rooms.map((r) => [r.workspaceId, 0]));
  const total = opts.rate * opts.seconds;
  const pad = "x".repeat(opts.payload);
  const encoder = new TextEncoder();
  const pending: Promise<unknown>[] = [];
  const started = performance.now();
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / opts.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const room = rooms[n % rooms.length]!;
    perRoom.set(room.workspaceId, perRoom.get(room.workspaceId)! + 1);
    if (opts.via === "rest") {
      pending.push(api(gatewayUrl, "POST", `/workspaces/${room.workspaceId}/broadcast`, { content: `${runId} n=${n} t=${nowMs()}` }, room.token));
    } else {
      const event = {
        id: randomUUID(),
        type: "custom.message",
        workspace_id: room.workspaceId,
        aggregate_id: room.workspaceId,
        data: { bench: runId, n, t: nowMs(), pad },
        timestamp: Date.now(),
      };
      pending.push(js.publish(`${root}.realtime.${room.workspaceId}.custom`, encoder.encode(JSON.stringify(event)), { msgID: event.id }));
    }
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return perRoom;
}

/** Waits until deliveries stop growing (or every expected one arrived). */
async function settle(workers: Workers, expected: number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const received = await workers.received();
    if (received >= expected || received === last) return;
    last = received;
  }
}

async function fanOut(target: string, kind: ClientKind, urls: string[], serverPids: number[], rooms: Room[], js: JetStreamClient, subjectRoot: string, gatewayUrl: string) {
  const workers = await Workers.start(Math.max(opts.workers, Math.ceil(opts.clients / PER_WORKER_LIMIT)));
  try {
    const rssBefore = serverPids.reduce((n, pid) => n + rssBytes(pid), 0);
    const targets: Target[] = Array.from({ length: opts.clients }, (_, i) => {
      const room = rooms[i % rooms.length]!;
      const base = urls[i % urls.length]!;
      const url = kind === "socketio" ? base : target === "gateway" ? `${base.replace("http", "ws")}/ws/${room.workspaceId}?token=${room.token}` : `${base.replace("http", "ws")}/ws/${room.workspaceId}`;
      return { url, room: room.workspaceId };
    });
    log(`  ${target}: opening ${targets.length} connections`);
    // Only the gateway says `connected`; the relays are ready once the socket opens.
    const opened = await workers.open(kind, targets, target === "gateway");
    log(`  ${target}: ${opened.ok} open in ${Math.round(opened.ms)} ms; publishing`);
    if (opened.failed > 0) log(`  ${target}: ${opened.failed} connections failed: ${JSON.stringify(opened.errors.slice(0, 3))}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssAfter = serverPids.reduce((n, pid) => n + rssBytes(pid), 0);

    await workers.measure();
    const cpuBefore = serverPids.reduce((n, pid) => n + cpuMs(pid), 0);
    const started = nowMs();
    const published = await publishLoad(js, subjectRoot, rooms, gatewayUrl);
    const connectionsPerRoom = new Map<string, number>();
    targets.forEach((t) => connectionsPerRoom.set(t.room, (connectionsPerRoom.get(t.room) ?? 0) + 1));
    const expected = [...published].reduce((n, [room, count]) => n + count * (connectionsPerRoom.get(room) ?? 0), 0);
    await settle(workers, expected);
    const elapsedS = (nowMs() - started) / 1000;
    const cpuUsed = serverPids.reduce((n, pid) => n + cpuMs(pid), 0) - cpuBefore;
    const { histogram, perRoom, closed } = await workers.report();
    const received = [...perRoom.values()].reduce((n, r) => n + r.received, 0);
    const result = {
      target,
      via: opts.via,
      clients: opened.ok,
      rooms: rooms.length,
      replicas: urls.length,
      events_published: opts.rate * opts.seconds,
      deliveries_expected: expected,
      deliveries_received: received,
      loss: expected - received,
      closed_during_run: closed,
      deliveries_per_s: Math.round(received / Math.min(elapsedS, opts.seconds + 0.0001)),
      latency_ms: {
        p50: round(histogram.percentile(50)),
        p99: round(histogram.percentile(99)),
        max: round(histogram.max),
      },
      server_cpu_us_per_delivery: round((cpuUsed * 1000) / Math.max(1, received), 2),
      server_rss_kib_per_connection: round((rssAfter - rssBefore) / 1024 / Math.max(1, opened.ok), 1),
    };
    record(result);
    return result;
  } finally {
    await workers.stop();
  }
}

async function idleConnections(target: string, kind: ClientKind, url: string, pid: number, rooms: Room[], count: number) {
  const workers = await Workers.start(Math.max(1, Math.ceil(count / PER_WORKER_LIMIT)));
  try {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = rssBytes(pid);
    const targets: Target[] = Array.from({ length: count }, (_, i) => {
      const room = rooms[i % rooms.length]!;
      const ws = url.replace("http", "ws");
      return {
        url: kind === "socketio" ? url : target === "gateway" ? `${ws}/ws/${room.workspaceId}?token=${room.token}` : `${ws}/ws/${room.workspaceId}`,
        room: room.workspaceId,
      };
    });
    const opened = await workers.open(kind, targets, target === "gateway");
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const after = rssBytes(pid);
    const result = {
      target,
      test: "idle",
      connections: opened.ok,
      failed: opened.failed,
      baseline_rss_mib: round(before / 1048576, 1),
      rss_mib: round(after / 1048576, 1),
      rss_kib_per_connection: round((after - before) / 1024 / Math.max(1, opened.ok), 2),
    };
    record(result);
    return result;
  } finally {
    await workers.stop();
  }
}

async function connectStorm(urls: string[], rooms: Room[], count: number) {
  const workers = await Workers.start(Math.max(opts.workers, Math.ceil(count / PER_WORKER_LIMIT)));
  try {
    const targets: Target[] = Array.from({ length: count }, (_, i) => {
      const room = rooms[i % rooms.length]!;
      return { url: `${urls[i % urls.length]!.replace("http", "ws")}/ws/${room.workspaceId}?token=${room.token}`, room: room.workspaceId };
    });
    const opened = await workers.open("ws", targets, true);
    const result = { target: "gateway", test: "connect-storm", joins: count, connected: opened.ok, refused: opened.failed, seconds: round(opened.ms / 1000, 2), errors: opened.errors.slice(0, 3) };
    record(result);
    return result;
  } finally {
    await workers.stop();
  }
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

// --- main ---------------------------------------------------------------------

async function main(): Promise<void> {
  const servers = await provideServers(process.env, ["nats", "postgres", "redis"], (line) => log(`[servers] ${line}`));
  const database = `tb_${runId}`;
  const adminUrl = new URL(servers.databaseUrl);
  adminUrl.pathname = "/postgres";
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${database}`);
  const databaseUrl = new URL(servers.databaseUrl);
  databaseUrl.pathname = `/${database}`;
  const env: Record<string, string> = {
    NATS_URL: servers.natsUrl,
    REDIS_URL: servers.redisUrl,
    DATABASE_URL: databaseUrl.toString(),
    NATS_SUBJECT_ROOT: runId,
    NATS_STREAM: runId.toUpperCase(),
    REDIS_PREFIX: `${runId}:`,
    INTERNAL_TOKEN: randomBytes(24).toString("base64url"),
    LOG_LEVEL: "info",
    GRPC_PORT: "0",
    ADMIN_PORT: "0",
    GATEWAY_PORT: "0",
    RATE_LIMIT_PER_IP: "1000000",
    RATE_LIMIT_PER_EMAIL: "1000000",
    RATE_LIMIT_API_PER_USER: "100000000",
    RATE_LIMIT_WS_MESSAGES_PER_USER: "100000000",
    // The load is the point: let the bench clients send as they like, and buffer generously.
    WS_MAX_BACKPRESSURE_BYTES: String(8 * 1024 * 1024),
    // Each bench room is one user's thousands of connections.
    WS_MAX_CONNECTIONS_PER_USER: "1000000",
  };
  const processes: MeshProcess[] = [];
  interruptCleanups.add(async () => {
    for (const p of [...processes].reverse()) await p.stop();
    await admin.unsafe(`drop database if exists ${database} with (force)`).catch(() => undefined);
    await servers.stop();
  });
  const output = (name: string) => (line: string) => {
    if (/"level":"(error|fatal)"/.test(line)) log(`  [${name}] ${line}`);
  };
  let nc: NatsConnection | undefined;
  try {
    // The processes the fan-out needs (logins and rooms): auth and workspace, as the topology declares them.
    for (const spec of startOrder().flat().filter((p) => p.name === "auth" || p.name === "workspace")) {
      const started = await startProcess(spec.name, { cwd: root, env, output: output(spec.name) });
      processes.push(started);
      env[spec.addressVar!] = `127.0.0.1:${started.ports["grpc"]}`;
    }
    const gateways: MeshProcess[] = [];
    for (let i = 0; i < opts.replicas; i++) {
      const gateway = await startProcess("gateway", { cwd: root, env, output: output("gateway"), nodeArgs });
      gateways.push(gateway);
      processes.push(gateway);
    }
    const gatewayUrls = gateways.map((g) => `http://127.0.0.1:${g.ports["http"]}`);
    const rooms = await createRooms(gatewayUrls[0]!, opts.rooms);
    nc = await connect({ servers: servers.natsUrl });
    const js = nc.jetstream();
    const relayEnv = { NATS_URL: servers.natsUrl, SUBJECT: `rt.${runId}.*.*.*` };
    log(`bench ${runId}: ${opts.clients} clients, ${opts.rooms} rooms, ${opts.rate} events/s for ${opts.seconds} s via ${opts.via}, payload ${opts.payload} B`);

    for (const target of opts.fanout ? opts.targets : []) {
      if (target === "gateway") {
        await fanOut("gateway", "ws", gatewayUrls, gateways.map((g) => g.pid), rooms, js, runId, gatewayUrls[0]!);
      } else {
        const relay = await startRelay(target === "uws" ? "relay-uws.js" : "relay-socketio.js", relayEnv);
        try {
          await fanOut(target, target === "uws" ? "ws" : "socketio", [`http://127.0.0.1:${relay.port}`], [relay.pid], rooms, js, runId, gatewayUrls[0]!);
        } finally {
          await relay.stop();
        }
      }
    }
    if (opts.idle > 0) {
      for (const target of opts.targets) {
        if (target === "gateway") {
          // A fresh replica, so that the baseline is not what the fan-out run left on the heap.
          const fresh = await startProcess("gateway", { cwd: root, env, output: output("gateway") });
          processes.push(fresh);
          await idleConnections("gateway", "ws", `http://127.0.0.1:${fresh.ports["http"]}`, fresh.pid, rooms, opts.idle);
          await fresh.stop();
        } else {
          const relay = await startRelay(target === "uws" ? "relay-uws.js" : "relay-socketio.js", relayEnv);
          try {
            await idleConnections(target, target === "uws" ? "ws" : "socketio", `http://127.0.0.1:${relay.port}`, relay.pid, rooms, opts.idle);
          } finally {
            await relay.stop();
          }
        }
      }
    }
    if (opts.storm > 0) await connectStorm(gatewayUrls, rooms, opts.storm);
  } finally {
    await nc?.jetstreamManager().then((jsm) => jsm.streams.delete(runId.toUpperCase())).catch(() => undefined);
    await nc?.close();
    for (const p of processes.reverse()) await p.stop();
    await admin.unsafe(`drop database if exists ${database} with (force)`);
    await admin.end();
    await servers.stop();
  }
  printSummary();
}

function printSummary(): void {
  log("");
  const fan = results.filter((r) => !("test" in r));
  if (fan.length > 0) {
    log("fan-out                       clients  deliveries/s   loss   p50 ms   p99 ms   max ms   CPU µs/delivery   RSS KiB/conn");
    for (const r of fan as any[]) {
      log(
        `${r.target.padEnd(28)} ${String(r.clients).padStart(8)} ${String(r.deliveries_per_s).padStart(13)} ${String(r.loss).padStart(6)} ${String(r.latency_ms.p50).padStart(8)} ${String(r.latency_ms.p99).padStart(8)} ${String(r.latency_ms.max).padStart(8)} ${String(r.server_cpu_us_per_delivery).padStart(17)} ${String(r.server_rss_kib_per_connection).padStart(14)}`,
      );
    }
    const gateway = fan.find((r) => r.target === "gateway") as any;
    const uws = fan.find((r) => r.target === "uws") as any;
    const sio = fan.find((r) => r.target === "socketio") as any;
    if (gateway && uws) log(`gateway CPU per delivery / minimal uWS relay: ${round(gateway.server_cpu_us_per_delivery / uws.server_cpu_us_per_delivery)}×`);
    if (gateway && sio) log(`gateway CPU per delivery / Socket.IO relay:   ${round(gateway.server_cpu_us_per_delivery / sio.server_cpu_us_per_delivery)}×`);
  }
  for (const r of results.filter((r) => "test" in r) as any[]) {
    if (r.test === "idle") log(`idle ${r.target}: ${r.connections} connections (${r.failed} failed), RSS ${r.baseline_rss_mib} → ${r.rss_mib} MiB, ${r.rss_kib_per_connection} KiB per connection`);
    else log(`connect storm: ${r.connected}/${r.joins} authenticated joins in ${r.seconds} s, ${r.refused} refused`);
  }
  log(`(JSON lines appended to ${opts.out})`);
}

await main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
