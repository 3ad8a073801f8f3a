import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isPublicAddress } from "../internal/webhooks/addresses.js";
import { EventTap } from "./support/events.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";

// Webhooks end to end against a real local HTTP receiver (WEBHOOK_ALLOW_PRIVATE: it is on
// 127.0.0.1): signatures, retries after 500s and timeouts, one delivery record per event
// through a killed replica, deactivation after the retry window, redelivery, and the
// refusal of private addresses once they are not allowed.

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}

/** A receiver whose answer per path is scripted: a status, or "hang" (never answers). */
class Receiver {
  readonly received: Received[] = [];
  readonly script = new Map<string, (number | "hang")[]>();
  private server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const path = req.url ?? "/";
        this.received.push({ path, headers: req.headers, body, at: Date.now() });
        const next = this.script.get(path)?.shift() ?? 200;
        if (next === "hang") return;
        res.writeHead(next).end("ok");
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let mesh: Mesh;
let tap: EventTap;
const receiver = new Receiver();
let owner: SignedUp;
let member: SignedUp;
let workspaceId: string;

beforeAll(async () => {
  await receiver.start();
  mesh = await Mesh.start({
    env: {
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_POLL_MS: "100",
      WEBHOOK_RETRY_BASE_MS: "100",
      WEBHOOK_TIMEOUT_MS: "1000",
      // 3.6 s: retries fit in it, and a receiver failing for good is given up on quickly.
      WEBHOOK_RETRY_HOURS: "0.001",
    },
  });
  tap = new EventTap(await mesh.nats(), mesh.id);
  owner = await signUp(mesh.api, "Owner");
  member = await signUp(mesh.api, "Member");
  workspaceId = (await owner.api.post("/workspaces", { name: "Hooks" })).body.id;
  await owner.api.post(`/workspaces/${workspaceId}/members`, { user_id: member.id, role: "member" });
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
  await receiver.stop();
});

async function webhook(path: string, events: string[]): Promise<{ id: string; secret: string }> {
  const res = await owner.api.post(`/workspaces/${workspaceId}/webhooks`, { url: receiver.url + path, events, description: path });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const deliveries = async (id: string) => (await owner.api.get(`/webhooks/${id}/deliveries?limit=200`)).body.items as Record<string, any>[];

describe("webhooks", () => {
  test("webhooks: owners and admins register them; the secret is shown once; members get 403, outsiders 404; bad input is 400", async () => {
    const created = await owner.api.post(`/workspaces/${workspaceId}/webhooks`, { url: `${receiver.url}/plain`, events: ["task.*"] });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      workspace_id: workspaceId,
      url: `${receiver.url}/plain`,
      events: ["task.*"],
      description: "",
      active: true,
      created_at: expect.any(String),
      secret: expect.stringMatching(/^whsec_/),
    });
    const read = await owner.api.get(`/webhooks/${created.body.id}`);
    expect(read.body).not.toHaveProperty("secret");
    expect(read.text).not.toContain(created.body.secret);
    expect((await owner.api.get(`/workspaces/${workspaceId}/webhooks`)).text).not.toContain(created.body.secret);
    expect((await member.api.get(`/workspaces/${workspaceId}/webhooks`)).status).toBe(403);
    expect((await member.api.get(`/webhooks/${created.body.id}`)).status).toBe(403);
    const stranger = await signUp(mesh.api, "Stranger");
    expect((await stranger.api.get(`/webhooks/${created.body.id}`)).status).toBe(404);
    for (const body of [{ url: "ftp://x.example", events: ["task.*"] }, { url: `${receiver.url}/x`, events: ["nope.*"] }, { url: `${receiver.url}/x`, events: [] }]) {
      expect((await owner.api.post(`/workspaces/${workspaceId}/webhooks`, body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await owner.api.delete(`/webhooks/${created.body.id}`)).status).toBe(204);
  });

  test("webhooks: a matching event is POSTed as its envelope with seq, signed with the secret; other types are not sent", async () => {
    const hook = await webhook("/signed", ["task.created"]);
    const task = (await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Hooked" })).body;
    await owner.api.post(`/workspaces/${workspaceId}/comments`, { task_id: task.id, content: "not subscribed" });
    await waitFor("the delivery", () => receiver.at("/signed").length >= 1);
    const [got] = receiver.at("/signed");
    const event = JSON.parse(got!.body);
    expect(event).toMatchObject({ type: "task.created", workspace_id: workspaceId, aggregate_id: task.id, data: { id: task.id, title: "Hooked" } });
    expect(event.seq).toBeGreaterThan(0);
    expect(got!.headers["content-type"]).toBe("application/json");
    expect(got!.headers["taskboard-event"]).toBe("task.created");
    // The signature verifies as a receiver would check it.
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(got!.headers["taskboard-signature"]))!;
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(60);
    expect(v1).toBe(createHmac("sha256", hook.secret).update(`${t}.${got!.body}`).digest("hex"));
    expect(createHmac("sha256", "another secret").update(`${t}.${got!.body}`).digest("hex")).not.toBe(v1);
    const log = await deliveries(hook.id);
    expect(log).toEqual([
      { id: got!.headers["taskboard-delivery"], event_id: event.id, event_type: "task.created", status: "delivered", attempts: 1, response_status: 200, next_attempt_at: null, created_at: expect.any(String) },
    ]);
  });

  test("webhooks: 500s and a timeout are retried with backoff under the same delivery id until a 2xx", async () => {
    const hook = await webhook("/flaky", ["task.created"]);
    receiver.script.set("/flaky", [500, "hang", 503, 200]);
    await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Flaky" });
    await waitFor("the fourth attempt", () => receiver.at("/flaky").length >= 4, 15_000);
    const attempts = receiver.at("/flaky");
    expect(new Set(attempts.map((a) => a.headers["taskboard-delivery"])).size).toBe(1);
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    // The timeout (1 s) passed before the third attempt.
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(1_000);
    await waitFor("delivered", async () => (await deliveries(hook.id))[0]?.status === "delivered");
    expect(await deliveries(hook.id)).toEqual([expect.objectContaining({ status: "delivered", attempts: 4, response_status: 200 })]);
  });

  test("webhooks: a redirect is not followed (a failed attempt, retried); a workspace has at most WEBHOOK_MAX_PER_WORKSPACE webhooks", async () => {
    const hook = await webhook("/moved", ["comment.created"]);
    receiver.script.set("/moved", [302]);
    const task = (await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Moved" })).body;
    await owner.api.post(`/workspaces/${workspaceId}/comments`, { task_id: task.id, content: "where are you" });
    await waitFor("the retry after the redirect", () => receiver.at("/moved").length >= 2);
    await waitFor("delivered", async () => (await deliveries(hook.id))[0]?.status === "delivered");
    expect(await deliveries(hook.id)).toEqual([expect.objectContaining({ status: "delivered", attempts: 2 })]);
    // Nothing followed the redirect (the receiver's 302 named no Location; the next attempt came to the same URL).
    expect(receiver.at("/moved").map((r) => r.headers["taskboard-delivery"])).toEqual([expect.any(String), receiver.at("/moved")[0]!.headers["taskboard-delivery"]]);
    const count = (await owner.api.get(`/workspaces/${workspaceId}/webhooks`)).body.items.length;
    for (let i = count; i < 10; i++) await webhook(`/filler-${i}`, ["export.failed"]);
    const over = await owner.api.post(`/workspaces/${workspaceId}/webhooks`, { url: `${receiver.url}/one-too-many`, events: ["task.*"] });
    expect(over.status).toBe(422);
    expect(over.body.error.message).toContain("at most 10 webhooks");
    for (const w of (await owner.api.get(`/workspaces/${workspaceId}/webhooks`)).body.items as { id: string; url: string }[]) {
      if (w.url.includes("/filler-")) await owner.api.delete(`/webhooks/${w.id}`);
    }
  });

  test("webhooks: exactly one delivery record per (webhook, event) with two replicas, one killed while they work", { timeout: 60_000 }, async () => {
    const hook = await webhook("/many", ["task.*"]);
    receiver.script.set("/many", [500, 500, 500]);
    const second = await mesh.startProcess("webhooks", {}, "webhooks-2");
    const titles = Array.from({ length: 30 }, (_, i) => `many ${i}`);
    for (const [i, title] of titles.entries()) {
      await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title });
      if (i === 15) await second.stop("SIGKILL");
    }
    await waitFor("every task delivered", async () => {
      const log = await deliveries(hook.id);
      return log.length === 30 && log.every((d) => d.status === "delivered");
    }, 30_000);
    const log = await deliveries(hook.id);
    expect(new Set(log.map((d) => d.event_id)).size).toBe(30);
    const received = receiver.at("/many").map((r) => JSON.parse(r.body).data.title as string);
    expect(new Set(received)).toEqual(new Set(titles));
  });

  test("webhooks: failing for the whole retry window, a delivery fails and the webhook is deactivated (webhook.disabled); redelivery waits for it to be active again", { timeout: 30_000 }, async () => {
    const hook = await webhook("/down", ["task.created"]);
    receiver.script.set("/down", Array.from({ length: 100 }, () => 500));
    await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Nobody home" });
    await waitFor("the webhook.disabled event", () => tap.seen.some((s) => s.event.type === "webhook.disabled" && s.event.aggregate_id === hook.id), 20_000);
    const disabled = tap.seen.find((s) => s.event.type === "webhook.disabled" && s.event.aggregate_id === hook.id)!;
    expect(disabled.subject).toBe(`${mesh.id}.webhooks.${workspaceId}.disabled`);
    expect(disabled.event.data).toMatchObject({ id: hook.id, active: false });
    expect(JSON.stringify(disabled.event)).not.toContain(hook.secret);
    const [failed] = await deliveries(hook.id);
    expect(failed).toMatchObject({ status: "failed", response_status: 500, next_attempt_at: null });
    expect(failed!.attempts).toBeGreaterThan(2);
    expect((await owner.api.get(`/webhooks/${hook.id}`)).body.active).toBe(false);

    expect((await owner.api.post(`/webhooks/${hook.id}/deliveries/${failed!.id}/redeliver`)).status).toBe(409);
    receiver.script.set("/down", []);
    expect((await owner.api.put(`/webhooks/${hook.id}`, { active: true })).body.active).toBe(true);
    const again = await owner.api.post(`/webhooks/${hook.id}/deliveries/${failed!.id}/redeliver`);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id: failed!.id, status: "pending" });
    await waitFor("redelivered", async () => (await deliveries(hook.id))[0]?.status === "delivered");
    expect(receiver.at("/down").at(-1)!.headers["taskboard-delivery"]).toBe(failed!.id);
  });

  test("webhooks: without WEBHOOK_ALLOW_PRIVATE, http and private, loopback, link-local and metadata addresses are refused with 422", { timeout: 60_000 }, async () => {
    const port = String(mesh.processes.get("webhooks")!.ports["grpc"]);
    await mesh.restart("webhooks", { WEBHOOK_ALLOW_PRIVATE: "false", GRPC_PORT: port });
    try {
      for (const url of [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://localhost/hook",
        "https://user:pw@example.com/hook",
      ]) {
        const res = await owner.api.post(`/workspaces/${workspaceId}/webhooks`, { url, events: ["task.*"] });
        expect(res.status, url).toBe(422);
      }
    } finally {
      await mesh.restart("webhooks", { WEBHOOK_ALLOW_PRIVATE: "true", GRPC_PORT: port });
    }
  });

  test("addresses: only public unicast addresses count as public", () => {
    expect(["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"].map(isPublicAddress)).toEqual([true, true, true]);
    for (const address of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00:ec2::254", "::ffff:10.0.0.1", "224.0.0.1", "not an address"]) {
      expect(isPublicAddress(address), address).toBe(false);
    }
  });
});
