import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { spawnChild, type RunningChild } from "../internal/devenv/processes.js";
import { signUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";
import { RoomClient } from "./support/ws.js";

// This file runs its own nats-server, so that it can stop and restart it mid-stream.
let mesh: Mesh;
let nats: RunningChild | undefined;
let port: number;
const storeDir = mkdtempSync(join(tmpdir(), "taskboard-nats-"));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startNats(): Promise<void> {
  nats = spawnChild("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], { cwd: storeDir, env: { PATH: process.env["PATH"] ?? "" } });
  await waitFor("nats-server to accept connections", async () => {
    const { connect } = await import("node:net");
    return new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
  });
}

beforeAll(async () => {
  port = await freePort();
  await startNats();
  mesh = await Mesh.start({ env: { NATS_URL: `nats://127.0.0.1:${port}` } });
});

afterAll(async () => {
  await mesh?.stop();
  await nats?.stop();
  rmSync(storeDir, { recursive: true, force: true });
});

test("outbox: NATS restarted in the middle of a stream of writes loses no committed event, and clients miss none", async () => {
  const owner = await signUp(mesh.api, "Writer");
  const workspaceId = (await owner.api.post("/workspaces", { name: "Outage" })).body.id as string;
  const client = await RoomClient.open(mesh.url, workspaceId, owner.accessToken);

  const committed: string[] = [];
  let phase = "before" as "before" | "down" | "after" | "done";
  const writer = (async () => {
    for (let i = 0; phase !== "done"; i++) {
      const res = await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: `write ${i} (${phase})` });
      if (res.status === 201) committed.push(res.body.id);
      else expect(res.status, res.text).toBe(503);
    }
  })();

  await waitFor("writes before the outage", () => committed.length >= 20);
  phase = "down";
  await nats!.stop();
  const atStop = committed.length;
  await waitFor("writes committed while NATS is down", () => committed.length >= atStop + 20, 20_000);
  await startNats();
  phase = "after";
  const atRestart = committed.length;
  await waitFor("writes after the restart", () => committed.length >= atRestart + 20, 20_000);
  phase = "done";
  await writer;

  // Every committed task reached the stream exactly once, in commit order...
  await waitFor(
    "every committed task in the stream",
    async () => {
      const res = await owner.api.get(`/workspaces/${workspaceId}/events?type=task.created&limit=200`);
      if (res.status !== 200) return false;
      let items = res.body.items as { aggregate_id: string }[];
      let cursor = res.body.next_cursor as string | null;
      while (cursor) {
        const next = await owner.api.get(`/workspaces/${workspaceId}/events?type=task.created&limit=200&cursor=${cursor}`);
        items = items.concat(next.body.items);
        cursor = next.body.next_cursor;
      }
      return items.length >= committed.length && items;
    },
    30_000,
  ).then((items) => expect(items.map((e) => e.aggregate_id)).toEqual(committed));

  // ...and reached the connected client exactly once, in order (after the gateway resynced its room).
  await waitFor("every committed task on the client", () => client.events.filter((f) => f.type === "task.created").length >= committed.length, 30_000);
  expect(client.events.filter((f) => f.type === "task.created").map((f) => f.aggregate_id)).toEqual(committed);
  const seqs = client.events.map((f) => f.seq!);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);
});
