import { randomBytes } from "node:crypto";
import { TaskboardClient } from "../api/client/index.js";
import { startOrder } from "../internal/devenv/topology.js";
import { createWriteStream, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { LocalCredentials } from "../internal/devenv/credentials.js";
import { mainScriptPath, spawnChild, startProcess, type MeshProcess } from "../internal/devenv/processes.js";
import { provideServers } from "../internal/devenv/servers.js";

/**
 * `npm run bench:export`: seeds a workspace with --rows tasks (default
 * 1,000,000) straight into task.tasks of a throwaway database, runs one CSV
 * and one JSON export through the real processes (gateway → export → task
 * stream → Postgres chunks), downloads each file through the gateway, and
 * prints rows/s and the export process's peak RSS for each (sampled VmRSS
 * while the job runs, and the process's VmHWM), as a table and as JSON lines.
 * Targets: at least 50,000 rows/s and under 256 MiB. Options: --rows N,
 * --formats csv,json, --keep (keep the database), --cpu-prof (V8 CPU profiles
 * of the task and export processes, written beside their logs).
 */

const { values: args } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    formats: { type: "string", default: "csv,json" },
    keep: { type: "boolean", default: false },
    /** Write V8 CPU profiles of the task and export processes (node --cpu-prof) beside their logs. */
    "cpu-prof": { type: "boolean", default: false },
  },
});
const ROWS = Number(args.rows);
const FORMATS = args.formats!.split(",").filter((f) => f === "csv" || f === "json");
const TARGET_ROWS_PER_SECOND = 50_000;
const TARGET_RSS_MIB = 256;

const root = fileURLToPath(new URL("../../", import.meta.url));
const say = (line: string) => process.stdout.write(`${line}\n`);
const MiB = 1024 * 1024;

interface Result {
  bench: "export";
  format: string;
  rows: number;
  file_bytes: number;
  job_seconds: number;
  rows_per_second: number;
  export_peak_rss_mib: number;
  /** The export process's peak while serving the download. */
  export_download_peak_rss_mib: number;
  /** CPU seconds (user + system) each process used during the job. */
  export_cpu_seconds: number;
  task_cpu_seconds: number;
  export_vmhwm_mib: number;
  task_peak_rss_mib: number;
  download_seconds: number;
  download_mib_per_second: number;
  gateway_peak_rss_mib: number;
}

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM). */
function procMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** CPU seconds (utime + stime) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // fields 14 and 15 of stat(5), in clock ticks (100 Hz)
}

/** Samples VmRSS of `pids` every 50 ms until stopped; returns the peak of each. */
function sampleRss(pids: Record<string, number>) {
  const peaks: Record<string, number> = Object.fromEntries(Object.keys(pids).map((k) => [k, 0]));
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) peaks[name] = Math.max(peaks[name]!, procMiB(pid, "VmRSS"));
  };
  sample();
  const timer = setInterval(sample, 50);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peaks;
    },
  };
}


async function main(): Promise<void> {
  const servers = await provideServers(process.env, ["nats", "postgres", "redis"], (line) => say(`[servers] ${line}`));
  const id = `bx${randomBytes(4).toString("hex")}`;
  const database = `tb_${id}`;
  const databaseUrl = (() => {
    const url = new URL(servers.databaseUrl);
    url.pathname = `/${database}`;
    return url.toString();
  })();
  // The maintenance database: the dev database (servers.databaseUrl) need not exist yet.
  const adminUrl = new URL(servers.databaseUrl);
  adminUrl.pathname = "/postgres";
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${database}`);
  const logDir = mkdtempSync(join(tmpdir(), "taskboard-bench-export-"));
  say(`bench: database ${database}, process logs in ${logDir}`);

  const env: Record<string, string> = {
    NATS_URL: servers.natsUrl,
    REDIS_URL: servers.redisUrl,
    DATABASE_URL: databaseUrl,
    NATS_SUBJECT_ROOT: id,
    NATS_STREAM: id.toUpperCase(),
    REDIS_PREFIX: `${id}:`,
    LOG_LEVEL: "info",
    GRPC_PORT: "0",
    ADMIN_PORT: "0",
    GATEWAY_PORT: "0",
  };
  const credentials = new LocalCredentials();
  const processes: MeshProcess[] = [];
  const pids: Record<string, number> = {};
  const start = async (name: string, addressVar?: string) => {
    const log = createWriteStream(join(logDir, `${name}.log`));
    const output = (line: string) => {
      log.write(`${line}\n`);
      // The export process logs its pid on its ready line (pino's base has none).
      if (line.includes('"msg":"ready"')) {
        const record = JSON.parse(line) as { pid?: number };
        if (record.pid) pids[name] = record.pid;
      }
    };
    const profiled = args["cpu-prof"] && (name === "task" || name === "export");
    const own = { ...env, ...credentials.env(name) };
    const started = profiled ? await startProfiled(name, own, logDir, output) : await startProcess(name, { cwd: root, env: own, output });
    processes.push(started);
    if (addressVar) env[addressVar] = `127.0.0.1:${started.ports["grpc"]}`;
    return started;
  };
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => undefined });
  const results: Result[] = [];
  try {
    // Every process of the topology an export needs (notify does not take part), callees first.
    const started: Record<string, MeshProcess> = {};
    for (const spec of startOrder().flat()) if (spec.name !== "notify") started[spec.name] = await start(spec.name, spec.addressVar);
    const task = started["task"]!;
    const gateway = started["gateway"]!;
    const base = `http://127.0.0.1:${gateway.ports["http"]}`;
    pids["task"] ??= (task as { pid?: number }).pid ?? NaN;
    pids["gateway"] ??= (gateway as { pid?: number }).pid ?? NaN;
    if (!pids["export"]) throw new Error("the export process logged no pid");

    const password = "Bench-passw0rd";
    const email = `bench.${id}@example.com`;
    const client = new TaskboardClient({ baseUrl: base });
    const user = await client.register({ name: "Bench", email, password });
    await client.login({ email, password });
    const workspace = await client.createWorkspace({ name: "Bench" });

    say(`bench: seeding ${ROWS.toLocaleString("en")} tasks`);
    const seedStarted = performance.now();
    // The search (GIN) and filter indexes are dropped in this throwaway database only: the export
    // reads by (workspace_id, seq), and maintaining a GIN index would make the seed take minutes.
    await sql`drop index if exists task.tasks_search, task.tasks_by_assignee, task.tasks_by_due_date`;
    await sql`
      insert into task.tasks (workspace_id, id, title, description, status, priority, assignee_id, created_by, due_date, created_at, updated_at)
      select ${workspace.id}::uuid, gen_random_uuid(),
             case when n % 50 = 0 then 'Task ' || n || ': "quoted", with a comma' when n % 97 = 0 then '=SUM(A' || n || ')' else 'Task ' || n || ' — ship the façade 🚀' end,
             'Description of task ' || n || E'. Second sentence, with a comma.\nAnd a second line; 漢字 and עברית.',
             (array['pending', 'in_progress', 'completed', 'cancelled'])[1 + n % 4],
             (array['low', 'medium', 'high', 'urgent'])[1 + n % 4],
             case when n % 3 = 0 then ${user.id}::uuid end,
             ${user.id}::uuid,
             case when n % 5 = 0 then now() + (n % 365) * interval '1 day' end,
             now(), now()
      from generate_series(1, ${ROWS}) as n`;
    await sql`analyze task.tasks`;
    say(`bench: seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);

    for (const format of FORMATS) {
      const rss = sampleRss({ export: pids["export"]!, task: pids["task"]! });
      const cpuBefore = { export: cpuSeconds(pids["export"]!), task: cpuSeconds(pids["task"]!) };
      const started = performance.now();
      const created = await client.createExport(workspace.id, { type: "tasks", format });
      let job = created;
      while (job.status !== "completed" && job.status !== "failed") {
        await new Promise((resolve) => setTimeout(resolve, 200));
        job = await client.getExport(created.id);
      }
      const peaks = rss.stop();
      const cpu = { export: cpuSeconds(pids["export"]!) - cpuBefore.export, task: cpuSeconds(pids["task"]!) - cpuBefore.task };
      if (job.status !== "completed") throw new Error(`the ${format} export failed: ${job.error}`);
      const wall = (performance.now() - started) / 1000;
      const jobSeconds = (Date.parse(job.completed_at!) - Date.parse(job.started_at!)) / 1000;

      // The download, through the gateway, counting bytes as they arrive.
      const downloadRss = sampleRss({ gateway: pids["gateway"]!, export: pids["export"]! });
      const downloadStarted = performance.now();
      // Read as a stream (the SDK's downloadExport answers a Blob: the whole file in memory).
      const res = await fetch(`${base}/exports/${job.id}/download`, { headers: { authorization: `Bearer ${await client.accessToken()}` } });
      if (!res.ok || !res.body) throw new Error(`download: ${res.status}`);
      let bytes = 0;
      for await (const chunk of res.body) bytes += (chunk as Uint8Array).byteLength;
      const downloadSeconds = (performance.now() - downloadStarted) / 1000;
      const downloadPeaks = downloadRss.stop();

      const result: Result = {
        bench: "export",
        format,
        rows: job.row_count,
        file_bytes: bytes,
        job_seconds: round(jobSeconds, 2),
        rows_per_second: Math.round(job.row_count / jobSeconds),
        export_peak_rss_mib: round(peaks["export"]!, 1),
        export_download_peak_rss_mib: round(downloadPeaks["export"]!, 1),
        export_cpu_seconds: round(cpu.export, 2),
        task_cpu_seconds: round(cpu.task, 2),
        export_vmhwm_mib: round(procMiB(pids["export"]!, "VmHWM"), 1),
        task_peak_rss_mib: round(peaks["task"]!, 1),
        download_seconds: round(downloadSeconds, 2),
        download_mib_per_second: round(bytes / MiB / downloadSeconds, 1),
        gateway_peak_rss_mib: round(downloadPeaks["gateway"]!, 1),
      };
      results.push(result);
      say(
        `bench: ${format}: ${result.rows.toLocaleString("en")} rows in ${result.job_seconds} s (wall ${wall.toFixed(1)} s) = ` +
          `${result.rows_per_second.toLocaleString("en")} rows/s; export peak RSS ${result.export_peak_rss_mib} MiB; ` +
          `CPU export ${result.export_cpu_seconds} s, task ${result.task_cpu_seconds} s; ` +
          `file ${(bytes / MiB).toFixed(0)} MiB downloaded in ${result.download_seconds} s (${result.download_mib_per_second} MiB/s)`,
      );
    }
  } finally {
    await Promise.all(processes.reverse().map((p) => p.stop()));
    await sql.end();
    if (!args.keep) await admin.unsafe(`drop database if exists ${database} with (force)`);
    await admin.end();
    await servers.stop();
  }

  say("");
  say("| format | rows | rows/s | export peak RSS (sampled) | export VmHWM | task peak RSS | file | download |");
  say("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    say(
      `| ${r.format} | ${r.rows.toLocaleString("en")} | ${r.rows_per_second.toLocaleString("en")} | ${r.export_peak_rss_mib} MiB | ` +
        `${r.export_vmhwm_mib} MiB | ${r.task_peak_rss_mib} MiB | ${(r.file_bytes / MiB).toFixed(0)} MiB | ${r.download_mib_per_second} MiB/s |`,
    );
  }
  say("");
  for (const r of results) say(JSON.stringify(r));
  const missed = results.filter((r) => r.rows_per_second < TARGET_ROWS_PER_SECOND || r.export_vmhwm_mib >= TARGET_RSS_MIB);
  say(
    missed.length === 0
      ? `bench: every export met the targets (≥ ${TARGET_ROWS_PER_SECOND.toLocaleString("en")} rows/s, < ${TARGET_RSS_MIB} MiB)`
      : `bench: missed the targets: ${missed.map((r) => r.format).join(", ")}`,
  );
}

/**
 * Like startProcess, with `node --cpu-prof` (not allowed in NODE_OPTIONS): the
 * profile is written to `dir` when the process exits.
 */
async function startProfiled(name: string, env: Record<string, string>, dir: string, output: (line: string) => void): Promise<MeshProcess> {
  let ready: (ports: Record<string, number>) => void = () => undefined;
  const portsOf = new Promise<Record<string, number>>((resolve) => (ready = resolve));
  const child = spawnChild(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`, mainScriptPath(name, root)], {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
    onLine: (line) => {
      output(line);
      if (!line.includes('"msg":"ready"')) return;
      const record = JSON.parse(line) as Record<string, unknown>;
      ready(Object.fromEntries(Object.entries(record).filter(([k]) => k.endsWith("_port")).map(([k, v]) => [k.slice(0, -5), v as number])));
    },
  });
  const ports = await Promise.race([
    portsOf,
    child.exited.then((code) => Promise.reject(new Error(`${name} exited with ${code} before it was ready: ${child.lastLines().join(" | ")}`))),
  ]);
  const started = { name, pid: child.pid ?? 0, ports, exited: child.exited, hasExited: child.hasExited, stop: (signal?: NodeJS.Signals) => child.stop(signal, 15_000) };
  return started;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench-export: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
