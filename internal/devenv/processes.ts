import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** How many of a child's last output lines are kept to explain a failure. */
const TAIL_LINES = 20;

export type OutputStream = "stdout" | "stderr";

export interface ChildOptions {
  /** The child's whole environment (nothing is inherited). */
  env: Record<string, string>;
  cwd: string;
  /** Run as this user and group (the caller must be root). */
  uid?: number;
  gid?: number;
  /** Called with every line the child writes. */
  onLine?: (line: string, stream: OutputStream) => void;
  /**
   * The signal the child gets from the kernel when this process dies, however
   * it dies (kill -9 included), so that no child outlives its runner; default
   * SIGTERM. Linux only (through util-linux's setpriv); elsewhere the children
   * are stopped by the runner's own exit handling.
   */
  parentDeathSignal?: NodeJS.Signals;
}

/** A spawned child process: its exit, its last output lines, and a bounded stop. */
export interface RunningChild {
  readonly pid: number | undefined;
  /** Resolves with the exit code (null when ended by a signal or never started); never rejects. */
  readonly exited: Promise<number | null>;
  /** True once the child has exited. */
  hasExited(): boolean;
  /** Its last lines of stdout and stderr, oldest first. */
  lastLines(): string[];
  /** Sends `signal`, then SIGKILL after `killAfterMs`; resolves with the exit code. Safe to call twice. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
}

// Children run in their own process group, so a terminal's Ctrl-C reaches only
// the runner, which stops them in order; this makes sure none outlives it.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildrenOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of liveChildren) child.kill("SIGKILL");
  });
}

/** setpriv (util-linux), which sets the parent-death signal and then runs the command in its place. */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path));

/** Spawns `command` with exactly `options.env`, reading its output line by line. */
export function spawnChild(command: string, args: string[], options: ChildOptions): RunningChild {
  killLiveChildrenOnExit();
  const [file, argv] = SETPRIV
    ? [SETPRIV, ["--pdeathsig", (options.parentDeathSignal ?? "SIGTERM").replace(/^SIG/, ""), "--", command, ...args]]
    : [command, args];
  const child = spawn(file, argv, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  liveChildren.add(child);

  const tail: string[] = [];
  const remember = (line: string, stream: OutputStream) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    options.onLine?.(line, stream);
  };
  const outputClosed = (["stdout", "stderr"] as const).map((stream) => {
    const lines = createInterface({ input: child[stream], crlfDelay: Infinity });
    lines.on("line", (line) => remember(line, stream));
    return new Promise<void>((resolve) => lines.once("close", resolve));
  });

  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      exitCode = code;
      remember(`[process exited: ${signal ? `signal ${signal}` : `code ${code}`}]`, "stderr");
      liveChildren.delete(child);
      // Let the last lines arrive, but do not wait on a grandchild that holds the pipes open.
      const settle = setTimeout(() => resolve(code), 1_000);
      void Promise.all(outputClosed).then(() => {
        clearTimeout(settle);
        resolve(code);
      });
    });
    child.once("error", (error) => {
      // A child that never started emits no "exit".
      if (child.pid !== undefined) return;
      remember(`cannot start ${command}: ${error.message}`, "stderr");
      exitCode = null;
      liveChildren.delete(child);
      resolve(null);
    });
  });

  let stopping: Promise<number | null> | undefined;
  return {
    pid: child.pid,
    exited,
    hasExited: () => exitCode !== undefined,
    lastLines: () => [...tail],
    stop(signal = "SIGTERM", killAfterMs = 10_000) {
      stopping ??= (async () => {
        if (exitCode !== undefined) return exited;
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}

/** A Taskboard process that has logged "ready". */
export interface MeshProcess {
  name: string;
  pid: number;
  /** The ports from its ready line, by the key without "_port": { grpc: 50051, admin: 9091 }. */
  ports: Record<string, number>;
  /** Resolves with its exit code (null when ended by a signal). */
  exited: Promise<number | null>;
  /** True once it has exited. */
  hasExited(): boolean;
  /** SIGTERM (or `signal`), then SIGKILL after the stop timeout; safe to call twice. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartProcessOptions {
  /** Added to PATH and HOME of this process's environment. */
  env: Record<string, string>;
  /** The repository root (holds dist/). */
  cwd: string;
  /** Receives every line the process writes. */
  output: (line: string, stream: OutputStream) => void;
  /** How long it may take to log "ready"; default 30 s. */
  readyTimeoutMs?: number;
  /** How long stop() waits before SIGKILL; default 15 s (processes shut down within 10 s by default). */
  stopTimeoutMs?: number;
  /** Aborting stops a process that is still starting. */
  signal?: AbortSignal;
  /** Extra arguments for node, before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

/** A process that exited, timed out or was aborted before it logged "ready". */
export class ProcessStartError extends Error {
  override name = "ProcessStartError";
  constructor(
    readonly processName: string,
    readonly reason: string,
    readonly lastLines: string[],
  ) {
    super(
      lastLines.length > 0
        ? `${processName}: ${reason}; last output:\n${lastLines.map((line) => `  ${line}`).join("\n")}`
        : `${processName}: ${reason}`,
    );
  }
}

/** The compiled entry of a process: dist/cmd/<name>/main.js under `cwd`. */
export function mainScriptPath(name: string, cwd: string): string {
  return join(cwd, "dist", "cmd", name, "main.js");
}

/** Runs `node dist/cmd/<name>/main.js` and resolves once it logs "ready" with its ports. */
export async function startProcess(name: string, options: StartProcessOptions): Promise<MeshProcess> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`invalid process name ${JSON.stringify(name)}`);
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  options.signal?.throwIfAborted();
  const entry = mainScriptPath(name, options.cwd);
  if (!existsSync(entry)) throw new ProcessStartError(name, `${entry} does not exist (npm run build)`, []);

  let onReady: ((ports: Record<string, number>) => void) | undefined;
  const ready = new Promise<Record<string, number>>((resolve) => (onReady = resolve));
  const child = spawnChild(process.execPath, [...(options.nodeArgs ?? []), entry], {
    cwd: options.cwd,
    env: { ...inheritedEnv(), ...options.env },
    onLine: (line, stream) => {
      options.output(line, stream);
      if (stream === "stdout" && onReady) {
        const ports = readyPorts(line);
        if (ports) onReady(ports);
      }
    },
  });
  const stop = (signal?: NodeJS.Signals) => child.stop(signal, stopTimeoutMs);

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const failure = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`not ready after ${readyTimeoutMs} ms`), readyTimeoutMs);
    onAbort = () => resolve("stopped before it was ready");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    void child.exited.then((code) => resolve(`exited with code ${code ?? "null (killed by a signal)"} before it was ready`));
  });
  try {
    const outcome = await Promise.race([ready.then((ports) => ({ ports })), failure.then((reason) => ({ reason }))]);
    if ("ports" in outcome) return { name, pid: child.pid!, ports: outcome.ports, exited: child.exited, hasExited: child.hasExited, stop };
    await stop();
    throw new ProcessStartError(name, outcome.reason, child.lastLines());
  } finally {
    onReady = undefined;
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
  }
}

/** The ports of a pino `"msg":"ready"` line, or undefined for any other line. */
function readyPorts(line: string): Record<string, number> | undefined {
  if (!line.startsWith("{")) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return undefined; // a line that merely starts with "{" is output, not a log record
  }
  if (typeof record !== "object" || record === null || (record as { msg?: unknown }).msg !== "ready") return undefined;
  const ports: Record<string, number> = {};
  for (const [key, value] of Object.entries(record)) {
    if (key.endsWith("_port") && Number.isInteger(value)) ports[key.slice(0, -"_port".length)] = value as number;
  }
  return ports;
}

/** The little a process inherits from the runner: where to find programs, and home. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}
