import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { streamConfig } from "../internal/platform/stream.js";
import { storedSeqs } from "./support/events.js";
import { signUp, type Api, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";
import { RoomClient, type Frame } from "./support/ws.js";

// Real time under stress, each guarantee caused and checked: several publishers into one
// workspace (NATS 2.9 does not keep their order on the republished subjects), reconnect storms
// served from memory and from one shared JetStream read, and recovery that says when it
// cannot recover. LONG runs (npm run test:faults) use the full sizes.
const LONG = process.env["TASKBOARD_LONG_TESTS"] === "1";

let mesh: Mesh;
let nc: NatsConnection;
/** Replicas: a busy one, a fresh one (rooms start on demand), one with a tiny room memory. */
let busy: string;
let fresh: string;
let small: string;
const opened: RoomClient[] = [];

beforeAll(async () => {
  // Storms are one user's many clients: lift the per-user connection limit.
  mesh = await Mesh.start({ env: { WS_FEED_HEARTBEAT_MS: "500", WS_CLIENT_RATE: "1000", WS_CLIENT_BURST: "1000", WS_MAX_CONNECTIONS_PER_USER: "100000" } });
  busy = mesh.url;
  fresh = (await mesh.startGateway()).url;
  small = (await mesh.startGateway({ WS_ROOM_HISTORY_EVENTS: "50" })).url;
  nc = await mesh.nats();
}, 120_000);

afterAll(async () => {
  for (const client of opened) client.terminate();
  await mesh?.stop();
});

async function open(baseUrl: string, workspaceId: string, token: string, since?: number, epoch?: string): Promise<RoomClient> {
  const client = await RoomClient.open(baseUrl, workspaceId, token, since, epoch);
  opened.push(client);
  return client;
}

async function team(name: string): Promise<{ workspaceId: string; owner: SignedUp }> {
  const owner = await signUp(mesh.api, name);
  // No notification.* events: these tests count a room's events exactly.
  expect((await owner.api.put(`/users/${owner.id}`, { email_notifications: false })).status).toBe(200);
  const ws = await owner.api.post("/workspaces", { name });
  expect(ws.status).toBe(201);
  return { workspaceId: ws.body.id as string, owner };
}

/** Creates `count` tasks, `concurrency` at a time; resolves when every one is committed. */
async function createTasks(api: Api, workspaceId: string, count: number, concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const res = await api.post(`/workspaces/${workspaceId}/tasks`, { title: `task ${i}` });
        expect(res.status, res.text).toBe(201);
      }
    }),
  );
}

const seqsOf = (frames: Frame[]) => frames.map((f) => f.seq!);
const filterOf = (workspaceId: string) => mesh.subjects.room(workspaceId);

/** Waits until `client` has every event the stream holds for the workspace after its start, then checks it got exactly those, in order. */
async function expectComplete(client: RoomClient, workspaceId: string, after: number, label: string): Promise<void> {
  const stored = await storedSeqs(nc, mesh.streamName, filterOf(workspaceId), after);
  await expectExactly(client, stored, after, label);
}

/** Waits until `client` reached the last of `stored`, then checks it got exactly the stored events after `after`, in order. */
async function expectExactly(client: RoomClient, stored: number[], after: number, label: string): Promise<void> {
  const expected = stored.filter((seq) => seq > after);
  const last = expected.at(-1) ?? after;
  await waitFor(`${label} to reach seq ${last} (has ${client.events.length} of ${expected.length})`, () => {
    if (client.closed) throw new Error(`${label} closed with ${client.closed.code} ${client.closed.reason}`);
    return (client.events.at(-1)?.seq ?? 0) >= last;
  }, 60_000, 50);
  expect(seqsOf(client.events), `${label}: every stored event once, in stream order`).toEqual(expected);
}

describe("ordering", () => {
  test("realtime order: with the outbox relay and chat broadcasts on two replicas publishing into one workspace, every client gets every event once, in stream order", async () => {
    const { workspaceId, owner } = await team("Order");
    const watchers = await Promise.all([busy, busy, fresh, fresh].map((url) => open(url, workspaceId, owner.accessToken)));
    const start = Math.min(...watchers.map((w) => w.connected.seq!));
    const target = LONG ? 10_000 : 2_000;
    let published = 0;
    const broadcaster = (url: string) => async () => {
      const api = owner.api.as(owner.accessToken);
      const base = new URL(url);
      while (published < target) {
        published++;
        const res = await fetch(`${base.origin}/workspaces/${workspaceId}/broadcast`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${api.token}` },
          body: JSON.stringify({ content: `m${published}` }),
        });
        expect(res.status).toBe(202);
      }
    };
    const creator = async () => {
      while (published < target) {
        published++;
        const res = await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: `t${published}` });
        expect(res.status).toBe(201);
      }
    };
    await Promise.all([
      ...Array.from({ length: 6 }, creator),
      ...Array.from({ length: 4 }, broadcaster(busy)),
      ...Array.from({ length: 4 }, broadcaster(fresh)),
    ]);
    for (const [i, watcher] of watchers.entries()) {
      await expectComplete(watcher, workspaceId, watcher.connected.seq!, `client ${i + 1}`);
    }
    expect(seqsOf(watchers[0]!.events).length).toBeGreaterThanOrEqual(target);
    expect(start).toBeGreaterThanOrEqual(0);
    // 10,000 requests through HTTP take 2–4 minutes here, longer beside the fault files: a bound, not a target.
  }, LONG ? 600_000 : 240_000);
});

describe("reconnect storm", () => {
  const clientsInStorm = LONG ? 1_000 : 200;
  const missed = 200;

  test.each([
    ["to the replica that keeps the room (its memory)", () => busy, true, 0],
    ["to a replica without the room (the room's feed starts at their position)", () => fresh, false, 1],
    ["to a replica whose memory holds 50 events (shared JetStream reads below it)", () => small, true, Math.ceil(missed / 50)],
  ])(`realtime storm: ${clientsInStorm} clients resuming at once after ${missed} missed events, %s, each get every missed event in order before any later one`, async (_, target, keepRoom, maxConsumers) => {
    const { workspaceId, owner } = await team("Storm");
    const url = target();
    // A client that stays keeps the room alive on the target replica where the case wants it.
    const keeper = keepRoom ? await open(url, workspaceId, owner.accessToken) : undefined;
    const storm = await Promise.all(Array.from({ length: clientsInStorm }, () => open(busy, workspaceId, owner.accessToken)));
    await createTasks(owner.api, workspaceId, 5);
    await waitFor("the storm's clients to be live", () => storm.every((c) => c.events.length >= 5), 30_000);
    const positions = storm.map((c) => c.events.at(-1)!.seq!);
    for (const client of storm) client.terminate();
    await createTasks(owner.api, workspaceId, missed);

    const consumersCreated: string[] = [];
    // The gateways create unnamed consumers (this exact subject); the test's own reads are named ones.
    const watch = nc.subscribe(`$JS.API.CONSUMER.CREATE.${mesh.streamName}`, { callback: (_e, m) => consumersCreated.push(m.subject) });
    const started = Date.now();
    const back = await Promise.all(storm.map((c, i) => open(url, workspaceId, owner.accessToken, positions[i], c.connected.epoch)));
    await createTasks(owner.api, workspaceId, 5); // live events right behind the storm
    for (const [i, client] of back.entries()) {
      expect(client.connected.recovered, `client ${i} is told it recovered`).toBe(true);
    }
    // The last live event: once every client has it, the storm is over.
    const last = (await storedSeqs(nc, mesh.streamName, filterOf(workspaceId), Math.max(...positions) + missed)).at(-1)!;
    await waitFor(`every resumed client to reach the last event, ${last}`, () => {
      const behind = back.filter((c) => (c.events.at(-1)?.seq ?? 0) < last && !c.closed);
      if (behind.length === 0) return true;
      // Say whether the clients behind are moving or stuck, and where.
      const at = [...new Set(behind.map((c) => c.events.at(-1)?.seq ?? 0))].sort((a, b) => a - b);
      throw new Error(`${behind.length} behind, at seqs ${at.slice(0, 10).join(", ")}${at.length > 10 ? "…" : ""}`);
    }, 60_000, 20);
    const elapsedMs = Date.now() - started;
    watch.unsubscribe();
    const stored = await storedSeqs(nc, mesh.streamName, filterOf(workspaceId), Math.min(...positions));
    for (const [i, client] of back.entries()) await expectExactly(client, stored, positions[i]!, `resumed client ${i}`);
    if (keeper) await expectComplete(keeper, workspaceId, keeper.connected.seq!, "the client that stayed");

    // One read per room, not one consumer per client: the fresh replica starts one feed; the
    // small one reads the missed events once, in segments of its memory's size.
    expect(consumersCreated.length, `consumers created during the storm: ${consumersCreated.length}`).toBeLessThanOrEqual(maxConsumers);
    console.log(JSON.stringify({ storm: url === busy ? "memory" : url === fresh ? "fresh" : "segments", clients: clientsInStorm, missed, ms: elapsedMs, consumers: consumersCreated.length }));
  }, 240_000);
});

describe("honest recovery", () => {
  test("recovery: a since within the history resumes with recovered: true", async () => {
    const { workspaceId, owner } = await team("Within");
    await createTasks(owner.api, workspaceId, 3, 1);
    const first = await open(busy, workspaceId, owner.accessToken);
    await createTasks(owner.api, workspaceId, 2, 1);
    await first.waitForEvents("two tasks", 2);
    const position = first.events[0]!.seq!;
    const resumed = await open(fresh, workspaceId, owner.accessToken, position, first.connected.epoch);
    expect(resumed.connected).toMatchObject({ recovered: true, epoch: first.connected.epoch, first_seq: expect.any(Number) });
    expect(resumed.connected.first_seq).toBeGreaterThan(0);
    await expectComplete(resumed, workspaceId, position, "resumed");
  });

  test("recovery: a since ahead of the history (a future position) is told recovered: false at once and continues live", async () => {
    const { workspaceId, owner } = await team("Future");
    await createTasks(owner.api, workspaceId, 2, 1);
    const client = await open(busy, workspaceId, owner.accessToken, 10_000_000);
    expect(client.connected.recovered).toBe(false);
    const latest = client.connected.seq!;
    expect(latest).toBeLessThan(10_000_000);
    await createTasks(owner.api, workspaceId, 3, 1);
    await expectComplete(client, workspaceId, latest, "the future client, from seq on");
  });

  test("recovery: a since from another epoch (an older history) is told recovered: false", async () => {
    const { workspaceId, owner } = await team("Epoch");
    await createTasks(owner.api, workspaceId, 2, 1);
    const client = await open(fresh, workspaceId, owner.accessToken, 1, "1999-01-01T00:00:00Z");
    expect(client.connected.recovered).toBe(false);
    // No catch-up: nothing at or before the connected seq (live events after it, such as this
    // client's own presence.joined, may follow).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(client.events.filter((e) => e.seq! <= client.connected.seq!)).toEqual([]);
    expect(client.events.filter((e) => e.type === "task.created")).toEqual([]);
  });

  test("recovery: after the stream is purged under a connected room, live clients go on and a since below the new first sequence is told recovered: false", async () => {
    const { workspaceId, owner } = await team("Purged");
    await createTasks(owner.api, workspaceId, 3, 1);
    const live = await open(busy, workspaceId, owner.accessToken);
    await createTasks(owner.api, workspaceId, 1, 1);
    await live.waitForEvents("a task", 1);
    const position = live.events[0]!.seq!;
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge(mesh.streamName);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the stream's range is cached for a second
    await createTasks(owner.api, workspaceId, 2, 1);
    await live.waitForEvents("two more tasks", 3);
    expect(live.closed).toBeUndefined();
    const resumed = await open(busy, workspaceId, owner.accessToken, position - 1, live.connected.epoch);
    expect(resumed.connected.recovered).toBe(false);
  });

  test("recovery: when the stream is recreated under a connected room, its clients are closed to reload, and resuming with the old epoch is told recovered: false", async () => {
    const { workspaceId, owner } = await team("Recreated");
    await createTasks(owner.api, workspaceId, 2, 1);
    const live = await open(busy, workspaceId, owner.accessToken);
    const jsm = await nc.jetstreamManager();
    const config = streamConfig(mesh.subjects, { name: mesh.streamName, maxAgeHours: 168, replicas: 1 });
    await jsm.streams.delete(mesh.streamName);
    await jsm.streams.add(config);
    const closed = await live.waitForClose(15_000);
    expect(closed.code).toBe(1012);
    const again = await open(busy, workspaceId, owner.accessToken, live.connected.seq!, live.connected.epoch);
    expect(again.connected.recovered).toBe(false);
    expect(again.connected.epoch).not.toBe(live.connected.epoch);
    await createTasks(owner.api, workspaceId, 2, 1);
    await expectComplete(again, workspaceId, again.connected.seq!, "the client after the reset");
  }, 60_000);
});
