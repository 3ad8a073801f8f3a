import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { signUp } from "./support/http.js";
import { Mailbox } from "./support/mailbox.js";
import { Mesh } from "./support/mesh.js";
import { OtlpReceiver, spanTree, type ReceivedSpan } from "./support/otlp-receiver.js";
import { waitFor } from "./support/wait.js";
import { RoomClient } from "./support/ws.js";

// OpenTelemetry SpanKind as OTLP numbers it.
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

let receiver: OtlpReceiver;
let mesh: Mesh;
/** A webhook endpoint: answers 204 and counts. */
let hook: Server;
let hookUrl: string;
let hooked = 0;
const mailbox = new Mailbox();
const clients: RoomClient[] = [];

beforeAll(async () => {
  receiver = await OtlpReceiver.start();
  hook = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      hooked++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  mesh = await Mesh.start({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      WEBHOOK_ALLOW_PRIVATE: "true",
      WEBHOOK_POLL_MS: "100",
    },
  });
});

afterAll(async () => {
  for (const client of clients) client.terminate();
  await mesh?.stop();
  await receiver?.close();
  hook?.close();
});

test("tracing: one create-task is one trace, from the gateway's route through the task service, its SQL and outbox relay, to notify's mail and the gateway's fan-out", async () => {
  const [owner, member] = await Promise.all([signUp(mesh.api, "TraceOwner"), signUp(mesh.api, "TraceMember")]);
  const workspaceId = (await owner!.api.post("/workspaces", { name: "Traced" })).body.id as string;
  expect((await owner!.api.post(`/workspaces/${workspaceId}/members`, { user_id: member!.id, role: "member" })).status).toBe(201);
  expect((await owner!.api.post(`/workspaces/${workspaceId}/webhooks`, { url: hookUrl, events: ["task.created"] })).status).toBe(201);
  const room = await RoomClient.open(mesh.url, workspaceId, owner!.accessToken);
  clients.push(room);

  const created = await owner!.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Follow me" });
  expect(created.status).toBe(201);
  const requestId = created.headers.get("x-request-id");
  await room.waitFor("the task.created event", (f) => f.type === "task.created");
  await mailbox.waitFor(member!, "Follow me");
  await waitFor("the webhook's POST", () => hooked > 0);

  const root = await waitFor("the create-task request's server span", () =>
    receiver.spans.find((s) => s.name === "POST /workspaces/{workspace_id}/tasks" && s.attributes["taskboard.request_id"] === requestId),
  );
  const expected: [string, string, number][] = [
    ["gateway", "POST /workspaces/{workspace_id}/tasks", SERVER],
    ["gateway", "taskboard.task.v1.TaskService/CreateTasks", CLIENT],
    ["task", "taskboard.task.v1.TaskService/CreateTasks", SERVER],
    ["task", "taskboard.task.v1.TaskService/CreateTasks item", SERVER],
    ["task", "WITH", CLIENT],
    ["task", "outbox publish", PRODUCER],
    ["notify", "notify-task-created process", CONSUMER],
    ["notify", "SESv2/SendEmail", CLIENT],
    ["gateway", "ws fan-out", CONSUMER],
    ["webhooks", "webhooks process", CONSUMER],
    ["webhooks", "webhook POST", CLIENT],
  ];
  const has = (spans: ReceivedSpan[], [service, name, kind]: [string, string, number]) =>
    spans.some((s) => s.service === service && s.name === name && s.kind === kind);
  const spans = await waitFor(
    "every span of the trace",
    () => {
      // Complete: every expected span there, and every span's parent too (processes export in their own batches).
      const trace = receiver.trace(root.traceId);
      const ids = new Set(trace.map((s) => s.spanId));
      return expected.every((e) => has(trace, e)) && trace.every((s) => s === root || ids.has(s.parentSpanId)) && trace;
    },
    20_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; the trace has:\n${spanTree(receiver.trace(root.traceId))}`);
  });
  console.log(`the trace of one create-task:\n${spanTree(spans)}`);

  // One tree: the request's span is the only root; every other span's parent is in the trace.
  const ids = new Set(spans.map((s) => s.spanId));
  expect(spans.filter((s) => !ids.has(s.parentSpanId)).map((s) => s.name)).toEqual([root.name]);
  // The chain, parent by parent: fan-out ← publish ← the request's item of the batch in the
  // task service ← the route; the item links to the batch call that carried it.
  const parentOf = (span: ReceivedSpan) => spans.find((s) => s.spanId === span.parentSpanId)!;
  const fanOut = spans.find((s) => s.name === "ws fan-out")!;
  const publish = parentOf(fanOut);
  expect([publish.service, publish.name]).toEqual(["task", "outbox publish"]);
  const item = parentOf(publish);
  expect([item.service, item.name]).toEqual(["task", "taskboard.task.v1.TaskService/CreateTasks item"]);
  expect(parentOf(item)).toBe(root);
  const batch = spans.find((s) => s.service === "task" && s.name === "taskboard.task.v1.TaskService/CreateTasks")!;
  expect((item as unknown as { links?: { spanId: string }[] }).links?.map((l) => l.spanId)).toEqual([batch.spanId]);
  expect(parentOf(parentOf(batch))).toBe(root);
  const consumed = spans.find((s) => s.name === "notify-task-created process")!;
  expect(parentOf(consumed)).toBe(publish);
  expect(consumed.attributes["taskboard.event.type"]).toBe("task.created");
  expect(parentOf(spans.find((s) => s.name === "SESv2/SendEmail")!).service).toBe("notify");
  // The webhook's POST, sent later by the dispatcher, belongs to the delivery that recorded it.
  const post = spans.find((s) => s.name === "webhook POST")!;
  expect(parentOf(post).name).toBe("webhooks process");
  expect(post.attributes["http.response.status_code"]).toBe(204);
  // The SQL spans carry the statement's text with placeholders, never its values.
  const sql = spans.filter((s) => s.attributes["db.system.name"] === "postgresql");
  expect(sql.length).toBeGreaterThan(0);
  expect(sql.map((s) => String(s.attributes["db.query.text"])).join("\n")).not.toContain("Follow me");
  expect(receiver.contentTypes).toEqual(new Set(["application/json"]));
});

test("tracing: an export (a JetStream job streaming rows through a cursor) runs and downloads with tracing on, in the trace of its request", async () => {
  const owner = await signUp(mesh.api, "Exporter");
  const workspaceId = (await owner.api.post("/workspaces", { name: "Exported" })).body.id as string;
  for (const title of ["one", "two", "three"]) expect((await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title })).status).toBe(201);
  const created = await owner.api.post(`/workspaces/${workspaceId}/exports`, { type: "tasks", format: "csv" });
  expect(created.status).toBe(202);
  const job = await waitFor("the export to finish", async () => {
    const res = await owner.api.get(`/exports/${created.body.id}`);
    return ["completed", "failed"].includes(res.body.status) && res.body;
  });
  expect(job.status, job.error ?? "").toBe("completed");
  const file = await owner.api.get<string>(`/exports/${job.id}/download`);
  expect(file.status).toBe(200);
  expect(String(file.body)).toContain("three");
  const root = await waitFor("the export request's span", () =>
    receiver.spans.find((s) => s.name === "POST /workspaces/{workspace_id}/exports" && s.attributes["taskboard.request_id"] === created.headers.get("x-request-id")),
  );
  await waitFor("the export job's consumer span in the request's trace", () => receiver.trace(root.traceId).some((s) => s.service === "export" && s.kind === CONSUMER));
});

test("tracing: with the collector gone, requests and their effects go on (spans are dropped, nothing fails)", async () => {
  await receiver.close();
  const owner = await signUp(mesh.api, "Untraced");
  const workspaceId = (await owner.api.post("/workspaces", { name: "No collector" })).body.id as string;
  const room = await RoomClient.open(mesh.url, workspaceId, owner.accessToken);
  clients.push(room);
  expect((await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Still here" })).status).toBe(201);
  await room.waitFor("the task.created event", (f) => f.type === "task.created");
});
