import fc from "fast-check";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { routeTable } from "../../internal/gateway/routes/index.js";
import { signUp, type SignedUp } from "../support/http.js";
import { openApiDocument } from "../support/openapi.js";
import { Mesh } from "../support/mesh.js";
import { encode, frame, realtimeQuery, requestFor, type FuzzRequest, type OwnIds } from "./requests.js";

// A property-based fuzz suite (fast-check, fixed seeds) against a real mesh: every REST
// route of the OpenAPI document (the gateway's route table) with hostile paths, queries,
// headers and bodies, then WebSocket frames and real-time query strings. What must hold
// for every request: no 5xx, no stack trace or internal path in an error body, nothing
// written on a 4xx, no process exits, every answer to an operation of the OpenAPI document
// one it declares; in the full run (npm run test:fuzz) also no answer slower than 2 s.
// The short form runs in npm test.

const LONG = process.env["TASKBOARD_LONG_TESTS"] === "1";
const REQUESTS = LONG ? 10_500 : 1_200;
const FRAMES = LONG ? 5_200 : 600;
const QUERIES = LONG ? 600 : 100;
const SEED = Number(process.env["FUZZ_SEED"] ?? 20_261_202);
const SLOWEST_MS = 2_000;

let mesh: Mesh;
let sql: ReturnType<Mesh["sql"]>;
let user: SignedUp;
const own: OwnIds = {};

beforeAll(async () => {
  mesh = await Mesh.start({ env: { LOG_LEVEL: "warn" } });
  sql = mesh.sql();
  user = await signUp(mesh.api, "Fuzzer");
  const workspace = await user.api.post("/workspaces", { name: "Fuzz" });
  const task = await user.api.post(`/workspaces/${workspace.body.id}/tasks`, { title: "fuzz target" });
  const comment = await user.api.post(`/workspaces/${workspace.body.id}/comments`, { task_id: task.body.id, content: "fuzz comment" });
  const job = await user.api.post(`/workspaces/${workspace.body.id}/exports`, { type: "tasks", format: "csv" });
  Object.assign(own, { workspace_id: workspace.body.id, task_id: task.body.id, comment_id: comment.body.id, job_id: job.body.id, user_id: user.id });
  for (const id of Object.values(own)) expect(id).toMatch(/^[0-9a-f-]{36}$/);
});

afterAll(() => mesh?.stop());

/** Row counts of what the API writes; a 4xx must leave them as they were. */
async function counts(): Promise<string> {
  const [row] = await sql`
    select (select count(*) from auth.users) as users, (select count(*) from workspace.workspaces) as workspaces,
           (select count(*) from workspace.members) as members, (select count(*) from task.tasks) as tasks,
           (select count(*) from task.comments) as comments, (select count(*) from export.jobs) as jobs`;
  return JSON.stringify(row);
}

/** Header values a client can put on the wire (fetch refuses others; encode them instead). */
function wireHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, /^[\t\x20-\x7e\x80-\xff]*$/.test(v) ? v : encode(v)]));
}

interface Outcome {
  status: number;
  ms: number;
  text: string;
  headers: Headers;
}

async function send(request: FuzzRequest): Promise<Outcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  const started = performance.now();
  try {
    const res = await fetch(`${mesh.url}${request.path}`, {
      method: request.method,
      headers: wireHeaders(request.headers),
      body: request.method === "GET" ? undefined : request.body,
      signal: controller.signal,
      redirect: "manual",
    });
    const ms = performance.now() - started;
    // An event stream never ends on its own: its headers are the answer.
    const text = (res.headers.get("content-type") ?? "").startsWith("text/event-stream") ? "" : await res.text();
    controller.abort();
    return { status: res.status, ms, text, headers: res.headers };
  } finally {
    clearTimeout(timer);
  }
}

const LEAKS = /\n\s+at \S|node_modules|\/work\/|\bdist\/|internal\/[a-z]|\.[jt]s:\d+|Error: |ECONNREFUSED|postgres|syntax error at/i;

interface Problem {
  request: FuzzRequest;
  outcome: Outcome | string;
  why: string;
}

describe("fuzz", () => {
  test(`fuzz: ${REQUESTS} hostile requests over every REST route: no 5xx, no leaks, nothing written on a 4xx`, { timeout: LONG ? 3_600_000 : 600_000 }, async () => {
    const routes = routeTable();
    const perRoute = Math.ceil(REQUESTS / routes.length);
    const problems: Problem[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    let checked = 0;
    let slowest = 0;
    for (const [index, route] of routes.entries()) {
      await fc.assert(
        fc.asyncProperty(requestFor(route, own, user.accessToken), async (request) => {
          const writes = request.method !== "GET";
          const before = writes ? await counts() : "";
          let outcome: Outcome;
          try {
            outcome = await send(request);
          } catch (error) {
            problems.push({ request, outcome: String(error), why: "no answer" });
            return;
          }
          sent++;
          slowest = Math.max(slowest, outcome.ms);
          statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
          if (outcome.status >= 500) problems.push({ request, outcome, why: "5xx" });
          // An answer to an operation of the document must be one it declares (an unknown path is the router's JSON 404).
          if (openApiDocument().documents(request.method, request.path)) {
            checked++;
            const drift = openApiDocument().problems({ method: request.method, path: request.path, status: outcome.status, headers: outcome.headers, text: outcome.text });
            if (drift.length > 0) problems.push({ request, outcome, why: drift.join("; ") });
          }
          if (LONG && outcome.ms > SLOWEST_MS) problems.push({ request, outcome, why: `slower than ${SLOWEST_MS} ms` });
          if (outcome.status >= 400) {
            if (LEAKS.test(outcome.text)) problems.push({ request, outcome, why: "internal detail in an error body" });
            if (outcome.status < 500 && writes && (await counts()) !== before) problems.push({ request, outcome, why: "a 4xx wrote something" });
          }
        }),
        { seed: SEED + index, numRuns: perRoute, endOnFailure: false },
      );
    }
    for (const [name, process] of mesh.processes) expect(process.hasExited(), `${name} exited`).toBe(false);
    const health = await fetch(`${mesh.url}/health`);
    expect(health.status).toBe(200);
    console.log(JSON.stringify({ fuzz: "rest", seed: SEED, routes: routes.length, sent, checked_against_openapi: checked, slowest_ms: Math.round(slowest), statuses: Object.fromEntries(statuses), problems: problems.length }));
    const shown = problems.slice(0, 10).map((p) => ({
      why: p.why,
      method: p.request.method,
      path: p.request.path.slice(0, 200),
      headers: Object.fromEntries(Object.entries(p.request.headers).map(([k, v]) => [k, v.slice(0, 80)])),
      body: p.request.body?.slice(0, 200),
      outcome: typeof p.outcome === "string" ? p.outcome : { status: p.outcome.status, text: p.outcome.text.slice(0, 300) },
    }));
    if (shown.length > 0) console.log(JSON.stringify(shown, null, 1));
    expect(shown).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(REQUESTS * 0.99);
  });

  test(`fuzz: ${FRAMES} hostile WebSocket frames: error frames or a flood close, never a crash; the room still delivers`, { timeout: LONG ? 1_800_000 : 300_000 }, async () => {
    const url = `${mesh.url.replace(/^http/, "ws")}/ws/${own["workspace_id"]}?token=${user.accessToken}`;
    const closes = new Map<number, number>();
    let socket: WebSocket | undefined;
    let sent = 0;
    const openSocket = async (): Promise<WebSocket> => {
      const ws = new WebSocket(url);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      ws.on("close", (code) => closes.set(code, (closes.get(code) ?? 0) + 1));
      ws.on("error", () => undefined);
      return ws;
    };
    await fc.assert(
      fc.asyncProperty(frame, async (data) => {
        if (!socket || socket.readyState !== WebSocket.OPEN) socket = await openSocket();
        socket.send(data);
        sent++;
        // Slow down below the flood limit now and then, so frames reach the parser, not only the limiter.
        if (sent % 15 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }),
      { seed: SEED, numRuns: FRAMES },
    );
    socket?.close();
    for (const code of closes.keys()) expect([1000, 1005, 1006, 1008, 1009]).toContain(code);
    // The gateway is unharmed: a fresh client gets a live event.
    const probe = await openSocket();
    const connected = new Promise<void>((resolve) => probe.on("message", (m) => String(m).includes('"connected"') && resolve()));
    const got = new Promise<string>((resolve) => probe.on("message", (m) => String(m).includes('"task.created"') && resolve(String(m))));
    // Once `connected` is in, every later event comes live (one made before it is in its seq, not sent).
    await connected;
    await user.api.post(`/workspaces/${own["workspace_id"]}/tasks`, { title: "after the frames" });
    expect(await got).toContain("after the frames");
    probe.close();
    for (const [name, process] of mesh.processes) expect(process.hasExited(), `${name} exited`).toBe(false);
    console.log(JSON.stringify({ fuzz: "frames", seed: SEED, sent, closes: Object.fromEntries(closes) }));
    expect(sent).toBe(FRAMES);
  });

  test(`fuzz: ${QUERIES} hostile real-time query strings (WebSocket upgrade and SSE): refused with 4xx or served, never 5xx`, { timeout: LONG ? 1_800_000 : 300_000 }, async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(realtimeQuery, fc.constantFrom(own["workspace_id"]!, "not-a-uuid", "00000000-0000-4000-8000-000000000000"), async (query, workspace) => {
        const search = new URLSearchParams(query).toString();
        const upgrade = await new Promise<number>((resolve) => {
          const ws = new WebSocket(`${mesh.url.replace(/^http/, "ws")}/ws/${workspace}?${search}`);
          ws.once("open", () => {
            ws.close();
            resolve(101);
          });
          ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
          ws.once("error", () => resolve(0));
        });
        const controller = new AbortController();
        const sse = await fetch(`${mesh.url}/workspaces/${workspace}/stream?${search}`, { signal: controller.signal }).then((r) => r.status);
        controller.abort();
        for (const status of [`ws ${upgrade}`, `sse ${sse}`]) seen.set(status, (seen.get(status) ?? 0) + 1);
        expect(upgrade === 101 || (upgrade >= 400 && upgrade < 500), `upgrade ${search}: ${upgrade}`).toBe(true);
        expect(sse < 500, `sse ${search}: ${sse}`).toBe(true);
      }),
      { seed: SEED, numRuns: QUERIES },
    );
    console.log(JSON.stringify({ fuzz: "realtime-queries", seed: SEED, statuses: Object.fromEntries(seen) }));
  });
});
