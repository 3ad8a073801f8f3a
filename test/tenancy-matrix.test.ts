import { generateKeyPairSync } from "node:crypto";
import { importPKCS8, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { pathParameters } from "../internal/gateway/router.js";
import { routeTable } from "../internal/gateway/routes/index.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { SseClient } from "./support/sse.js";
import { RoomClient } from "./support/ws.js";

// The tenancy attack matrix: user B, signed in but no member of user A's workspace, aims
// every route of the route table and every real-time path at A's resources, with valid
// bodies so that only authorisation stands in the way. Each answer must be 403 or 404 and
// carry none of A's data; then forged and stale tokens against A's resources are 401.

const { privateKey: signingKeyPem, publicKey: publicKeyPem } = generateKeyPairSync("ed25519", {
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

let mesh: Mesh;
let a: SignedUp;
let b: SignedUp;
/** A's resources, by path parameter name. */
const ids: Record<string, string> = {};
/** Strings only A's resources contain: none may appear in an answer to B. */
const SECRET = `secret-${Date.now()}`;

beforeAll(async () => {
  mesh = await Mesh.start({ env: { JWT_PRIVATE_KEY: signingKeyPem } });
  [a, b] = (await Promise.all([signUp(mesh.api, "Alice"), signUp(mesh.api, "Bob")])) as [SignedUp, SignedUp];
  const ws = await a.api.post("/workspaces", { name: `${SECRET} workspace`, description: SECRET });
  const task = await a.api.post(`/workspaces/${ws.body.id}/tasks`, { title: `${SECRET} task`, description: SECRET });
  const comment = await a.api.post(`/workspaces/${ws.body.id}/comments`, { task_id: task.body.id, content: `${SECRET} comment` });
  const job = await a.api.post(`/workspaces/${ws.body.id}/exports`, { type: "tasks", format: "csv" });
  const group = await a.api.post(`/workspaces/${ws.body.id}/groups`, { name: `${SECRET} group` });
  await a.api.put(`/workspaces/${ws.body.id}/groups/${group.body.id}/members/${a.id}`);
  await a.api.post(`/workspaces/${ws.body.id}/groups/${group.body.id}/broadcast`, { content: SECRET });
  // A public address given as such (no DNS here); it hears only of a webhook being disabled.
  const hook = await a.api.post(`/workspaces/${ws.body.id}/webhooks`, { url: "https://93.184.215.14/hook", events: ["webhook.disabled"], description: SECRET });
  expect(hook.status, hook.text).toBe(201);
  Object.assign(ids, {
    workspace_id: ws.body.id,
    task_id: task.body.id,
    comment_id: comment.body.id,
    job_id: job.body.id,
    user_id: a.id,
    group_id: group.body.id,
    webhook_id: hook.body.id,
    delivery_id: "00000000-0000-4000-8000-000000000000",
  });
  for (const id of Object.values(ids)) expect(id).toMatch(/^[0-9a-f-]{36}$/);
});

afterAll(() => mesh?.stop());

/** A body each route accepts from someone allowed to call it. */
const validBodies: Record<string, unknown> = {
  updateUser: { name: "Taken over" },
  updateWorkspace: { name: "Taken over" },
  addMember: { user_id: "", role: "admin" },
  updateMemberRole: { role: "admin" },
  createTask: { title: "planted" },
  updateTask: { title: "Taken over" },
  assignTask: { assignee_id: "" },
  createComment: { task_id: "", content: "planted" },
  updateComment: { content: "Taken over" },
  createExport: { type: "tasks", format: "json" },
  createRealtimeTicket: { workspace_id: "" },
  broadcastMessage: { content: "planted" },
  createGroup: { name: "planted" },
  createWebhook: { url: "https://93.184.215.14/planted", events: ["task.*"] },
  updateWebhook: { active: false },
  broadcastToGroup: { content: "planted" },
};

describe("tenancy matrix", () => {
  test("tenancy: B's token on every route aimed at A's resources is 403 or 404 and leaks nothing; A's resources are unchanged", async () => {
    const bodies: Record<string, unknown> = JSON.parse(
      JSON.stringify(validBodies).replaceAll('"user_id":""', `"user_id":"${b.id}"`).replaceAll('"assignee_id":""', `"assignee_id":"${b.id}"`).replaceAll('"task_id":""', `"task_id":"${ids["task_id"]}"`).replaceAll('"workspace_id":""', `"workspace_id":"${ids["workspace_id"]}"`),
    );
    const aimed = routeTable().filter((r) => pathParameters(r.path).length > 0 && r.auth !== "public");
    const answers: string[] = [];
    for (const route of aimed) {
      const path = route.path.replace(/\{([a-z_]+)\}/g, (_, name: string) => ids[name]!);
      const body = route.body ? bodies[route.doc.operationId] : undefined;
      if (route.body) expect(body, `a valid body for ${route.doc.operationId}`).toBeDefined();
      const res = await b.api.request(route.method.toUpperCase(), path, { body });
      answers.push(`${route.method} ${route.path} → ${res.status}`);
      expect([403, 404], `${route.doc.operationId}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
      expect(res.text).not.toContain(SECRET);
    }
    // Routes that take A's ids in the body rather than the path.
    const planted = [
      await b.api.post(`/workspaces/${ids["workspace_id"]}/comments`, { task_id: ids["task_id"], content: "planted" }),
      await b.api.post("/realtime/tickets", { workspace_id: ids["workspace_id"] }),
    ];
    for (const res of planted) expect([403, 404]).toContain(res.status);
    // Lists of B's own see nothing of A's.
    for (const path of ["/workspaces", `/users/${b.id}`]) expect((await b.api.get(path)).text).not.toContain(SECRET);
    expect((await b.api.get("/users")).status).toBe(403);
    // A's resources are as they were.
    const task = await a.api.get(`/tasks/${ids["task_id"]}`);
    expect(task.body.title).toBe(`${SECRET} task`);
    expect(task.body.assignee_id).toBeNull();
    expect((await a.api.get(`/workspaces/${ids["workspace_id"]}/members`)).body.items.map((m: { user_id: string }) => m.user_id)).toEqual([a.id]);
    expect((await a.api.get(`/workspaces/${ids["workspace_id"]}/tasks`)).body.items).toHaveLength(1);
    expect(answers.length).toBeGreaterThan(25);
  });

  test("tenancy: B reaches none of A's real-time paths: WebSocket join (with and without since), SSE, a ticket", async () => {
    const ws = ids["workspace_id"]!;
    for (const query of [`token=${b.accessToken}`, `token=${b.accessToken}&since=0`, `token=${b.accessToken}&since=1&epoch=x`]) {
      const refused = await RoomClient.refusal(mesh.url, `/ws/${ws}?${query}`);
      expect(refused.status).toBe(404);
      expect(refused.body).not.toContain(SECRET);
    }
    const sse = await SseClient.open(mesh.url, ws, { token: b.accessToken, since: 0 });
    expect(sse.status).toBe(404);
    // B's own ticket, for B's own workspace, does not open A's.
    const own = await b.api.post("/workspaces", { name: "Bob's" });
    const ticket = (await b.api.post("/realtime/tickets", { workspace_id: own.body.id })).body.ticket;
    expect((await RoomClient.refusal(mesh.url, `/ws/${ws}?ticket=${ticket}`)).status).toBe(401);
  });

  test("tenancy: forged and stale tokens against A's resources are 401: alg none, HS256 keyed with the public key, expired, not yet valid, wrong issuer or audience, unknown key id, a deleted user's", async () => {
    const realKey = await importPKCS8(signingKeyPem, "EdDSA");
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: a.id, role: "admin", name: "Alice", iss: "taskboard", aud: "taskboard", iat: now, exp: now + 600 };
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const sign = (extra: object, header: object = {}) => new SignJWT({ ...claims, ...extra }).setProtectedHeader({ alg: "EdDSA", ...header }).sign(realKey);
    const doomed = await signUp(mesh.api, "Doomed");
    expect((await doomed.api.delete(`/users/${doomed.id}`)).status).toBe(204);
    const forgeries: [string, string][] = [
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`],
      ["HS256 keyed with the public key", await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(publicKeyPem))],
      ["expired", await sign({ iat: now - 3600, exp: now - 60 })],
      ["not yet valid", await sign({ nbf: now + 3600 })],
      ["wrong issuer", await sign({ iss: "elsewhere" })],
      ["wrong audience", await sign({ aud: "elsewhere" })],
      ["unknown key id", await sign({}, { kid: "not-a-key-of-ours" })],
    ];
    for (const [what, token] of forgeries) {
      const res = await mesh.api.get(`/workspaces/${ids["workspace_id"]}`, { token });
      expect(res.status, what).toBe(401);
      expect(res.text, what).not.toContain(SECRET);
      expect((await RoomClient.refusal(mesh.url, `/ws/${ids["workspace_id"]}?token=${token}`)).status, `${what} (WebSocket)`).toBe(401);
    }
    // The deleted user's token is still well-formed and unexpired: it reaches nothing of A's and creates nothing.
    expect([401, 404]).toContain((await doomed.api.get(`/workspaces/${ids["workspace_id"]}`)).status);
    expect((await doomed.api.post("/workspaces", { name: "After death" })).status).toBe(401);
  });
});
