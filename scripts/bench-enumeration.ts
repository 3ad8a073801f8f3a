// Do register and login take the same time for an address with an account and one without?
// Interleaved requests against a running gateway, medians and 90th percentiles printed:
//
//   RATE_LIMIT_PER_IP=100000 RATE_LIMIT_PER_EMAIL=100000 npm run dev    (another terminal)
//   npm run bench:enumeration -- [--url http://127.0.0.1:8080] [--rounds 40]
//
// Figures, never assertions: the tests compare status and body; time is noisy on a shared
// machine, so it is compared here as a ratio measured in one run.
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: { url: { type: "string", default: "http://127.0.0.1:8080" }, rounds: { type: "string", default: "40" } },
});
const base = args.url!;
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be a positive integer");

async function post(path: string, body: unknown): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(base + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return { status: response.status, ms: performance.now() - started };
}

const run = Date.now().toString(36);
const password = "Bench-passw0rd";
const known = `enum.known.${run}@example.com`;
const first = await post("/auth/register", { name: "Known", email: known, password });
if (first.status !== 201) throw new Error(`cannot register the known account: ${first.status} (is the mesh running with the rate limits raised?)`);

const cases = {
  "register, address with an account": (_: number) => post("/auth/register", { name: "Again", email: known, password }),
  "register, new address": (i: number) => post("/auth/register", { name: "New", email: `enum.new.${run}.${i}@example.com`, password }),
  "login, wrong password": (_: number) => post("/auth/login", { email: known, password: "Wrong-passw0rd" }),
  "login, unknown address": (i: number) => post("/auth/login", { email: `enum.none.${run}.${i}@example.com`, password: "Wrong-passw0rd" }),
};
const times = Object.fromEntries(Object.keys(cases).map((name) => [name, [] as number[]]));
const statuses = Object.fromEntries(Object.keys(cases).map((name) => [name, new Set<number>()]));
for (let i = 0; i < rounds; i++) {
  for (const [name, call] of Object.entries(cases)) {
    const { status, ms } = await call(i);
    times[name]!.push(ms);
    statuses[name]!.add(status);
  }
}

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))]!;
const rows = Object.keys(cases).map((name) => ({ name, statuses: [...statuses[name]!], p50: quantile(times[name]!, 0.5), p90: quantile(times[name]!, 0.9) }));
for (const row of rows) console.log(`${row.name.padEnd(36)} status ${row.statuses.join("/")}  p50 ${row.p50.toFixed(1)} ms  p90 ${row.p90.toFixed(1)} ms`);
const ratio = (a: number, b: number) => (rows[a]!.p50 / rows[b]!.p50).toFixed(2);
console.log(`p50 ratio, register known/new: ${ratio(0, 1)}; login wrong password/unknown address: ${ratio(2, 3)}`);
console.log(JSON.stringify({ bench: "enumeration", rounds, results: rows }));
