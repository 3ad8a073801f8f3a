import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";
import { RoomClient } from "./support/ws.js";

// Limits per user and per workspace (API.md "Abuse limits and browsers"), counted in Redis
// across gateway replicas: 429 with Retry-After, other users unaffected.

const API_PER_USER = 8;
const MESSAGES_PER_USER = 3;
const EXPORTS_PER_WORKSPACE = 2;
const EMAIL_CHANGES_PER_HOUR = 2;

let mesh: Mesh;
const sockets: RoomClient[] = [];

beforeAll(async () => {
  mesh = await Mesh.start({
    gateways: 2,
    env: {
      RATE_LIMIT_API_PER_USER: String(API_PER_USER),
      RATE_LIMIT_WS_MESSAGES_PER_USER: String(MESSAGES_PER_USER),
      EXPORT_MAX_ACTIVE_PER_WORKSPACE: String(EXPORTS_PER_WORKSPACE),
      RATE_LIMIT_EMAIL_CHANGES_PER_HOUR: String(EMAIL_CHANGES_PER_HOUR),
    },
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await mesh?.stop();
});

describe("limits", () => {
  test("limits: a user moves their own e-mail at most RATE_LIMIT_EMAIL_CHANGES_PER_HOUR times an hour; a move to a taken address (409, which tells it has an account) counts, saving the same address does not", async () => {
    const [ann, bob] = await Promise.all([signUp(mesh.api, "Ann"), signUp(mesh.api, "Bob")]);
    const moved = `moved.${ann.id}@example.com`;
    expect((await ann.api.put(`/users/${ann.id}`, { email: moved })).status).toBe(200);
    expect((await ann.api.put(`/users/${ann.id}`, { email: moved.toUpperCase(), name: "Ann B" })).status).toBe(200);
    expect((await ann.api.put(`/users/${ann.id}`, { email: bob.email })).status).toBe(409);
    const limited = await ann.api.put(`/users/${ann.id}`, { email: `third.${ann.id}@example.com` });
    expect(limited.status, limited.text).toBe(429);
    expect(limited.body.error.code).toBe("rate_limited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(60);
    expect(Number(limited.headers.get("retry-after"))).toBeLessThanOrEqual(3_600);
    // A refused move changes nothing; other changes go on; other users are not counted with Ann.
    expect((await ann.api.put(`/users/${ann.id}`, { name: "Ann C" })).body).toMatchObject({ name: "Ann C", email: moved });
    expect((await bob.api.put(`/users/${bob.id}`, { email: `moved.${bob.id}@example.com` })).status).toBe(200);
  });

  test("limits: authenticated requests beyond RATE_LIMIT_API_PER_USER a minute are 429 with Retry-After; other users and public routes are not affected", async () => {
    const [busy, calm] = (await Promise.all([signUp(mesh.api, "Busy"), signUp(mesh.api, "Calm")])) as [SignedUp, SignedUp];
    const statuses: number[] = [];
    for (let i = 0; i < API_PER_USER + 2; i++) statuses.push((await busy.api.get("/workspaces")).status);
    expect(statuses.slice(0, API_PER_USER)).toEqual(Array(API_PER_USER).fill(200));
    expect(statuses.slice(API_PER_USER)).toEqual([429, 429]);
    const limited = await busy.api.get("/workspaces");
    expect(limited.body.error.code).toBe("rate_limited");
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await calm.api.get("/workspaces")).status).toBe(200);
    expect((await mesh.api.get("/health")).status).toBe(200);
  });

  test("limits: the per-user count is shared by the replicas", async () => {
    const user = await signUp(mesh.api, "Roaming");
    const statuses: number[] = [];
    for (let i = 0; i < API_PER_USER + 1; i++) {
      const res = await fetch(`${mesh.gateways[i % 2]!.url}/workspaces`, { headers: { authorization: `Bearer ${user.accessToken}` } });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(API_PER_USER);
    expect(statuses.at(-1)).toBe(429);
  });

  test("limits: custom messages beyond RATE_LIMIT_WS_MESSAGES_PER_USER a minute, over all of a user's sockets, get a rate_limited error frame and are not delivered", async () => {
    const owner = await signUp(mesh.api, "Chatty");
    const workspaceId = (await owner.api.post("/workspaces", { name: "Chat" })).body.id;
    const [a, b] = await Promise.all(mesh.gateways.map((g) => RoomClient.open(g.url, workspaceId, owner.accessToken)));
    sockets.push(a!, b!);
    for (let i = 0; i < MESSAGES_PER_USER + 2; i++) (i % 2 ? b! : a!).send({ type: "custom.message", data: { n: i } });
    await waitFor("two rate_limited error frames", () => [...a!.frames, ...b!.frames].filter((f) => f.type === "error" && f.code === "rate_limited").length === 2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const delivered = a!.events.filter((f) => f.type === "custom.message");
    expect(delivered).toHaveLength(MESSAGES_PER_USER);
  });

  test("limits: a workspace has at most EXPORT_MAX_ACTIVE_PER_WORKSPACE pending or running exports; one more is 429 until one is done", async () => {
    const owner = await signUp(mesh.api, "Exporter");
    const workspaceId = (await owner.api.post("/workspaces", { name: "Exports" })).body.id;
    const jobs: string[] = [];
    for (let i = 0; i < EXPORTS_PER_WORKSPACE; i++) {
      const created = await owner.api.post(`/workspaces/${workspaceId}/exports`, { type: "tasks", format: "csv" });
      expect(created.status).toBe(202);
      jobs.push(created.body.id);
    }
    // Hold both as if they were long exports still running.
    await waitFor("the jobs to finish", async () => {
      const rows = await mesh.sql()`select count(*)::int as n from export.jobs where workspace_id = ${workspaceId} and status = 'completed'`;
      return rows[0]!.n === EXPORTS_PER_WORKSPACE;
    });
    await mesh.sql()`update export.jobs set status = 'running' where workspace_id = ${workspaceId}`;
    const refused = await owner.api.post(`/workspaces/${workspaceId}/exports`, { type: "tasks", format: "json" });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const other = (await owner.api.post("/workspaces", { name: "Other" })).body.id;
    expect((await owner.api.post(`/workspaces/${other}/exports`, { type: "tasks", format: "csv" })).status).toBe(202);
    await mesh.sql()`update export.jobs set status = 'completed' where id = ${jobs[0]!}`;
    expect((await owner.api.post(`/workspaces/${workspaceId}/exports`, { type: "tasks", format: "json" })).status).toBe(202);
  });
});
