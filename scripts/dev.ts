import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LocalCredentials } from "../internal/devenv/credentials.js";
import {
  mainScriptPath,
  ProcessStartError,
  startProcess,
  type MeshProcess,
  type OutputStream,
} from "../internal/devenv/processes.js";
import { canListen, listenerOf } from "../internal/devenv/ports.js";
import { ensureDatabase, MissingServersError, provideServers, type ProvidedServers } from "../internal/devenv/servers.js";
import { PORT_VARS, startOrder, TOPOLOGY } from "../internal/devenv/topology.js";

/**
 * The local mesh (`npm run dev`): finds or starts NATS, Postgres, Redis and the
 * SES stand-in, runs every built process with prefixed output, and stops it all
 * on Ctrl-C or when one process dies.
 */

const root = fileURLToPath(new URL("../../", import.meta.url));
const env = process.env;

/** Added to every port of the topology, to run a second mesh beside the first (tests do). */
const portOffset = Number(env["DEV_PORT_OFFSET"] || 0);
const maxOffset = 65_535 - Math.max(...TOPOLOGY.flatMap((p) => Object.values(p.ports)));
if (!Number.isInteger(portOffset) || portOffset < 0 || portOffset > maxOffset) {
  process.stderr.write(`dev: DEV_PORT_OFFSET=${env["DEV_PORT_OFFSET"]} must be an integer from 0 to ${maxOffset}\n`);
  process.exit(1);
}

/** Each process with its ports (the gateway's HTTP port from GATEWAY_PORT if set) and its callees' addresses. */
const mesh = TOPOLOGY.map((spec) => {
  const ports = Object.entries(spec.ports).map(([kind, port]) => ({
    kind: kind as keyof typeof PORT_VARS,
    port: kind === "http" && env["GATEWAY_PORT"] ? Number(env["GATEWAY_PORT"]) : port + portOffset,
  }));
  const processEnv: Record<string, string> = Object.fromEntries(ports.map(({ kind, port }) => [PORT_VARS[kind], String(port)]));
  for (const callee of spec.calls) {
    const target = TOPOLOGY.find((p) => p.name === callee)!;
    if (target.addressVar && target.ports.grpc) processEnv[target.addressVar] = env[target.addressVar] || `127.0.0.1:${target.ports.grpc + portOffset}`;
  }
  return { name: spec.name, ports, env: processEnv };
});

const useColour = Boolean(process.stdout.isTTY) && !env["NO_COLOR"];
const COLOURS = [36, 32, 33, 35, 34, 91, 96];
const prefixWidth = Math.max(...mesh.map((p) => p.name.length)) + 3;

function prefix(name: string, colour: number): string {
  const label = `[${name}]`.padEnd(prefixWidth);
  return useColour ? `\x1b[${colour}m${label}\x1b[0m` : label;
}

const devPrefix = prefix("dev", 90);
const say = (line: string) => process.stdout.write(line ? `${devPrefix}${line}\n` : "\n");
const complain = (line: string) => process.stderr.write(`${devPrefix}${line}\n`);

async function main(): Promise<number> {
  const stopping = new AbortController();
  let exitCode = 0;
  const stopWith = (code: number, why: string) => {
    if (stopping.signal.aborted) return;
    exitCode = code;
    (code === 0 ? say : complain)(why);
    stopping.abort(new Error(why));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping.signal.aborted) {
      // A second Ctrl-C: leave now; the exit hook kills the children.
      complain(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stopWith(0, `${signal}: stopping the mesh`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // A closed terminal: stop as cleanly as for Ctrl-C rather than dying with the servers still running.
  process.on("SIGHUP", onSignal);

  // A port still held (by a process left from an earlier run, say) is named with its holder, once.
  for (const { name, ports } of mesh) {
    for (const { kind, port } of ports) {
      if (await canListen(port)) continue;
      const holder = await listenerOf(port);
      const who = holder ? `process ${holder.pid} (${holder.command.slice(0, 120)})` : "another process";
      complain(`port ${port} (${name} ${kind}) is already in use by ${who}; stop it (kill ${holder?.pid ?? "<pid>"}) or set DEV_PORT_OFFSET`);
      return 1;
    }
  }

  let servers: ProvidedServers;
  try {
    servers = await provideServers(env, ["nats", "postgres", "redis", "ses"], say, { signal: stopping.signal });
  } catch (error) {
    if (error instanceof MissingServersError) {
      process.stderr.write(`dev: cannot start the local mesh; a server is missing:\n${error.lines.map((l) => `  ${l}`).join("\n")}\n`);
      return 1;
    }
    if (stopping.signal.aborted) return exitCode;
    throw error;
  }

  const running: MeshProcess[] = [];
  const diedOnItsOwn = new Set<MeshProcess>();
  try {
    if (await ensureDatabase(servers.databaseUrl)) say("postgres: created the database");
    // GRPC_PORT, ADMIN_PORT and the internal credentials are per process: set below for
    // each (credentials fresh for every run), never the user's for all.
    const { GRPC_PORT: _grpc, ADMIN_PORT: _admin, INTERNAL_SECRET: _secret, INTERNAL_CALLERS: _callers, ...userEnv } = definedOnly(env);
    const credentials = new LocalCredentials();
    const common: Record<string, string> = {
      ...userEnv,
      NATS_URL: servers.natsUrl,
      DATABASE_URL: servers.databaseUrl,
      REDIS_URL: servers.redisUrl,
      SES_ENDPOINT: servers.sesEndpoint,
    };

    const built = mesh.filter(({ name }) => {
      if (existsSync(mainScriptPath(name, root))) return true;
      say(`${name}: skipped, dist/cmd/${name}/main.js does not exist (not written yet, or run npm run build)`);
      return false;
    });
    const start = async (spec: (typeof mesh)[number]): Promise<MeshProcess | undefined> => {
      const linePrefix = prefix(spec.name, COLOURS[mesh.indexOf(spec) % COLOURS.length] ?? 36);
      try {
        const child = await startProcess(spec.name, {
          cwd: root,
          env: { ...common, ...credentials.env(spec.name), ...spec.env },
          output: (line: string, stream: OutputStream) =>
            (stream === "stderr" ? process.stderr : process.stdout).write(`${linePrefix}${line}\n`),
          signal: stopping.signal,
        });
        running.push(child);
        void child.exited.then((code) => {
          if (stopping.signal.aborted) return;
          diedOnItsOwn.add(child);
          stopWith(1, `${spec.name} exited on its own (code ${code ?? "null, killed by a signal"}); stopping the mesh`);
        });
        return child;
      } catch (error) {
        // The first failure stops the rest; those then fail as "stopped before it was ready", which says nothing new.
        stopWith(1, error instanceof ProcessStartError ? `${spec.name} did not start: ${error.reason}` : `${spec.name} did not start: ${describe(error)}`);
        return undefined;
      }
    };
    // In waves: each process after those it calls (the gateway last).
    for (const wave of startOrder()) {
      if (stopping.signal.aborted) break;
      await Promise.all(built.filter((p) => wave.some((w) => w.name === p.name)).map(start));
    }
    const gateway = running.find((p) => p.name === "gateway");
    if (!stopping.signal.aborted) {
      printBanner(running, gateway, servers);
      await new Promise<void>((resolve) => stopping.signal.addEventListener("abort", () => resolve(), { once: true }));
    }
  } catch (error) {
    stopWith(1, `start failed: ${describe(error)}`);
  }

  await stopMesh(running.filter((p) => !diedOnItsOwn.has(p)));
  try {
    await servers.stop();
  } catch (error) {
    complain(`stopping the servers: ${describe(error)}`);
    exitCode = 1;
  }
  say(exitCode === 0 ? "stopped" : "stopped after a failure");
  return exitCode;
}

/** Callers before callees (the gateway first, so no request reaches a stopped service): the start waves, reversed. */
async function stopMesh(running: MeshProcess[]): Promise<void> {
  for (const wave of startOrder().reverse()) {
    await Promise.all(
      running
        .filter((p) => wave.some((w) => w.name === p.name))
        .map(async (p) => {
          const code = await p.stop();
          if (code !== 0) complain(`${p.name} stopped with code ${code ?? "null (killed by a signal)"}`);
        }),
    );
  }
}

function printBanner(running: MeshProcess[], gateway: MeshProcess | undefined, servers: ProvidedServers): void {
  const lines = ["", "Taskboard local mesh is running"];
  for (const p of [...running].sort((a, b) => mesh.findIndex((m) => m.name === a.name) - mesh.findIndex((m) => m.name === b.name))) {
    const ports = Object.entries(p.ports).map(([kind, port]) => `${kind} ${port}`).join(", ");
    lines.push(`  ${p.name.padEnd(10)} ${ports}`);
  }
  if (gateway) {
    const base = `http://127.0.0.1:${gateway.ports["http"] ?? env["GATEWAY_PORT"] ?? 8080}`;
    lines.push("", `  gateway    ${base}`, `  test page  ${base}/`, `  API docs   ${base}/docs`, `  health     ${base}/health`);
  } else {
    lines.push("", "  gateway    not built yet: no HTTP API (dist/cmd/gateway/main.js is missing)");
  }
  if (servers.sesEndpoint) lines.push(`  sent mail  ${servers.sesEndpoint}/ (JSON: ${servers.sesEndpoint}/store)`);
  lines.push("", "Ctrl-C stops everything.", "");
  for (const line of lines) say(line);
}

function definedOnly(source: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(source).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${describe(error.cause)}` : error.message;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    complain(`dev: ${describe(error)}`);
    process.exit(1);
  },
);
