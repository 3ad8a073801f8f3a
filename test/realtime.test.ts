import { generateKeyPairSync } from "node:crypto";
import { importPKCS8, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { logIn, signUp, type Api, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";
import { RoomClient, type Frame } from "./support/ws.js";

const { privateKey: signingKeyPem } = generateKeyPairSync("ed25519", {
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const ADMIN = { email: "root@example.com", password: "RootPassw0rd" };

let mesh: Mesh;
let gateway2: string;
const clients: RoomClient[] = [];

beforeAll(async () => {
  mesh = await Mesh.start({
    gateways: 2,
    env: {
      JWT_PRIVATE_KEY: signingKeyPem,
      BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
      BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      PRESENCE_DEBOUNCE_MS: "300",
      WS_MAX_BACKPRESSURE_BYTES: "65536",
    },
  });
  gateway2 = mesh.gateways[1]!.url;
});

afterAll(async () => {
  for (const client of clients) client.terminate();
  await mesh?.stop();
});

async function open(baseUrl: string, workspaceId: string, token: string, since?: number): Promise<RoomClient> {
  const client = await RoomClient.open(baseUrl, workspaceId, token, since);
  clients.push(client);
  return client;
}

interface Team {
  workspaceId: string;
  owner: SignedUp;
  member: SignedUp;
}

async function team(name = "Team"): Promise<Team> {
  const [owner, member] = await Promise.all([signUp(mesh.api, `${name}Owner`), signUp(mesh.api, `${name}Member`)]);
  const ws = await owner!.api.post("/workspaces", { name });
  expect(ws.status).toBe(201);
  expect((await owner!.api.post(`/workspaces/${ws.body.id}/members`, { user_id: member!.id, role: "member" })).status).toBe(201);
  // These tests count a room's events exactly: keep notify's notification.* events out of them.
  for (const user of [owner!, member!]) {
    expect((await user.api.put(`/users/${user.id}`, { email_notifications: false })).status).toBe(200);
  }
  return { workspaceId: ws.body.id, owner: owner!, member: member! };
}

/** Creates tasks one after another (each committed before the next); returns their ids in commit order. */
async function createTasks(api: Api, workspaceId: string, count: number, prefix = "task"): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await api.post(`/workspaces/${workspaceId}/tasks`, { title: `${prefix} ${i}` });
    expect(res.status).toBe(201);
    ids.push(res.body.id);
  }
  return ids;
}

/** Every stored event of a workspace, from the events API (the ground truth for resume checks). */
async function storedEvents(api: Api, workspaceId: string): Promise<{ seq: number; type: string; aggregate_id: string }[]> {
  const all: { seq: number; type: string; aggregate_id: string }[] = [];
  let cursor: string | null = null;
  do {
    const page: { status: number; body: { items: { seq: number; type: string; aggregate_id: string }[]; next_cursor: string | null } } =
      await api.get(`/workspaces/${workspaceId}/events?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    expect(page.status).toBe(200);
    all.push(...page.body.items);
    cursor = page.body.next_cursor;
  } while (cursor);
  return all;
}

const seqs = (frames: Frame[]) => frames.map((f) => f.seq!);
const isStrictlyIncreasing = (values: number[]) => values.every((v, i) => i === 0 || v > values[i - 1]!);

async function metric(gatewayLabel: string, name: string): Promise<number> {
  const port = mesh.processes.get(gatewayLabel)!.ports["admin"];
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("rooms", () => {
  test("realtime: a client gets `connected`, then every event of its room with the envelope and seq, in commit order", async () => {
    const t = await team();
    const client = await open(mesh.url, t.workspaceId, t.member.accessToken);
    expect(client.frames[0]).toEqual({
      type: "connected",
      workspace_id: t.workspaceId,
      connection_id: expect.any(String),
      seq: expect.any(Number),
      epoch: expect.stringMatching(/.+/),
      first_seq: expect.any(Number),
    });
    const ids = await createTasks(t.owner.api, t.workspaceId, 25);
    const created = await client.waitForEvents("task.created", 25, (f) => f.type === "task.created");
    expect(created.map((f) => f.aggregate_id)).toEqual(ids);
    expect(isStrictlyIncreasing(seqs(client.events))).toBe(true);
    expect(created[0]).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      type: "task.created",
      workspace_id: t.workspaceId,
      user_id: t.owner.id,
      aggregate_id: ids[0],
      data: expect.objectContaining({ id: ids[0], title: "task 0", status: "pending", priority: "medium", workspace_id: t.workspaceId }),
      timestamp: expect.any(Number),
      seq: expect.any(Number),
    });
    expect(created[0]!.seq).toBeGreaterThan(client.connected.seq!);
  });

  test("realtime: two workspaces never see each other's events", async () => {
    const [a, b] = await Promise.all([team("Alpha"), team("Beta")]);
    const inA = await open(mesh.url, a.workspaceId, a.member.accessToken);
    const inB = await open(gateway2, b.workspaceId, b.member.accessToken);
    await Promise.all([createTasks(a.owner.api, a.workspaceId, 10, "alpha"), createTasks(b.owner.api, b.workspaceId, 10, "beta")]);
    await inA.waitForEvents("alpha tasks", 10, (f) => f.type === "task.created");
    await inB.waitForEvents("beta tasks", 10, (f) => f.type === "task.created");
    expect(inA.events.every((f) => f.workspace_id === a.workspaceId)).toBe(true);
    expect(inB.events.every((f) => f.workspace_id === b.workspaceId)).toBe(true);
    expect(JSON.stringify(inA.frames)).not.toContain("beta");
    expect(JSON.stringify(inB.frames)).not.toContain("alpha");
  });

  test("realtime: every upgrade yields a working socket, through rounds of connects and disconnects on a busy and an idle replica", async () => {
    const t = await team();
    // Replica 1 keeps another socket open; replica 2 has none between rounds.
    const resident = await open(mesh.url, t.workspaceId, t.owner.accessToken);
    for (let round = 0; round < 15; round++) {
      for (const url of [mesh.url, gateway2]) {
        const client = await RoomClient.open(url, t.workspaceId, t.member.accessToken);
        client.send({ type: "ping" });
        await client.waitFor(`pong in round ${round}`, (f) => f.type === "pong");
        client.close();
        await client.waitForClose();
      }
    }
    expect(resident.closed).toBeUndefined();
  });

  test.each([
    ["a bad token", (t: Team) => `/ws/${t.workspaceId}?token=not-a-token`, 401],
    ["no token", (t: Team) => `/ws/${t.workspaceId}`, 401],
    ["a non-member", (t: Team, outsider: SignedUp) => `/ws/${t.workspaceId}?token=${outsider.accessToken}`, 404],
    ["an unknown workspace", (_t: Team, outsider: SignedUp) => `/ws/00000000-0000-4000-8000-000000000000?token=${outsider.accessToken}`, 404],
    ["a bad since", (t: Team) => `/ws/${t.workspaceId}?token=${t.member.accessToken}&since=-4`, 400],
  ] as const)("realtime: the upgrade is refused before the socket opens for %s", async (_, path, status) => {
    const t = await team();
    const outsider = await signUp(mesh.api, "Outsider");
    const refused = await RoomClient.refusal(mesh.url, path(t, outsider));
    expect(refused.status).toBe(status);
    expect(JSON.parse(refused.body).error.code).toEqual(expect.any(String));
  });
});

describe("replicas", () => {
  test("realtime: clients on two replicas each get every event of their room; a replica without clients in the room receives none of it", async () => {
    const [shared, elsewhere] = await Promise.all([team("Shared"), team("Elsewhere")]);
    // Replica 2 hosts only the other room.
    const onOther = await open(gateway2, elsewhere.workspaceId, elsewhere.member.accessToken);
    const on1 = await open(mesh.url, shared.workspaceId, shared.member.accessToken);
    const before = await metric("gateway-2", "taskboard_ws_events_received_total");
    const ids = await createTasks(shared.owner.api, shared.workspaceId, 15);
    await on1.waitForEvents("shared tasks", 15, (f) => f.type === "task.created");
    // A marker event in replica 2's own room proves it processed everything published before it.
    await createTasks(elsewhere.owner.api, elsewhere.workspaceId, 1, "marker");
    await onOther.waitForEvents("marker", 1, (f) => f.type === "task.created");
    expect(await metric("gateway-2", "taskboard_ws_events_received_total")).toBe(before + 1);

    const on2 = await open(gateway2, shared.workspaceId, shared.owner.accessToken);
    const more = await createTasks(shared.member.api, shared.workspaceId, 10, "more");
    const seen1 = await on1.waitForEvents("all tasks on replica 1", 25, (f) => f.type === "task.created");
    const seen2 = await on2.waitForEvents("later tasks on replica 2", 10, (f) => f.type === "task.created");
    expect(seen1.map((f) => f.aggregate_id)).toEqual([...ids, ...more]);
    expect(seen2.map((f) => f.aggregate_id)).toEqual(more);
  });

  test("realtime: custom messages and broadcasts reach the room on every replica, the sender included", async () => {
    const t = await team();
    const a = await open(mesh.url, t.workspaceId, t.member.accessToken);
    const b = await open(gateway2, t.workspaceId, t.owner.accessToken);
    a.send({ type: "custom.message", data: { text: "hello from a" } });
    const broadcast = await t.owner.api.post(`/workspaces/${t.workspaceId}/broadcast`, { content: "all hands" });
    expect(broadcast.status).toBe(202);
    expect(broadcast.body).toMatchObject({ type: "custom.message", data: { content: "all hands", broadcast: true }, seq: expect.any(Number) });
    for (const client of [a, b]) {
      await client.waitFor("the custom message", (f) => f.type === "custom.message" && f.data.text === "hello from a" && f.user_id === t.member.id);
      await client.waitFor("the broadcast", (f) => f.type === "custom.message" && f.data.content === "all hands");
    }
    expect((await t.member.api.post(`/workspaces/${t.workspaceId}/broadcast`, { content: "x" })).status).toBe(403);
  });
});

describe("resume", () => {
  test("realtime: after a drop, reconnecting with since gets every missed event in order, without duplicates, then the live stream", async () => {
    const t = await team();
    const first = await open(mesh.url, t.workspaceId, t.member.accessToken);
    await createTasks(t.owner.api, t.workspaceId, 5, "before");
    await first.waitForEvents("first five", 5, (f) => f.type === "task.created");
    const lastSeen = first.events.at(-1)!.seq!;
    first.terminate();
    const missed = await createTasks(t.owner.api, t.workspaceId, 8, "while away");
    const second = await open(mesh.url, t.workspaceId, t.member.accessToken, lastSeen);
    const live = await createTasks(t.owner.api, t.workspaceId, 4, "after");
    await second.waitForEvents("missed and live", 12, (f) => f.type === "task.created");
    expect(second.events.filter((f) => f.type === "task.created").map((f) => f.aggregate_id)).toEqual([...missed, ...live]);
    const stored = (await storedEvents(t.owner.api, t.workspaceId)).filter((e) => e.seq > lastSeen);
    await waitFor("every stored event on the client", () => second.events.length >= stored.length);
    expect(seqs(second.events)).toEqual(stored.map((e) => e.seq));
  });

  test("realtime: when a client's replica stops, it resumes on another replica with since and misses nothing while writes go on", async () => {
    const t = await team();
    const extra = await mesh.startGateway();
    const client = await open(extra.url, t.workspaceId, t.member.accessToken);
    let writing = true;
    const written: string[] = [];
    const writer = (async () => {
      for (let i = 0; writing || i < 10; i++) {
        const res = await t.owner.api.post(`/workspaces/${t.workspaceId}/tasks`, { title: `stream ${i}` });
        expect(res.status).toBe(201);
        written.push(res.body.id);
      }
    })();
    await client.waitForEvents("some events", 3, (f) => f.type === "task.created");
    await extra.process.stop("SIGTERM");
    const closed = await client.waitForClose();
    expect(closed.code).toBe(1012);
    const lastSeen = client.events.at(-1)!.seq!;
    const resumed = await open(mesh.url, t.workspaceId, t.member.accessToken, lastSeen);
    writing = false;
    await writer;
    const all = [...client.events, ...resumed.events].filter((f) => f.type === "task.created");
    await waitFor("every written task on the client", () => [...client.events, ...resumed.events].filter((f) => f.type === "task.created").length >= written.length);
    const received = [...client.events, ...resumed.events];
    expect(isStrictlyIncreasing(seqs(received))).toBe(true);
    expect(received.filter((f) => f.type === "task.created").map((f) => f.aggregate_id)).toEqual(written);
    expect(all.length).toBeGreaterThan(0);
    const stored = await storedEvents(t.owner.api, t.workspaceId);
    const firstSeq = received[0]!.seq!;
    expect(seqs(received)).toEqual(stored.filter((e) => e.seq >= firstSeq && e.seq <= received.at(-1)!.seq!).map((e) => e.seq));
  });

  test("realtime: a client ahead of a fresh replica's room waits and gets only later events", async () => {
    const t = await team();
    const a = await open(mesh.url, t.workspaceId, t.member.accessToken);
    await createTasks(t.owner.api, t.workspaceId, 3);
    await a.waitForEvents("three", 3, (f) => f.type === "task.created");
    const last = a.events.at(-1)!.seq!;
    const b = await open(gateway2, t.workspaceId, t.member.accessToken, last);
    const later = await createTasks(t.owner.api, t.workspaceId, 2, "later");
    await b.waitForEvents("two later", 2, (f) => f.type === "task.created");
    expect(b.events.filter((f) => f.type === "task.created").map((f) => f.aggregate_id)).toEqual(later);
    expect(b.events.every((f) => f.seq! > last)).toBe(true);
  });
});

describe("protection", () => {
  test("realtime: ping is answered with pong; bad frames get an error frame and the socket stays open", async () => {
    const t = await team();
    const client = await open(mesh.url, t.workspaceId, t.member.accessToken);
    client.send({ type: "ping" });
    await client.waitFor("pong", (f) => f.type === "pong");
    client.send("{not json");
    client.send({ type: "dance" });
    client.send({ type: "custom.message", data: "not an object" });
    client.send(JSON.stringify({ type: "custom.message", data: { blob: "x".repeat(70 * 1024) } }));
    await client.waitFor("invalid_json", (f) => f.type === "error" && f.code === "invalid_json");
    await client.waitFor("unknown_type", (f) => f.type === "error" && f.code === "unknown_type");
    await client.waitFor("validation_failed", (f) => f.type === "error" && f.code === "validation_failed");
    await client.waitFor("frame_too_large", (f) => f.type === "error" && f.code === "frame_too_large");
    client.send({ type: "ping" });
    await waitFor("a second pong", () => client.frames.filter((f) => f.type === "pong").length === 2);
    expect(client.closed).toBeUndefined();
    expect(client.events.filter((f) => f.type === "custom.message")).toEqual([]);
  });

  test("realtime: a client that floods is rate limited, then closed", async () => {
    const t = await team();
    const client = await open(mesh.url, t.workspaceId, t.member.accessToken);
    for (let i = 0; i < 200 && !client.closed; i++) client.send({ type: "ping" });
    await client.waitFor("rate_limited", (f) => f.type === "error" && f.code === "rate_limited");
    expect((await client.waitForClose()).code).toBe(1008);
    expect(client.frames.filter((f) => f.type === "pong").length).toBeLessThanOrEqual(45);
  });

  test("realtime: a client that cannot keep up is closed with 1013 while the room goes on at full speed", async () => {
    const t = await team();
    const slow = await open(mesh.url, t.workspaceId, t.member.accessToken);
    const fast = await open(mesh.url, t.workspaceId, t.owner.accessToken);
    slow.pauseReading();
    const content = "y".repeat(9_000);
    // Loopback kernel buffers absorb several MB before the gateway's own buffer grows.
    const count = 1500;
    const publishing = (async () => {
      for (let i = 0; i < count; i++) {
        const res = await t.owner.api.post(`/workspaces/${t.workspaceId}/broadcast`, { content: `${i} ${content}` });
        expect(res.status).toBe(202);
      }
    })();
    // Read again as soon as the gateway has dropped the client: its close frame waits behind
    // what it had buffered, and uWS gives a peer that never reads only so long to take it.
    await waitFor("the gateway to drop the slow client", async () => (await metric("gateway-1", "taskboard_ws_dropped_slow_clients_total")) > 0, 90_000, 100);
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.waitForClose(20_000)).code).toBe(1013);
    await publishing;
    await fast.waitForEvents("every broadcast on the fast client", count, (f) => f.type === "custom.message", 60_000);
    // What the slow client did get has no gap: a prefix of the room's stored events after its connect.
    const got = seqs(slow.events);
    const stored = (await storedEvents(t.owner.api, t.workspaceId)).filter((e) => e.seq > slow.connected.seq!);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(stored.slice(0, got.length).map((e) => e.seq));
  });

  test("realtime: a member removed from the workspace is disconnected at once and gets nothing more", async () => {
    const t = await team();
    const member = await open(gateway2, t.workspaceId, t.member.accessToken);
    const owner = await open(mesh.url, t.workspaceId, t.owner.accessToken);
    expect((await t.owner.api.delete(`/workspaces/${t.workspaceId}/members/${t.member.id}`)).status).toBe(204);
    expect((await member.waitForClose()).code).toBe(4003);
    const received = member.frames.length;
    await createTasks(t.owner.api, t.workspaceId, 2);
    await owner.waitForEvents("tasks after the removal", 2, (f) => f.type === "task.created");
    expect(member.frames.length).toBe(received);
    expect((await RoomClient.refusal(mesh.url, `/ws/${t.workspaceId}?token=${t.member.accessToken}`)).status).toBe(404);
  });

  test("realtime: an expired token closes the socket unless a fresh one was sent before expiry", async () => {
    const t = await team();
    const key = await importPKCS8(signingKeyPem, "EdDSA");
    const token = (user: SignedUp, seconds: number) =>
      new SignJWT({ role: "user", name: user.name })
        .setProtectedHeader({ alg: "EdDSA" })
        .setSubject(user.id)
        .setIssuer("taskboard")
        .setAudience("taskboard")
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
        .sign(key);
    const lapsing = await open(mesh.url, t.workspaceId, await token(t.member, 3));
    const renewing = await open(mesh.url, t.workspaceId, await token(t.owner, 3));
    renewing.send({ type: "auth", token: await token(t.owner, 600) });
    renewing.send({ type: "auth", token: await token(t.member, 600) });
    await renewing.waitFor("refusal of another user's token", (f) => f.type === "error" && f.code === "forbidden");
    expect((await lapsing.waitForClose(8_000)).code).toBe(4001);
    await createTasks(t.owner.api, t.workspaceId, 1, "after expiry");
    await renewing.waitForEvents("an event after the first token expired", 1, (f) => f.type === "task.created");
    expect(renewing.closed).toBeUndefined();
  });
});

describe("presence and events API", () => {
  test("realtime: presence lists who is connected on any replica; joins and debounced leaves are events", async () => {
    const t = await team();
    const watcher = await open(mesh.url, t.workspaceId, t.owner.accessToken);
    const member = await open(gateway2, t.workspaceId, t.member.accessToken);
    const list = await t.owner.api.get(`/workspaces/${t.workspaceId}/presence`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((p: { user_id: string }) => p.user_id).sort()).toEqual([t.owner.id, t.member.id].sort());
    await watcher.waitFor("presence.joined", (f) => f.type === "presence.joined" && f.data.user_id === t.member.id);
    // A quick reconnect is not a leave: had the drop counted, its presence.left would
    // arrive before the one of the final close, and a second presence.joined would follow.
    member.terminate();
    const again = await open(gateway2, t.workspaceId, t.member.accessToken);
    again.close();
    await watcher.waitFor("presence.left", (f) => f.type === "presence.left" && f.data.user_id === t.member.id);
    const ofMember = (type: string) => watcher.events.filter((f) => f.type === type && f.data.user_id === t.member.id);
    expect(ofMember("presence.left")).toHaveLength(1);
    expect(ofMember("presence.joined")).toHaveLength(1);
    const after = await t.owner.api.get(`/workspaces/${t.workspaceId}/presence`);
    expect(after.body.items.map((p: { user_id: string }) => p.user_id)).toEqual([t.owner.id]);
    const outsider = await signUp(mesh.api, "Peeker");
    expect((await outsider.api.get(`/workspaces/${t.workspaceId}/presence`)).status).toBe(404);
  });

  test("realtime: stored events are listed with filters and pages", async () => {
    const t = await team();
    const ids = await createTasks(t.owner.api, t.workspaceId, 6);
    await t.owner.api.put(`/tasks/${ids[2]}`, { status: "completed" });
    const all = await storedEvents(t.owner.api, t.workspaceId);
    expect(all.map((e) => e.type)).toEqual([
      "workspace.created",
      "member.added",
      ...Array(6).fill("task.created"),
      "task.updated",
    ]);
    const byType = await t.member.api.get(`/workspaces/${t.workspaceId}/events?type=task.updated`);
    expect(byType.body.items).toEqual([expect.objectContaining({ type: "task.updated", aggregate_id: ids[2], seq: expect.any(Number) })]);
    const byAggregate = await t.member.api.get(`/workspaces/${t.workspaceId}/events?aggregate_id=${ids[2]}`);
    expect(byAggregate.body.items.map((e: { type: string }) => e.type)).toEqual(["task.created", "task.updated"]);
    const sinceSeq = await t.member.api.get(`/workspaces/${t.workspaceId}/events?since=${all[5]!.seq}`);
    expect(sinceSeq.body.items.map((e: { seq: number }) => e.seq)).toEqual(all.slice(6).map((e) => e.seq));
    const page = await t.member.api.get(`/workspaces/${t.workspaceId}/events?limit=4`);
    expect(page.body.items).toHaveLength(4);
    expect(page.body.next_cursor).toEqual(expect.any(String));
    const future = await t.member.api.get(`/workspaces/${t.workspaceId}/events?since=${new Date(Date.now() + 60_000).toISOString()}`);
    expect(future.body).toEqual({ items: [], next_cursor: null });
    expect((await t.member.api.get(`/workspaces/${t.workspaceId}/events?type=user.deleted`)).status).toBe(400);
    expect((await t.member.api.get(`/workspaces/${t.workspaceId}/events?since=yesterday`)).status).toBe(400);
    const outsider = await signUp(mesh.api, "Snoop");
    expect((await outsider.api.get(`/workspaces/${t.workspaceId}/events`)).status).toBe(404);
  });

  test("realtime: /realtime/stats and /events/stats report every replica, for admins only", async () => {
    const t = await team();
    await open(mesh.url, t.workspaceId, t.member.accessToken);
    await open(gateway2, t.workspaceId, t.owner.accessToken);
    const admin = await logIn(mesh.api, { id: "", name: "Administrator", ...ADMIN });
    const realtime = await admin.api.get("/realtime/stats");
    expect(realtime.status).toBe(200);
    expect(realtime.body.replicas.length).toBeGreaterThanOrEqual(2);
    expect(realtime.body.totals.connections).toBeGreaterThanOrEqual(2);
    expect(realtime.body.replicas[0]).toEqual(
      expect.objectContaining({ replica_id: expect.any(String), connections: expect.any(Number), rooms: expect.any(Number), messages_out: expect.any(Number), dropped_slow_clients: expect.any(Number) }),
    );
    const events = await admin.api.get("/events/stats");
    expect(events.status).toBe(200);
    expect(events.body).toEqual(
      expect.objectContaining({
        published: expect.any(Number),
        delivered: expect.any(Number),
        failed: expect.any(Number),
        stream: expect.objectContaining({ name: mesh.streamName }),
        consumers: expect.arrayContaining([expect.objectContaining({ name: "workspace-user-deletions" })]),
        subscribers: expect.objectContaining({ replicas: expect.any(Number) }),
      }),
    );
    expect((await t.owner.api.get("/realtime/stats")).status).toBe(403);
    expect((await t.owner.api.get("/events/stats")).status).toBe(403);
  });
});
