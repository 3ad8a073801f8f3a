import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { SseClient } from "./support/sse.js";
import { waitFor } from "./support/wait.js";
import { RoomClient } from "./support/ws.js";

// Tickets, the per-user connection limit and Server-Sent Events (API.md "Real-time:
// recovery that tells the truth, tickets, SSE, limits"), against a real mesh of two
// gateway replicas.

const MAX_PER_USER = 3;
const TICKET_SECONDS = 5;
const SLOT_TTL_SECONDS = 3;

let mesh: Mesh;
const sockets: RoomClient[] = [];
const streams: SseClient[] = [];

beforeAll(async () => {
  mesh = await Mesh.start({
    gateways: 2,
    env: {
      WS_MAX_CONNECTIONS_PER_USER: String(MAX_PER_USER),
      REALTIME_TICKET_SECONDS: String(TICKET_SECONDS),
      PRESENCE_TTL_SECONDS: String(SLOT_TTL_SECONDS),
      SSE_HEARTBEAT_SECONDS: "1",
      WS_MAX_BACKPRESSURE_BYTES: "65536",
    },
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  for (const stream of streams) stream.close();
  await mesh?.stop();
});

async function team(name: string): Promise<{ workspaceId: string; owner: SignedUp; outsider: SignedUp }> {
  const [owner, outsider] = await Promise.all([signUp(mesh.api, `${name}Owner`), signUp(mesh.api, `${name}Outsider`)]);
  expect((await owner!.api.put(`/users/${owner!.id}`, { email_notifications: false })).status).toBe(200);
  const ws = await owner!.api.post("/workspaces", { name });
  expect(ws.status).toBe(201);
  return { workspaceId: ws.body.id, owner: owner!, outsider: outsider! };
}

async function ticket(user: SignedUp, workspaceId: string): Promise<string> {
  const answer = await user.api.post("/realtime/tickets", { workspace_id: workspaceId });
  expect(answer.status, answer.text).toBe(201);
  expect(answer.body.expires_in).toBe(TICKET_SECONDS);
  return answer.body.ticket;
}

async function openSocket(baseUrl: string, workspaceId: string, credential: string | { ticket: string }, since?: number, epoch?: string) {
  const socket = await RoomClient.open(baseUrl, workspaceId, credential, since, epoch);
  sockets.push(socket);
  return socket;
}

async function openStream(baseUrl: string, workspaceId: string, options: Parameters<typeof SseClient.open>[2]) {
  const stream = await SseClient.open(baseUrl, workspaceId, options);
  streams.push(stream);
  return stream;
}

async function createTasks(user: SignedUp, workspaceId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) expect((await user.api.post(`/workspaces/${workspaceId}/tasks`, { title: `task ${i}` })).status).toBe(201);
}

describe("tickets", () => {
  test("tickets: a member's ticket opens the WebSocket once; a spent, foreign-workspace or expired ticket is refused with 401; a non-member gets none", async () => {
    const { workspaceId, owner, outsider } = await team("Tickets");
    const other = await owner.api.post("/workspaces", { name: "Other" });
    const t = await ticket(owner, workspaceId);
    const socket = await openSocket(mesh.url, workspaceId, { ticket: t });
    expect(socket.connected.workspace_id).toBe(workspaceId);
    await createTasks(owner, workspaceId, 1);
    await socket.waitForEvents("task.created", 1, (f) => f.type === "task.created");

    // Spent, on either replica.
    for (const gateway of mesh.gateways) expect((await RoomClient.refusal(gateway.url, `/ws/${workspaceId}?ticket=${t}`)).status).toBe(401);
    // Bound to its workspace: the owner's ticket for one workspace does not open another.
    const foreign = await ticket(owner, workspaceId);
    expect((await RoomClient.refusal(mesh.url, `/ws/${other.body.id}?ticket=${foreign}`)).status).toBe(401);
    // ...and the failed try spent it.
    expect((await RoomClient.refusal(mesh.url, `/ws/${workspaceId}?ticket=${foreign}`)).status).toBe(401);
    // Made up.
    expect((await RoomClient.refusal(mesh.url, `/ws/${workspaceId}?ticket=${"x".repeat(43)}`)).status).toBe(401);
    // Not a member: no ticket (404, as for every workspace route); no token at all: 401.
    expect((await outsider.api.post("/realtime/tickets", { workspace_id: workspaceId })).status).toBe(404);
    expect((await mesh.api.post("/realtime/tickets", { workspace_id: workspaceId })).status).toBe(401);
    expect((await owner.api.post("/realtime/tickets", { workspace_id: "nope" })).status).toBe(400);

    // Expired unused.
    const late = await ticket(owner, workspaceId);
    await new Promise((resolve) => setTimeout(resolve, (TICKET_SECONDS + 1) * 1000));
    const refused = await RoomClient.refusal(mesh.url, `/ws/${workspaceId}?ticket=${late}`);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body).error.code).toBe("unauthorized");
  });

  test("tickets: the access token still works in the WebSocket URL (existing clients)", async () => {
    const { workspaceId, owner } = await team("Legacy");
    const socket = await openSocket(mesh.url, workspaceId, owner.accessToken);
    expect(socket.connected.type).toBe("connected");
  });
});

describe("connection limit", () => {
  test("connection limit: a user holds at most the limit across both replicas and both transports (429 beyond); closing one frees a slot", async () => {
    const { workspaceId, owner } = await team("Limit");
    const [g1, g2] = mesh.gateways.map((g) => g.url) as [string, string];
    const first = await openSocket(g1, workspaceId, owner.accessToken);
    await openSocket(g2, workspaceId, { ticket: await ticket(owner, workspaceId) });
    const stream = await openStream(g2, workspaceId, { token: owner.accessToken });
    expect(stream.status).toBe(200);
    await stream.waitForConnected();

    const refused = await RoomClient.refusal(g1, `/ws/${workspaceId}?token=${owner.accessToken}`);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.message).toContain(`at most ${MAX_PER_USER}`);
    // When to try again: at the latest when a vanished connection's slot expires.
    expect(refused.headers["retry-after"]).toBe(String(SLOT_TTL_SECONDS));
    const refusedStream = await openStream(g2, workspaceId, { ticket: await ticket(owner, workspaceId) });
    expect(refusedStream.status).toBe(429);
    expect(refusedStream.headers.get("retry-after")).toBe(String(SLOT_TTL_SECONDS));

    first.socket.close();
    await first.waitForClose();
    await waitFor("a freed slot", async () => {
      const again = await RoomClient.open(g2, workspaceId, owner.accessToken).catch(() => undefined);
      if (again) sockets.push(again);
      return again;
    });
    stream.close();
  });

  test("connection limit: the slots of a replica that died (-9) stop counting once they expire", async () => {
    const { workspaceId, owner } = await team("Dead replica");
    const doomed = await mesh.startGateway({ PRESENCE_TTL_SECONDS: String(SLOT_TTL_SECONDS) });
    for (let i = 0; i < MAX_PER_USER; i++) await openSocket(doomed.url, workspaceId, owner.accessToken);
    expect((await RoomClient.refusal(mesh.url, `/ws/${workspaceId}?token=${owner.accessToken}`)).status).toBe(429);
    await doomed.process.stop("SIGKILL");
    const back = await waitFor(
      "the dead replica's slots to expire",
      async () => RoomClient.open(mesh.url, workspaceId, owner.accessToken).catch(() => undefined),
      (SLOT_TTL_SECONDS + 5) * 1000,
    );
    sockets.push(back);
    expect(back.connected.type).toBe("connected");
  });
});

describe("server-sent events", () => {
  test("sse: with a ticket, `connected` then every event as id/event/data, in order, the same as the WebSocket gets; pings while idle", async () => {
    const { workspaceId, owner } = await team("Sse");
    const socket = await openSocket(mesh.url, workspaceId, owner.accessToken);
    const stream = await openStream(mesh.gateways[1]!.url, workspaceId, { ticket: await ticket(owner, workspaceId) });
    expect(stream.status).toBe(200);
    expect(stream.contentType).toMatch(/^text\/event-stream/);
    const connected = await stream.waitForConnected();
    expect(connected).toMatchObject({ type: "connected", workspace_id: workspaceId, epoch: socket.connected.epoch });
    await createTasks(owner, workspaceId, 5);
    // Both up to the fifth task (presence events may come before or between the tasks).
    await waitFor("5 tasks on the stream", () => stream.events.filter((e) => e.event === "task.created").length >= 5);
    await socket.waitForEvents("tasks", 5, (f) => f.type === "task.created");
    const last = Number(stream.events.filter((e) => e.event === "task.created")[4]!.id);
    const events = stream.events.filter((e) => Number(e.id) <= last);
    const viaSocket = socket.events.filter((f) => f.seq! <= last);
    expect(events.map((e) => [Number(e.id), e.event])).toEqual(viaSocket.map((f) => [f.seq, f.type]));
    expect(events.map((e) => e.envelope)).toEqual(viaSocket);
    await waitFor("a ping comment", () => stream.comments >= 1, 5_000);
  });

  test("sse: resumes after Last-Event-ID (or ?since=) with every missed event, no gap, no duplicate, then live; an expired or future position says recovered: false", async () => {
    const { workspaceId, owner } = await team("Resume");
    const first = await openStream(mesh.url, workspaceId, { token: owner.accessToken });
    await first.waitForConnected();
    await createTasks(owner, workspaceId, 3);
    const seen = await first.waitForEvents("events", 3);
    first.close();
    await createTasks(owner, workspaceId, 4); // missed
    const lastId = seen.at(-1)!.id!;

    const resumed = await openStream(mesh.gateways[1]!.url, workspaceId, { token: owner.accessToken, lastEventId: lastId, epoch: first.connected.epoch });
    expect((await resumed.waitForConnected()).recovered).toBe(true);
    await createTasks(owner, workspaceId, 1); // live
    const all = await resumed.waitForEvents("missed and live events", 5);
    const seqs = all.map((e) => Number(e.id));
    expect(seqs[0]).toBeGreaterThan(Number(lastId));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(all.filter((e) => e.event === "task.created")).toHaveLength(5);

    const bySince = await openStream(mesh.url, workspaceId, { token: owner.accessToken, since: Number(lastId) });
    expect((await bySince.waitForConnected()).recovered).toBe(true);
    expect((await bySince.waitForEvents("missed events", 5)).map((e) => e.id)).toEqual(all.map((e) => e.id));

    const future = await openStream(mesh.url, workspaceId, { token: owner.accessToken, since: 10_000_000 });
    const told = await future.waitForConnected();
    expect(told.recovered).toBe(false);
    // Told to reload, it continues live from `seq`: its `connected` id says where.
    expect(future.messages[0]!.id).toBe(String(told.seq));
    for (const stream of [resumed, bySince, future]) stream.close();
  });

  test("sse: refused like the WebSocket: no credential 401, a bad since 400, a non-member 404", async () => {
    const { workspaceId, outsider } = await team("Refusals");
    expect((await openStream(mesh.url, workspaceId, {})).status).toBe(401);
    const notMember = await openStream(mesh.url, workspaceId, { token: outsider.accessToken });
    expect(notMember.status).toBe(404);
    expect(JSON.parse(notMember.body).error.code).toBe("not_found");
    const outsiderWorkspace = await outsider.api.post("/workspaces", { name: "Mine" });
    expect((await openStream(mesh.url, outsiderWorkspace.body.id, { token: outsider.accessToken, lastEventId: "abc" })).status).toBe(400);
  });

  test("sse: a client that does not read is closed as slow (`event: close`, 1013), and the room goes on at full speed for the others", async () => {
    const { workspaceId, owner } = await team("Slow");
    const fast = await openStream(mesh.url, workspaceId, { token: owner.accessToken });
    await fast.waitForConnected();
    // A raw request whose response is never read: the socket's buffers fill, then the gateway's queue.
    const url = new URL(mesh.url);
    const raw = connect(Number(url.port), url.hostname);
    raw.pause();
    raw.write(`GET /workspaces/${workspaceId}/stream HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${owner.accessToken}\r\n\r\n`);
    raw.on("error", () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const dropped = async () => {
      const metrics = await fetch(`http://127.0.0.1:${mesh.processes.get("gateway-1")!.ports["admin"]}/metrics`).then((r) => r.text());
      return Number(/^taskboard_ws_dropped_slow_clients_total(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1] ?? 0) > 0;
    };
    // Loopback kernel buffers absorb several MB before the gateway's own queue grows.
    const content = "y".repeat(9_000);
    let sent = 0;
    while (sent < 2_000 && !(sent % 50 === 0 && sent > 0 && (await dropped()))) {
      const res = await owner.api.post(`/workspaces/${workspaceId}/broadcast`, { content: `${sent} ${content}` });
      expect(res.status).toBe(202);
      sent++;
    }
    await waitFor("the gateway to drop the slow SSE client", dropped, 30_000);
    let received = "";
    raw.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    const ended = new Promise((resolve) => raw.once("end", resolve));
    raw.resume();
    await waitFor("the slow stream to end", () => received.includes("0\r\n\r\n") || raw.readableEnded, 30_000);
    await ended;
    expect(received).toMatch(/event: close\ndata: \{"code":1013,"reason":"slow consumer"\}/);
    const events = await fast.waitForEvents("every broadcast on the fast stream", sent, 60_000);
    expect(events.filter((e) => e.event === "custom.message")).toHaveLength(sent);
  }, 180_000);
});
