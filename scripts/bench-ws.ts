import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { appendFileSync, existsSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, headers as natsHeaders, type JetStreamClient, type NatsConnection, type PubAck } from "nats";
import postgres from "postgres";
import { TaskboardClient } from "../api/client/index.js";
import { LocalCredentials } from "../internal/devenv/credentials.js";
import { startProcess, spawnChild, type MeshProcess } from "../internal/devenv/processes.js";
import { provideServers } from "../internal/devenv/servers.js";
import { startOrder } from "../internal/devenv/topology.js";
import { Subjects } from "../internal/platform/events.js";
import type { ClientKind, Command, Target, WaveReply } from "./bench/clients.js";
import { cpuMs, cpuTimes, LatencyHistogram, nowMs, rssBytes } from "./bench/measure.js";

/**
 * `npm run bench:ws`: N WebSocket clients across R rooms, events published
 * through NATS (or, with --via rest, through POST /broadcast), measured on the
 * Taskboard gateway and, under the same load, on two references: a minimal
 * uWebSockets.js relay (the ceiling) and a Socket.IO relay (the common
 * alternative). Prints deliveries/s, loss, latency, server CPU per delivered
 * message and RSS per connection, and appends JSON lines to --out.
 * --storm-resume N: N clients of one room drop, miss --missed events and
 * resume at once with since/epoch; how long until each has every missed event
 * in order, the JetStream API requests it cost, and every fault. With
 * --storm-baseline <rev>, the same storm against a mesh built from that revision.
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
    /** Reconnect storm: this many clients of one room resume at once after missing --missed events. */
    "storm-resume": { type: "string", default: "0" },
    missed: { type: "string", default: "200" },
    /** The same storm against a mesh built from this git revision (in a temporary folder). */
    "storm-baseline": { type: "string" },
    /**
     * Tracing on in the servers under test (OTLP/HTTP to a sink of the bench's own that
     * counts and discards), and every published event carrying a sampled trace context
     * as the outbox sends it for a traced request: what tracing costs the fan-out.
     */
    tracing: { type: "boolean", default: false },
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
  stormResume: smoke ? 100 : count("storm-resume", 0),
  missed: smoke ? 50 : count("missed", 1),
  stormBaseline: smoke ? undefined : args["storm-baseline"],
  tracing: args.tracing,
};
/** Node arguments of the servers under test: --cpu-prof when asked. */
const nodeArgs = opts.profile ? ["--cpu-prof", `--cpu-prof-dir=${opts.profile}`] : [];
const root = fileURLToPath(new URL("../../", import.meta.url));
const runId = `b${randomBytes(4).toString("hex")}`;
const otlpSink = opts.tracing ? await startOtlpSink() : undefined;
const log = (line: string) => process.stdout.write(`${line}\n`);
/** One client process can hold fewer sockets than the per-process descriptor limit. */
const PER_WORKER_LIMIT = 4_500;

interface Room {
  workspaceId: string;
  /** The room's user through the SDK (setup and REST publishing). */
  client: TaskboardClient;
  /** Its access token, for the bench's raw WebSocket clients (`?token=`: one ticket per socket would be thousands of extra requests). */
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
      // With --profile the client processes are profiled too (whether they keep up is part of every figure).
      const child = fork(`${root}dist/scripts/bench/clients.js`, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: nodeArgs });
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

  /** Storm clients: opens them live (no since), spread over the workers. */
  async resumeOpen(urls: string[]) {
    const replies = await Promise.all(
      this.children.map((child, i) =>
        this.ask<{ ok: number; failed: number; ms: number; errors: [string, number][] }>(
          child,
          { cmd: "resume-open", urls: urls.filter((_, j) => j % this.children.length === i) },
          "resume-opened",
        ),
      ),
    );
    return { ok: sum(replies, (r) => r.ok), failed: sum(replies, (r) => r.failed), ms: Math.max(...replies.map((r) => r.ms)), errors: replies.flatMap((r) => r.errors) };
  }

  /** How many storm clients have reached `seq`, the lowest position, and how many were told an epoch. */
  async resumeLive(seq: number) {
    const replies = await Promise.all(this.children.map((child) => this.ask<{ live: number; minPosition: number; withEpoch: number }>(child, { cmd: "resume-live", seq }, "resume-live")));
    return { live: sum(replies, (r) => r.live), minPosition: Math.min(...replies.map((r) => r.minPosition)), withEpoch: sum(replies, (r) => r.withEpoch) };
  }

  async resumeDrop(): Promise<void> {
    await Promise.all(this.children.map((child) => this.ask(child, { cmd: "resume-drop" }, "resume-dropped")));
  }

  /** Every storm client reconnects at once with since/epoch; each worker answers when its clients are through. */
  resumeWave(expected: number[], timeoutMs: number, lingerMs: number) {
    return Promise.all(this.children.map((child) => this.ask<WaveReply>(child, { cmd: "resume-wave", expected, timeoutMs, lingerMs }, "resume-waved")));
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

async function createRooms(base: string, count: number, prefix = runId): Promise<Room[]> {
  const rooms: Room[] = [];
  for (let i = 0; i < count; i++) {
    const email = `${prefix}.${i}@bench.local`;
    const password = "Bench-passw0rd";
    const client = new TaskboardClient({ baseUrl: base });
    await client.register({ name: `Bench ${i}`, email, password });
    await client.login({ email, password });
    const { id } = await client.createWorkspace({ name: `Bench room ${i}` });
    rooms.push({ workspaceId: id, token: (await client.accessToken())!, client });
  }
  return rooms;
}

/** Publishes `rate` events a second for `seconds`, round-robin over the rooms; resolves with the count per room. */
async function publishLoad(js: JetStreamClient, root: string, rooms: Room[], gatewayUrl: string): Promise<Map<string, number>> {
  const perRoom = new Map(rooms.map((r) => [r.workspaceId, 0]));
  const total = opts.rate * opts.seconds;
  const pending: Promise<unknown>[] = [];
  const started = performance.now();
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / opts.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const room = rooms[n % rooms.length]!;
    perRoom.set(room.workspaceId, perRoom.get(room.workspaceId)! + 1);
    if (opts.via === "rest") {
      pending.push(room.client.broadcastMessage(room.workspaceId, { content: `${runId} n=${n} t=${nowMs()}` }));
    } else {
      pending.push(publishEvent(js, root, room, n));
    }
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return perRoom;
}

const encoder = new TextEncoder();
let pad: string | undefined;

/** Stores one bench event of a room in the stream, as the outbox does (the stream republishes it to the gateways). */
function publishEvent(js: JetStreamClient, root: string, room: Room, n: number): Promise<PubAck> {
  pad ??= "x".repeat(opts.payload);
  const event = {
    id: randomUUID(),
    type: "custom.message",
    workspace_id: room.workspaceId,
    aggregate_id: room.workspaceId,
    data: { bench: runId, n, t: nowMs(), pad },
    timestamp: Date.now(),
  };
  return js.publish(`${root}.realtime.${room.workspaceId}.custom`, encoder.encode(JSON.stringify(event)), {
    msgID: event.id,
    ...(opts.tracing ? { headers: traceparentHeaders() } : {}),
  });
}

/** A sampled W3C trace context of a trace of its own, as a traced request's outbox row carries it. */
function traceparentHeaders() {
  const h = natsHeaders();
  h.set("traceparent", `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`);
  return h;
}

/** An OTLP/HTTP endpoint that counts what it is sent and throws it away (--tracing). */
async function startOtlpSink(): Promise<{ url: string; requests: number; bytes: number; close(): void }> {
  const sink = { url: "", requests: 0, bytes: 0, close: () => server.close() };
  const server = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (sink.bytes += chunk.length));
    req.on("end", () => {
      sink.requests++;
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return sink;
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

// --- reconnect storm ------------------------------------------------------------

/** The sequences of the stored events of `filter` after `afterSeq`, read straight from the stream: the truth the clients are checked against. */
async function storedSeqs(nc: NatsConnection, stream: string, filter: string, afterSeq: number): Promise<number[]> {
  const consumer = await nc.jetstream().consumers.get(stream, { filterSubjects: filter, opt_start_seq: afterSeq + 1 });
  const seqs: number[] = [];
  for (;;) {
    let received = 0;
    for await (const message of await consumer.fetch({ max_messages: 1_000, expires: 2_000 })) {
      received++;
      seqs.push(message.seq);
      if (message.info.pending === 0) return seqs;
    }
    if (received === 0 && (await consumer.info()).num_pending === 0) return seqs;
  }
}

/**
 * Counts the JetStream API requests on the server from now until stop(): those
 * naming `stream` (the mesh's own; the server is shared) and, of them, consumer
 * creations (`$JS.API.CONSUMER.CREATE.<stream>[.<name>[.<filter>]]`,
 * `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<name>`).
 */
async function countJsApi(nc: NatsConnection, stream: string) {
  const counts = { server: 0, stream: 0, consumersCreated: 0 };
  const subscription = nc.subscribe("$JS.API.>", {
    callback: (_error, message) => {
      counts.server++;
      const tokens = message.subject.split(".");
      if (!tokens.includes(stream)) return;
      counts.stream++;
      if (tokens[2] === "CONSUMER" && (tokens[3] === "CREATE" || (tokens[3] === "DURABLE" && tokens[4] === "CREATE"))) counts.consumersCreated++;
    },
  });
  await nc.flush();
  return {
    counts,
    stop: async () => {
      await nc.flush();
      subscription.unsubscribe();
      return counts;
    },
  };
}

/** The value at percentile `p` of ascending `sorted` values. */
const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!);

/** How long a reconnect wave may take before the clients still behind are counted as stalled. */
const STORM_TIMEOUT_MS = 120_000;

async function stormResume(version: string, mesh: Mesh, nc: NatsConnection) {
  const count = opts.stormResume;
  const js = nc.jetstream();
  const [room] = await createRooms(mesh.urls[0]!, 1, `${mesh.id}.storm`);
  const filter = new Subjects(mesh.id).room(room!.workspaceId);
  const urls = Array.from({ length: count }, (_, i) => `${mesh.urls[i % mesh.urls.length]!.replace("http", "ws")}/ws/${room!.workspaceId}?token=${room!.token}`);
  const workers = await Workers.start(Math.max(opts.workers, Math.ceil(count / PER_WORKER_LIMIT)));
  try {
    if (process.env["BENCH_DEBUG"]) log(`  debug: room ${room!.workspaceId}, workers ${workers.children.length}`);
    const opened = await workers.resumeOpen(urls);
    log(`  storm-resume ${version}: ${opened.ok}/${count} clients of one room connected in ${Math.round(opened.ms)} ms${opened.failed ? `, ${opened.failed} failed: ${JSON.stringify(opened.errors.slice(0, 3))}` : ""}`);
    // Live: every client gets an event published after they all joined.
    const live = await publishEvent(js, mesh.id, room!, -1);
    const position = await waitUntil(30_000, async () => {
      const state = await workers.resumeLive(live.seq);
      return state.live >= opened.ok ? state : undefined;
    });
    if (!position) throw new Error(`storm-resume ${version}: the clients did not all get the live event ${live.seq}`);
    await workers.resumeDrop();
    const published: number[] = [];
    for (let n = 0; n < opts.missed; n += 500) {
      const acks = await Promise.all(Array.from({ length: Math.min(500, opts.missed - n) }, (_, i) => publishEvent(js, mesh.id, room!, n + i)));
      published.push(...acks.map((a) => a.seq));
    }
    const lastMissed = Math.max(...published);
    // Every stored event of the room after the lowest position: the bench's events, and any other event of the room (presence, …) in between.
    const expected = (await storedSeqs(nc, mesh.env["NATS_STREAM"]!, filter, position.minPosition)).filter((seq) => seq <= lastMissed);
    const unstored = published.filter((seq) => !expected.includes(seq)).length;
    if (unstored > 0) throw new Error(`storm-resume ${version}: ${unstored} published events are not among the room's stored events`);
    log(`  storm-resume ${version}: all live at seq ≥ ${position.minPosition}, dropped; ${published.length} events published (${expected.length} stored for the room since); reconnecting all`);

    const api = await countJsApi(nc, mesh.env["NATS_STREAM"]!);
    // CPU (user and system) of the gateways and of the client processes, over the wave.
    const cpuOf = (pids: number[]) => pids.map(cpuTimes).reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system }));
    const cpuPids = { gateway: mesh.gateways.map((g) => g.pid), clients: workers.children.map((c) => c.pid!) };
    const cpuBefore = { gateway: cpuOf(cpuPids.gateway), clients: cpuOf(cpuPids.clients) };
    const started = nowMs();
    const wave = workers.resumeWave(expected, STORM_TIMEOUT_MS, 500);
    // Live events right behind the wave, then one every 2 s while it lasts: a client moved on past
    // missed events without them gets the next one, and the gap shows instead of a wait.
    let n = opts.missed;
    await publishEvent(js, mesh.id, room!, n++);
    const behind = setInterval(() => void publishEvent(js, mesh.id, room!, n++).catch(() => undefined), 2_000);
    const replies = await wave.finally(() => clearInterval(behind));
    const requests = await api.stop();
    const cpuSince = (before: { user: number; system: number }, pids: number[]) => {
      const after = cpuOf(pids);
      return { user: round(after.user - before.user, 0), system: round(after.system - before.system, 0) };
    };
    const cpu = { gateway: cpuSince(cpuBefore.gateway, cpuPids.gateway), clients: cpuSince(cpuBefore.clients, cpuPids.clients) };
    const since = (at: number[]) => at.map((t) => t - started).sort((a, b) => a - b);
    const times = since(replies.flatMap((r) => r.doneAt));
    const spread = (sorted: number[]) => ({ p50: round(percentile(sorted, 50), 1), p99: round(percentile(sorted, 99), 1), max: round(sorted.at(-1) ?? 0, 1) });
    // A gateway that tells an epoch speaks the protocol with `recovered`; its absence then is a fault too.
    const notRecovered = sum(replies, (r) => r.notRecovered) + (position.withEpoch > 0 ? sum(replies, (r) => r.recoveredAbsent) : 0);
    const faults = {
      recovered_false: notRecovered,
      gaps: sum(replies, (r) => r.gaps),
      clients_with_gaps: sum(replies, (r) => r.clientsWithGaps),
      // Clients that had not every missed event when the wave timed out, and how many they lacked.
      stalled_clients: sum(replies, (r) => r.incomplete),
      missing_events: sum(replies, (r) => r.missing),
      stalled_before_connected: sum(replies, (r) => r.incompleteUnconnected),
      duplicates: sum(replies, (r) => r.duplicates),
      reorderings: sum(replies, (r) => r.reorders),
      unexpected_closes: sum(replies, (r) => r.closed),
      refused_connects: sum(replies, (r) => r.refused) + opened.failed,
    };
    const result = {
      target: "gateway",
      test: "storm-resume",
      version,
      clients: count,
      missed: published.length,
      expected_events: expected.length,
      caught_up: times.length,
      wave_ms: round(nowMs() - started, 0),
      all_caught_up_ms: spread(times),
      // Where the time went, per client from the start of the wave: its `connected` frame, its first event after its position.
      connected_ms: spread(since(replies.flatMap((r) => r.connectedAt))),
      first_event_ms: spread(since(replies.flatMap((r) => r.firstAt))),
      js_api_requests: requests.stream,
      js_api_requests_server: requests.server,
      consumers_created: requests.consumersCreated,
      // The old protocol (no epoch) does not say `recovered`: not counted, but shown.
      recovered_not_reported: position.withEpoch > 0 ? 0 : sum(replies, (r) => r.recoveredAbsent),
      faults,
      // Clients and events, each fault once: the details (clients with gaps, events lacking, not connected) are not added.
      faults_total: Object.values(faults).reduce((n, v) => n + v, 0) - faults.clients_with_gaps - faults.missing_events - faults.stalled_before_connected,
      // CPU used during the wave (user + system), including the 500 ms after it.
      cpu_ms: cpu,
      refused_errors: replies.flatMap((r) => r.refusedErrors).slice(0, 3),
    };
    record(result);
    return result;
  } finally {
    await workers.stop();
  }
}

/** Polls `probe` every 100 ms until it returns a value, or gives up after `ms`. */
async function waitUntil<T>(ms: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined || performance.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The tree of `rev`, built into a folder under the system's temp dir (kept and
 * reused: one per commit): `git archive` of the commit, node_modules linked to
 * this checkout's, then its own `npm run build`.
 */
function buildRevision(rev: string): { commit: string; dir: string } {
  const commit = execFileSync("git", ["rev-parse", "--verify", `${rev}^{commit}`], { cwd: root, encoding: "utf8" }).trim();
  const dir = join(tmpdir(), `taskboard-baseline-${commit.slice(0, 12)}`);
  if (existsSync(join(dir, ".built"))) return { commit, dir };
  log(`  building ${rev} (${commit.slice(0, 12)}) in ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync("sh", ["-c", `git archive --format=tar "$0" | tar -x -C "$1"`, commit, dir], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  symlinkSync(realpathSync(join(root, "node_modules")), join(dir, "node_modules"));
  execFileSync("npm", ["run", "--silent", "build"], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
  writeFileSync(join(dir, ".built"), `${commit}\n`);
  return { commit, dir };
}

const sum = <T>(items: T[], of: (item: T) => number) => items.reduce((n, item) => n + of(item), 0);

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

// --- main ---------------------------------------------------------------------

/** Auth, workspace and gateways of one build (`code`: a checkout with dist/) on a database, stream and subject root of their own (`id`). */
interface Mesh {
  id: string;
  code: string;
  env: Record<string, string>;
  /** The environment of one process: `env` and its own internal credential. */
  envOf(name: string): Record<string, string>;
  processes: MeshProcess[];
  gateways: MeshProcess[];
  urls: string[];
  output: (name: string) => (line: string) => void;
  stop(): Promise<void>;
}

type Servers = { natsUrl: string; redisUrl: string; databaseUrl: string };

async function startMesh(servers: Servers, admin: postgres.Sql, code: string, id: string): Promise<Mesh> {
  const database = `tb_${id}`;
  await admin.unsafe(`create database ${database}`);
  const databaseUrl = new URL(servers.databaseUrl);
  databaseUrl.pathname = `/${database}`;
  const env: Record<string, string> = {
    NATS_URL: servers.natsUrl,
    REDIS_URL: servers.redisUrl,
    DATABASE_URL: databaseUrl.toString(),
    NATS_SUBJECT_ROOT: id,
    NATS_STREAM: id.toUpperCase(),
    REDIS_PREFIX: `${id}:`,
    // The credential of revisions before per-process credentials (--storm-baseline); today's
    // processes each get their own (LocalCredentials) and ignore it.
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
  if (otlpSink) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: otlpSink.url });
  const credentials = new LocalCredentials();
  const envOf = (name: string) => ({ ...env, ...credentials.env(name) });
  const processes: MeshProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      for (const p of [...processes].reverse()) await p.stop();
      await admin.unsafe(`drop database if exists ${database} with (force)`).catch(() => undefined);
    })());
  interruptCleanups.add(stop);
  const output = (name: string) => (line: string) => {
    if (/"level":"(error|fatal)"/.test(line)) log(`  [${name}${code === root ? "" : ` ${id}`}] ${line}`);
  };
  try {
    // The processes the fan-out needs (logins and rooms): auth and workspace, as the topology declares them.
    for (const spec of startOrder().flat().filter((p) => p.name === "auth" || p.name === "workspace")) {
      const started = await startProcess(spec.name, { cwd: code, env: envOf(spec.name), output: output(spec.name) });
      processes.push(started);
      env[spec.addressVar!] = `127.0.0.1:${started.ports["grpc"]}`;
    }
    const gateways: MeshProcess[] = [];
    for (let i = 0; i < opts.replicas; i++) {
      const gateway = await startProcess("gateway", { cwd: code, env: envOf("gateway"), output: output("gateway"), nodeArgs });
      gateways.push(gateway);
      processes.push(gateway);
    }
    return { id, code, env, envOf, processes, gateways, urls: gateways.map((g) => `http://127.0.0.1:${g.ports["http"]}`), output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function main(): Promise<void> {
  const servers = await provideServers(process.env, ["nats", "postgres", "redis"], (line) => log(`[servers] ${line}`));
  const adminUrl = new URL(servers.databaseUrl);
  adminUrl.pathname = "/postgres";
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => undefined });
  interruptCleanups.add(() => servers.stop());
  const meshes: Mesh[] = [];
  let nc: NatsConnection | undefined;
  try {
    const mesh = await startMesh(servers, admin, root, runId);
    meshes.push(mesh);
    const { envOf, processes, gateways, urls: gatewayUrls, output } = mesh;
    const rooms = opts.fanout || opts.idle > 0 || opts.storm > 0 ? await createRooms(gatewayUrls[0]!, opts.rooms) : [];
    nc = await connect({ servers: servers.natsUrl });
    // Interrupted (Ctrl-C), the meshes' streams go too, once their processes have stopped.
    const bench = nc;
    interruptCleanups.add(async () => {
      const jsm = await bench.jetstreamManager();
      await Promise.allSettled(meshes.map((mesh) => mesh.stop().then(() => jsm.streams.delete(mesh.env["NATS_STREAM"]!))));
    });
    const js = nc.jetstream();
    const relayEnv = { NATS_URL: servers.natsUrl, SUBJECT: `rt.${runId}.*.*.*` };
    if (opts.fanout) log(`bench ${runId}: ${opts.clients} clients, ${opts.rooms} rooms, ${opts.rate} events/s for ${opts.seconds} s via ${opts.via}, payload ${opts.payload} B`);

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
          const fresh = await startProcess("gateway", { cwd: root, env: envOf("gateway"), output: output("gateway") });
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
    if (opts.stormResume > 0) {
      log(`bench ${runId}: reconnect storm, ${opts.stormResume} clients of one room, ${opts.missed} missed events`);
      await stormResume("current", mesh, nc);
      if (opts.stormBaseline) {
        const { commit, dir } = buildRevision(opts.stormBaseline);
        const baseline = await startMesh(servers, admin, dir, `${runId}base`);
        meshes.push(baseline);
        await stormResume(`${opts.stormBaseline} (${commit.slice(0, 12)})`, baseline, nc);
      }
    }
  } finally {
    for (const mesh of meshes.reverse()) {
      await nc?.jetstreamManager().then((jsm) => jsm.streams.delete(mesh.env["NATS_STREAM"]!)).catch(() => undefined);
      await mesh.stop();
    }
    await nc?.close();
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
    else if (r.test === "connect-storm") log(`connect storm: ${r.connected}/${r.joins} authenticated joins in ${r.seconds} s, ${r.refused} refused`);
    else if (r.test === "storm-resume") {
      const f = r.faults;
      log(
        `storm-resume ${r.version}: ${r.clients} clients × ${r.missed} missed events, ${r.caught_up} all caught up: p50 ${r.all_caught_up_ms.p50} ms, p99 ${r.all_caught_up_ms.p99} ms, max ${r.all_caught_up_ms.max} ms; ` +
          `JetStream API ${r.js_api_requests} requests, ${r.consumers_created} consumers created; faults ${r.faults_total} (recovered:false ${f.recovered_false}, gaps ${f.gaps} in ${f.clients_with_gaps} clients, ` +
          `stalled clients ${f.stalled_clients} (${f.stalled_before_connected} of them not even connected) lacking ${f.missing_events} events after ${STORM_TIMEOUT_MS / 1000} s, duplicates ${f.duplicates}, reorderings ${f.reorderings}, unexpected closes ${f.unexpected_closes}, refused ${f.refused_connects}); ` +
          `connected p50/max ${r.connected_ms.p50}/${r.connected_ms.max} ms, first event p50/max ${r.first_event_ms.p50}/${r.first_event_ms.max} ms; ` +
          `CPU during the wave (user+system): gateway ${r.cpu_ms.gateway.user}+${r.cpu_ms.gateway.system} ms, clients ${r.cpu_ms.clients.user}+${r.cpu_ms.clients.system} ms` +
          (r.recovered_not_reported ? `; ${r.recovered_not_reported} connected frames without "recovered" (protocol before it)` : ""),
      );
    }
  }
  if (otlpSink) log(`tracing: the servers exported ${otlpSink.requests} OTLP requests, ${(otlpSink.bytes / 1024 / 1024).toFixed(1)} MiB`);
  log(`(JSON lines appended to ${opts.out})`);
}

await main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
otlpSink?.close();
