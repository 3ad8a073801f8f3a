import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, describe, expect, inject, it } from "vitest";
import { canListen } from "../internal/devenv/ports.js";
import { TOPOLOGY } from "../internal/devenv/topology.js";
import { withDatabase } from "./support/databases.js";
import { waitFor } from "./support/wait.js";

// `npm run dev` must never orphan a process: every way of stopping it (a signal to npm, a
// signal to the runner, the runner killed outright) ends every child, and a port held by a
// leftover is reported in one line. Each run here is a real mesh on its own ports (an offset),
// subjects, Redis prefix and database, on the run's servers.

const repoRoot = new URL("../", import.meta.url).pathname;
const databases: string[] = [];

afterAll(async () => {
  const admin = postgres(withDatabase(inject("servers").databaseUrl, "postgres"), { max: 1, onnotice: () => undefined });
  for (const name of databases) await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
});

/**
 * A port offset under which every port of the topology is free now, and stays out of
 * Linux's ephemeral range (32768–60999), where other tests' processes bind port 0: the
 * gRPC ports (50051+) land above it, the HTTP and admin ports (8080+) below.
 */
async function freeOffset(): Promise<number> {
  for (;;) {
    const offset = 10_950 + Math.floor(Math.random() * 4_500);
    const ports = TOPOLOGY.flatMap((p) => Object.values(p.ports).map((port) => port + offset));
    if ((await Promise.all(ports.map((port) => canListen(port)))).every(Boolean)) return offset;
  }
}

interface DevRun {
  child: ChildProcess;
  output: () => string;
  offset: number;
  exited: Promise<number | null>;
}

/** Starts `npm run dev:mesh` (the built runner) or the runner itself; resolves once the mesh is up. */
async function startDev(how: "npm" | "runner", offset?: number): Promise<DevRun> {
  const servers = inject("servers");
  const id = `dev${randomBytes(4).toString("hex")}`;
  databases.push(`tb_${id}`);
  const chosen = offset ?? (await freeOffset());
  const env = {
    PATH: process.env["PATH"] ?? "",
    HOME: process.env["HOME"] ?? "/tmp",
    NATS_URL: servers.natsUrl,
    REDIS_URL: servers.redisUrl,
    DATABASE_URL: withDatabase(servers.databaseUrl, `tb_${id}`),
    SES_ENDPOINT: servers.sesEndpoint,
    NATS_SUBJECT_ROOT: id,
    NATS_STREAM: id.toUpperCase(),
    REDIS_PREFIX: `${id}:`,
    DEV_PORT_OFFSET: String(chosen),
    LOG_LEVEL: "warn",
    NO_COLOR: "1",
  };
  const child =
    how === "npm"
      ? spawn("npm", ["run", "--silent", "dev:mesh"], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] })
      : spawn(process.execPath, ["dist/scripts/dev.js"], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, offset: chosen, exited };
}

async function untilRunning(run: DevRun): Promise<void> {
  await waitFor("the mesh to be running", () => {
    if (run.child.exitCode !== null) throw new Error(`dev exited with ${run.child.exitCode}:\n${run.output()}`);
    return run.output().includes("Taskboard local mesh is running");
  }, 60_000, 100);
}

/** Every descendant process of `pid` now (from /proc). */
function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command may contain spaces and parentheses; the fields after the last ")" are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry), ppid);
    } catch {
      continue; // the process ended while we looked
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH: gone
  }
}

/** The pid of the runner: the process itself, or npm's child (npm runs it without a shell in between). */
function runnerPid(run: DevRun, how: "npm" | "runner"): number {
  if (how === "runner") return run.child.pid!;
  const [direct] = descendantsOf(run.child.pid!).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("dist/scripts/dev.js"));
  return direct!;
}

describe("dev runner", () => {
  it("dev runner: npm runs the runner with no shell in between, and SIGTERM to npm stops every process of the mesh", async () => {
    const run = await startDev("npm");
    await untilRunning(run);
    const runner = runnerPid(run, "npm");
    expect(runner, "the runner process").toBeDefined();
    const cmdline = readFileSync(`/proc/${runner}/stat`, "utf8");
    const ppid = Number(cmdline.slice(cmdline.lastIndexOf(")") + 2).split(" ")[1]);
    expect(ppid, "npm is the runner's parent (no sh -c wrapper to swallow the signal)").toBe(run.child.pid);
    const children = descendantsOf(run.child.pid!);
    expect(children.length).toBeGreaterThanOrEqual(TOPOLOGY.length + 1);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    await waitFor("every process of the mesh to exit", () => children.every((pid) => !alive(pid)), 15_000, 100);
    expect(run.output()).toContain("stopped");
  }, 120_000);

  it("dev runner: SIGINT to the runner stops the gateway first, then the services, and exits 0", async () => {
    const run = await startDev("runner");
    await untilRunning(run);
    const children = descendantsOf(run.child.pid!);
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
    await waitFor("every process of the mesh to exit", () => children.every((pid) => !alive(pid)), 15_000, 100);
    const exitOf = (name: string) => run.output().search(new RegExp(`\\[${name}\\]\\s+\\[process exited`));
    for (const name of ["gateway", "task", "auth"]) expect(exitOf(name), `${name} exited`).toBeGreaterThan(-1);
    expect(exitOf("gateway"), "the gateway stops before the services it calls").toBeLessThan(exitOf("task"));
    expect(exitOf("task"), "task stops before auth, which it calls").toBeLessThan(exitOf("auth"));
  }, 120_000);

  it("dev runner: a runner killed with -9 leaves no process behind: its children stop within a few seconds", async () => {
    const run = await startDev("runner");
    await untilRunning(run);
    const children = descendantsOf(run.child.pid!);
    expect(children.length).toBeGreaterThanOrEqual(TOPOLOGY.length);
    run.child.kill("SIGKILL");
    await run.exited;
    await waitFor(`the orphaned children (${children.join(", ")}) to stop`, () => children.every((pid) => !alive(pid)), 10_000, 100);
  }, 120_000);

  it("dev runner: a port held by a leftover process is reported in one line naming the port and the pid", async () => {
    const offset = await freeOffset();
    const port = TOPOLOGY.find((p) => p.name === "task")!.ports.grpc! + offset;
    const squatter: Server = await new Promise((resolve) => {
      const server = createServer().listen(port, () => resolve(server));
    });
    try {
      const run = await startDev("runner", offset);
      expect(await run.exited).toBe(1);
      const lines = run.output().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`port ${port} (task grpc) is already in use by process ${process.pid}`);
    } finally {
      squatter.close();
    }
  }, 60_000);
});
