import { readdirSync, readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { freePort } from "../internal/devenv/ports.js";
import {
  TaskboardClient,
  TaskboardError,
  type RealtimeEvent,
  type RealtimeStatus,
  type RealtimeSubscription,
  type ResetInfo,
  type Tokens,
} from "../api/client/index.js";
import { launchChromium } from "./support/browser.js";
import { Mesh } from "./support/mesh.js";
import { checkedFetch } from "./support/openapi.js";
import { waitFor } from "./support/wait.js";

/**
 * The client SDK (api/client) against a real mesh: REST through the generated operations,
 * token refresh (access tokens live 10 s here), and realtime over WebSocket and SSE.
 */

const ACCESS_TTL_SECONDS = 10;
const MAX_CONNECTIONS = 2;
/** Presence and connection-limit entries live this long; a refused connection is told to retry after it (Retry-After). */
const PRESENCE_TTL_SECONDS = 5;
const PASSWORD = "Passw0rd-long";
let mesh: Mesh;
/** The first gateway listens on a fixed port, so a restarted one is found at the same address. */
let realtimePort: number;
let baseUrl: string;
const subscriptions: RealtimeSubscription[] = [];
let counter = 0;

beforeAll(async () => {
  realtimePort = await freePort();
  mesh = await Mesh.start({ gateways: 0, env: { ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TTL_SECONDS), WS_MAX_CONNECTIONS_PER_USER: String(MAX_CONNECTIONS), PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS) } });
  await mesh.startGateway({ GATEWAY_PORT: String(realtimePort) });
  await mesh.startGateway();
  baseUrl = mesh.gateways[0]!.url;
});

/** Every answer the SDK's clients got that api/openapi.yaml does not declare (checkedFetch). */
const drift: string[] = [];
afterEach(() => {
  expect(drift.splice(0), "answers not as api/openapi.yaml declares").toEqual([]);
});

afterAll(async () => {
  await Promise.all(subscriptions.map((s) => s.close()));
  await mesh?.stop();
});

/** A new user, registered and logged in through the SDK. */
async function user(name = "Sdk", options: { baseUrl?: string } = {}) {
  const saved: (Tokens | undefined)[] = [];
  const client = new TaskboardClient({ baseUrl: options.baseUrl ?? baseUrl, WebSocket, onTokens: (t) => saved.push(t), fetch: checkedFetch(drift) });
  const email = `${name.toLowerCase()}.${process.pid}.${Date.now()}.${++counter}@example.com`;
  const registered = await client.register({ name, email, password: PASSWORD });
  await client.login({ email, password: PASSWORD });
  return { client, id: registered.id, email, saved };
}

/** An owner with a workspace, and a member of it. */
async function team() {
  const [owner, member] = await Promise.all([user("Owner"), user("Member")]);
  const workspace = await owner.client.createWorkspace({ name: "SDK team" });
  await owner.client.addMember(workspace.id, { user_id: member.id, role: "member" });
  // Keep notify's notification.* events out of the counted event streams.
  await Promise.all([owner, member].map((u) => u.client.updateUser(u.id, { email_notifications: false })));
  return { owner, member, workspaceId: workspace.id };
}

/** Records what a subscription reports. */
function record(sub: RealtimeSubscription) {
  subscriptions.push(sub);
  const seen = { events: [] as RealtimeEvent[], resets: [] as ResetInfo[], statuses: [] as RealtimeStatus[], errors: [] as Error[], connected: 0 };
  sub.on("event", (e) => seen.events.push(e));
  sub.on("reset", (r) => seen.resets.push(r));
  sub.on("status", (s) => seen.statuses.push(s));
  sub.on("error", (e) => seen.errors.push(e));
  sub.on("connected", () => seen.connected++);
  return seen;
}

/** Waits for the subscription's `connected` frame (count `n`), failing at once with its reason when it ends instead, and with its statuses on a timeout. */
async function connected(sub: RealtimeSubscription, seen: { connected: number; statuses: RealtimeStatus[] }, n = 1, timeoutMs = 20_000): Promise<void> {
  const ended = sub.closed.then((end) => {
    throw new Error(`the subscription ended before connected frame ${n}: ${end.reason}${end.error ? ` (${end.error.name}: ${end.error.message})` : ""}`);
  });
  const statuses = () =>
    seen.statuses.map((s) => [s.state, s.transport, s.code, s.reason, s.error?.message].filter((v) => v !== undefined).join(" ")).join(" | ");
  const arrived = waitFor(`connected frame ${n}`, () => seen.connected >= n, timeoutMs).catch((error: Error) => {
    throw new Error(`${error.message}; statuses: ${statuses()}`);
  });
  await Promise.race([arrived, ended]);
}

const tasksCreated = (events: RealtimeEvent[]) => events.filter((e) => e.type === "task.created").map((e) => e.aggregate_id);

async function expectError(promise: Promise<unknown>, status: number, code: string): Promise<TaskboardError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskboardError);
  expect(error).toMatchObject({ name: "TaskboardError", status, code });
  return error as TaskboardError;
}

describe("client SDK: REST", () => {
  test("sdk: log in, create a workspace and tasks with labels, filter by repeated labels, update and delete", async () => {
    const ann = await user("Ann");
    expect(ann.saved.at(-1)).toEqual({ access_token: expect.any(String), refresh_token: expect.any(String) });
    const workspace = await ann.client.createWorkspace({ name: "Launch", description: "Q3 launch" });
    expect(workspace).toMatchObject({ name: "Launch", role: "owner", owner_id: ann.id });
    const plan = await ann.client.createTask(workspace.id, { title: "Write the launch plan", priority: "high", labels: ["launch", "docs"] });
    const other = await ann.client.createTask(workspace.id, { title: "Book the venue", labels: ["launch"] });
    expect(plan).toMatchObject({ title: "Write the launch plan", priority: "high", status: "pending", labels: ["launch", "docs"] });

    const both = await ann.client.listTasks(workspace.id, { label: ["launch", "docs"] });
    expect(both.items.map((t) => t.id)).toEqual([plan.id]);
    const one = await ann.client.listTasks(workspace.id, { label: "launch", limit: 1 });
    expect(one.items).toHaveLength(1);
    expect(one.next_cursor).toEqual(expect.any(String));
    const rest = await ann.client.listTasks(workspace.id, { label: "launch", cursor: one.next_cursor! });
    expect([...one.items, ...rest.items].map((t) => t.id).sort()).toEqual([plan.id, other.id].sort());

    const updated = await ann.client.updateTask(plan.id, { status: "in_progress" });
    expect(updated.status).toBe("in_progress");
    expect(await ann.client.call("getTask", { params: { task_id: plan.id } })).toMatchObject({ id: plan.id, status: "in_progress" });
    expect(await ann.client.deleteTask(other.id)).toBeUndefined();
    await expectError(ann.client.getTask(other.id), 404, "not_found");
  });

  test("sdk: API errors are TaskboardErrors with status, code, message and details", async () => {
    const bob = await user("Bob");
    const workspace = await bob.client.createWorkspace({ name: "Errors" });
    const invalid = await expectError(bob.client.createTask(workspace.id, { title: "" }), 400, "validation_failed");
    expect(invalid.message).toMatch(/title/);
    expect(invalid.details).toEqual(expect.any(Object));
    await expectError(bob.client.getTask("00000000-0000-4000-8000-000000000000"), 404, "not_found");
    // A taken address is answered like a new one (no enumeration), and logs nobody in with the new password.
    expect((await bob.client.register({ name: "Bob", email: bob.email, password: "Another-passw0rd" })).email).toBe(bob.email);
    await expectError(new TaskboardClient({ baseUrl, fetch: checkedFetch(drift) }).login({ email: bob.email, password: "Wrong-passw0rd" }), 401, "unauthorized");
    await expectError(new TaskboardClient({ baseUrl, fetch: checkedFetch(drift) }).listWorkspaces(), 401, "unauthorized");
    const unreachable = await expectError(new TaskboardClient({ baseUrl: `http://127.0.0.1:${await freePort()}` }).getHealth(), 0, "network_error");
    expect(unreachable.cause).toBeDefined();
  });

  test("sdk: the access token is refreshed before it expires, and once after a 401", async () => {
    const cy = await user("Cy");
    const workspace = await cy.client.createWorkspace({ name: "Refresh" });
    const first = cy.client.tokens!;
    // Refreshed a fifth of its 10 s lifetime before expiry: wait until it is due.
    await new Promise((resolve) => setTimeout(resolve, (ACCESS_TTL_SECONDS - 1.5) * 1000));
    expect((await cy.client.getWorkspace(workspace.id)).id).toBe(workspace.id);
    const second = cy.client.tokens!;
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(cy.saved.at(-1)).toEqual(second);

    // A token the server refuses (401) is refreshed once and the call retried.
    const restored = new TaskboardClient({ baseUrl, fetch: checkedFetch(drift), tokens: { access_token: "not-a-jwt", refresh_token: second.refresh_token } });
    expect((await restored.getWorkspace(workspace.id)).id).toBe(workspace.id);
    expect(restored.tokens!.access_token).not.toBe("not-a-jwt");

    // A spent refresh token: the 401 stands and the tokens are forgotten.
    const saved: (Tokens | undefined)[] = [];
    const spent = new TaskboardClient({ baseUrl, fetch: checkedFetch(drift), tokens: { access_token: "not-a-jwt", refresh_token: second.refresh_token }, onTokens: (t) => saved.push(t) });
    await expectError(spent.getWorkspace(workspace.id), 401, "unauthorized");
    expect(spent.tokens).toBeUndefined();
    expect(saved).toEqual([undefined]);
  }, 60_000);

  test("sdk: logout forgets the tokens; files come as Blobs, documents as text", async () => {
    const dee = await user("Dee");
    const workspace = await dee.client.createWorkspace({ name: "Files" });
    await dee.client.createTask(workspace.id, { title: "Export me", labels: ["a", "b"] });
    const job = await dee.client.createExport(workspace.id, { type: "tasks", format: "csv" });
    await waitFor("the export to complete", async () => (await dee.client.getExport(job.id)).status === "completed", 60_000, 250);
    const file = await dee.client.downloadExport(job.id);
    expect(file).toBeInstanceOf(Blob);
    expect(await file.text()).toMatch(/Export me/);
    expect(await dee.client.getOpenApiDocument()).toMatch(/^# GENERATED/);
    await dee.client.logout({ refresh_token: dee.client.tokens!.refresh_token! });
    expect(dee.client.tokens).toBeUndefined();
  }, 90_000);

  test("sdk: the compiled SDK (dist/api/client) imports nothing outside itself and runs in Node as an ES module", async () => {
    const dir = new URL("../dist/api/client/", import.meta.url);
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".js"))) {
      const source = readFileSync(new URL(file, dir), "utf8");
      const specifiers = [...source.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s*["']([^"']+)["']/g), ...source.matchAll(/import\(\s*["']([^"']+)["']/g)].map((m) => m[1]!);
      for (const specifier of specifiers) expect(specifier, `${file} imports ${specifier}`).toMatch(/^\.\/[\w.-]+\.js$/);
    }
    // dist/api/client is the package: its package.json's export is the compiled index.
    const manifest = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as { name: string; type: string; exports: { ".": { default: string } } };
    expect(manifest).toMatchObject({ name: "@taskboard/client", type: "module" });
    const compiled = (await import(new URL(manifest.exports["."].default, dir).href)) as typeof import("../api/client/index.js");
    const client = new compiled.TaskboardClient({ baseUrl });
    expect(await client.getHealth()).toMatchObject({ status: "ok" });
  });
});

describe("client SDK: realtime", () => {
  test("sdk realtime: WebSocket with a ticket; connected, then typed events with seq; custom messages go out and come back", async () => {
    const t = await team();
    const sub = t.member.client.realtime(t.workspaceId, { WebSocket });
    const seen = record(sub);
    const titles: string[] = [];
    sub.on("task.created", (e) => titles.push(e.data.title));
    await connected(sub, seen);
    expect(sub.transport).toBe("websocket");
    const task = await t.owner.client.createTask(t.workspaceId, { title: "Live" });
    await waitFor("task.created", () => tasksCreated(seen.events).includes(task.id), 20_000);
    expect(titles).toEqual(["Live"]);
    const created = seen.events.find((e) => e.type === "task.created")!;
    expect(created).toMatchObject({ workspace_id: t.workspaceId, aggregate_id: task.id, seq: expect.any(Number), user_id: t.owner.id });
    sub.send({ hello: "room" });
    await waitFor("the custom message back", () => seen.events.find((e) => e.type === "custom.message" && e.data["hello"] === "room"), 20_000);
    expect(seen.resets).toEqual([]);
    expect(seen.statuses.map((s) => s.state)).toEqual(["connecting", "open"]);
  }, 60_000);

  test.each(["websocket", "sse"] as const)("sdk realtime (%s): a gateway restart (1012) is followed by a reconnect with since and epoch: every event once, in order", async (transport) => {
    const t = await team();
    const sub = t.member.client.realtime(t.workspaceId, { WebSocket, transport });
    const seen = record(sub);
    await connected(sub, seen);
    const before = await t.owner.client.createTask(t.workspaceId, { title: "before" });
    await waitFor("the first event", () => tasksCreated(seen.events).includes(before.id), 20_000);

    // Restart the subscription's gateway; write through the other one meanwhile.
    const writer = new TaskboardClient({ baseUrl: mesh.gateways[1]!.url, fetch: checkedFetch(drift), tokens: t.owner.client.tokens! });
    const restarting = mesh.restart("gateway-1", { GATEWAY_PORT: String(realtimePort) });
    await waitFor("the subscription to see the restart", () => seen.statuses.some((s) => s.state === "reconnecting"), 20_000);
    expect(seen.statuses.find((s) => s.state === "reconnecting")?.code).toBe(1012);
    const during: string[] = [];
    for (let i = 0; i < 5; i++) during.push((await writer.createTask(t.workspaceId, { title: `during ${i}` })).id);
    await restarting;
    await connected(sub, seen, 2, 30_000);
    const after = await writer.createTask(t.workspaceId, { title: "after" });
    await waitFor("every event", () => tasksCreated(seen.events).includes(after.id), 30_000);

    expect(tasksCreated(seen.events)).toEqual([before.id, ...during, after.id]);
    const seqs = seen.events.map((e) => e.seq);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
    expect(seen.resets).toEqual([]);
    expect(sub.transport).toBe(transport);
  }, 120_000);

  test("sdk realtime: an unknown epoch is reported as reset (recovered:false), and the subscription continues live", async () => {
    const t = await team();
    await t.owner.client.createTask(t.workspaceId, { title: "history" });
    const sub = t.member.client.realtime(t.workspaceId, { WebSocket, since: 1, epoch: "not-this-history" });
    const seen = record(sub);
    await connected(sub, seen);
    expect(seen.resets).toHaveLength(1);
    expect(seen.resets[0]).toMatchObject({ since: 1, epoch: "not-this-history", connected: { recovered: false } });
    // No catch-up: the task made before does not arrive (live events such as presence may).
    expect(tasksCreated(seen.events)).toEqual([]);
    const live = await t.owner.client.createTask(t.workspaceId, { title: "live" });
    await waitFor("the live event", () => tasksCreated(seen.events).includes(live.id), 20_000);
    expect(tasksCreated(seen.events)).toEqual([live.id]);
  }, 60_000);

  test("sdk realtime: SSE transport (the fallback) delivers connected, then typed events with seq", async () => {
    const t = await team();
    const sub = t.member.client.realtime(t.workspaceId, { transport: "sse" });
    const seen = record(sub);
    await connected(sub, seen);
    expect(sub.transport).toBe("sse");
    const task = await t.owner.client.createTask(t.workspaceId, { title: "streamed" });
    await waitFor("task.created over SSE", () => tasksCreated(seen.events).includes(task.id), 20_000);
    expect(seen.events.find((e) => e.aggregate_id === task.id)).toMatchObject({ type: "task.created", seq: expect.any(Number), data: { title: "streamed" } });
  }, 60_000);

  test("sdk realtime: auto without a WebSocket constructor (Node 20) uses SSE", async () => {
    const t = await team();
    const client = new TaskboardClient({ baseUrl, fetch: checkedFetch(drift), tokens: t.member.client.tokens! });
    const sub = client.realtime(t.workspaceId, { WebSocket: undefined });
    const seen = record(sub);
    if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === "function") {
      expect(sub.transport).toBe("websocket"); // Node 22 has one
    } else {
      expect(sub.transport).toBe("sse");
    }
    await connected(sub, seen);
  }, 60_000);

  test("sdk realtime: the subscription outlives the access token (a fresh one is sent before it expires): no 4001, no reconnect", async () => {
    const t = await team();
    const sub = t.member.client.realtime(t.workspaceId, { WebSocket });
    const seen = record(sub);
    await connected(sub, seen);
    const firstToken = t.member.client.tokens!.access_token;
    await new Promise((resolve) => setTimeout(resolve, (ACCESS_TTL_SECONDS + 3) * 1000));
    expect(t.member.client.tokens!.access_token).not.toBe(firstToken);
    const task = await t.owner.client.createTask(t.workspaceId, { title: "still here" });
    await waitFor("the event on the same connection", () => tasksCreated(seen.events).includes(task.id), 20_000);
    expect(seen.connected).toBe(1);
    expect(seen.statuses.map((s) => s.state)).toEqual(["connecting", "open"]);
  }, 90_000);

  test("sdk realtime: removed from the workspace (4003): the subscription stops and says why", async () => {
    const t = await team();
    const sub = t.member.client.realtime(t.workspaceId, { WebSocket });
    const seen = record(sub);
    await connected(sub, seen);
    await t.owner.client.removeMember(t.workspaceId, t.member.id);
    const end = await sub.closed;
    expect(end.code).toBe(4003);
    expect(seen.statuses.at(-1)).toMatchObject({ state: "closed", code: 4003 });
    expect(seen.errors.some((e) => e.name === "RealtimeClosedError")).toBe(true);
  }, 60_000);

  test("sdk realtime: over the per-user connection limit (429) it keeps retrying with backoff, and connects once a slot frees", async () => {
    const t = await team();
    const holding = Array.from({ length: MAX_CONNECTIONS }, () => t.member.client.realtime(t.workspaceId, { WebSocket }));
    const holdingSeen = holding.map((sub) => record(sub)); // listeners first: each subscription starts at once
    for (const [i, sub] of holding.entries()) await connected(sub, holdingSeen[i]!);
    const extra = t.member.client.realtime(t.workspaceId, { WebSocket, backoff: { capMs: 1_000 } });
    const seen = record(extra);
    await waitFor("refused attempts", () => seen.statuses.filter((s) => s.state === "reconnecting").length >= 3, 30_000);
    expect(seen.connected).toBe(0);
    // A refused upgrade looks like a socket that did not open (browsers tell no status): auto has moved to SSE, where the 429 is seen.
    const refused = seen.statuses.filter((s) => s.state === "reconnecting").at(-1);
    expect(refused?.error).toMatchObject({ name: "TaskboardError", status: 429, code: "rate_limited" });
    // It waits what the server said (Retry-After), not its own 1 s cap.
    expect(refused?.delayMs).toBe(PRESENCE_TTL_SECONDS * 1_000);
    await holding[0]!.close();
    await connected(extra, seen, 1, PRESENCE_TTL_SECONDS * 1_000 + 20_000);
    const task = await t.owner.client.createTask(t.workspaceId, { title: "after the limit" });
    await waitFor("the event", () => tasksCreated(seen.events).includes(task.id), 20_000);
  }, 90_000);

  test("sdk realtime: not a member: the ticket is refused (404) and the subscription ends with that error", async () => {
    const t = await team();
    const stranger = await user("Stranger");
    const sub = stranger.client.realtime(t.workspaceId, { WebSocket });
    record(sub);
    const end = await sub.closed;
    expect(end.error).toMatchObject({ name: "TaskboardError", status: 404 });
  }, 60_000);
});

describe("client SDK: in a browser", () => {
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.newPage();
    // The compiled SDK, unmodified, as the gateway serves it to browsers (/sdk/*.js): ES modules on its origin, so a relative baseUrl works.
    await page.goto(`${baseUrl}/health`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  /** Runs `body` (JavaScript with `sdk`, `email`, `password` in scope) in the page; vitest would rewrite a function's import(). */
  function inPage<T>(body: string, email: string): Promise<T> {
    const script = `(async () => { const sdk = await import("/sdk/index.js"); const email = ${JSON.stringify(email)}; const password = ${JSON.stringify(PASSWORD)}; ${body} })()`;
    return page.evaluate(script) as Promise<T>;
  }

  test("sdk browser: the compiled SDK runs as ES modules with a relative baseUrl: login, tasks, label filter, errors", async () => {
    const result = await inPage<{ titles: string[]; error: unknown }>(
      `
      const client = new sdk.TaskboardClient({ baseUrl: "" });
      await client.register({ name: "Browser", email, password });
      await client.login({ email, password });
      const ws = await client.createWorkspace({ name: "In the browser" });
      await client.createTask(ws.id, { title: "both", labels: ["x", "y"] });
      await client.createTask(ws.id, { title: "one", labels: ["x"] });
      const both = await client.listTasks(ws.id, { label: ["x", "y"] });
      let error;
      try {
        await client.getTask("00000000-0000-4000-8000-000000000000");
      } catch (e) {
        error = { name: e.name, status: e.status, code: e.code };
      }
      return { titles: both.items.map((t) => t.title), error };`,
      `browser.${process.pid}.${Date.now()}@example.com`,
    );
    expect(result.titles).toEqual(["both"]);
    expect(result.error).toEqual({ name: "TaskboardError", status: 404, code: "not_found" });
  }, 60_000);

  test("sdk browser: realtime over the browser's own WebSocket: connected, then a task.created event", async () => {
    const result = await inPage<{ outcome: string; transport: string }>(
      `
      const client = new sdk.TaskboardClient({ baseUrl: "" });
      await client.register({ name: "Browser", email, password });
      await client.login({ email, password });
      const ws = await client.createWorkspace({ name: "Live in the browser" });
      const sub = client.realtime(ws.id);
      const outcome = await new Promise((resolve) => {
        sub.on("task.created", (e) => resolve("event " + e.data.title + " " + typeof e.seq));
        sub.on("connected", () => void client.createTask(ws.id, { title: "seen live" }));
        void sub.closed.then((end) => resolve("ended: " + end.reason));
        setTimeout(() => resolve("timed out"), 20000);
      });
      const transport = sub.transport;
      await sub.close();
      return { outcome, transport };`,
      `browser.rt.${process.pid}.${Date.now()}@example.com`,
    );
    expect(result).toEqual({ outcome: "event seen live number", transport: "websocket" });
  }, 60_000);
});
