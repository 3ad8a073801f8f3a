import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuthServiceClient } from "../api/gen/taskboard/auth/v1/auth.js";
import { TaskServiceClient } from "../api/gen/taskboard/task/v1/task.js";
import { WorkspaceServiceClient } from "../api/gen/taskboard/workspace/v1/workspace.js";
import { authHandlers } from "../internal/auth/server.js";
import { exportHandlers } from "../internal/export/server.js";
import { AppError } from "../internal/platform/errors.js";
import { connectService, type OutgoingCall } from "../internal/platform/grpc-client.js";
import { CALLERS, type Access, type Caller } from "../internal/platform/principal.js";
import { taskHandlers } from "../internal/task/server.js";
import { webhookHandlers } from "../internal/webhooks/server.js";
import { workspaceHandlers } from "../internal/workspace/server.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

// Per-caller internal credentials (README "Security model"): each process presents its own
// secret, and each gRPC method admits only the processes it names. The expected table is
// written out here, so that widening a method's allowlist fails this test.

/** The methods some process may call as itself, and which. Every other method admits users only (or anyone). */
const INTERNAL: Record<string, { callers: Caller[]; user: boolean }> = {
  "auth.lookupUsers": { callers: ["workspace", "notify"], user: false },
  "auth.issuePasswordReset": { callers: ["notify"], user: false },
  "auth.unsubscribeTokens": { callers: ["notify"], user: false },
  "workspace.getMembership": { callers: ["gateway", "task"], user: true },
  "workspace.listMemberIds": { callers: ["notify"], user: false },
  "workspace.listGroups": { callers: ["gateway"], user: true },
  "task.getTask": { callers: ["notify"], user: true },
  "task.listComments": { callers: ["notify"], user: true },
  "task.streamTasks": { callers: ["export"], user: false },
  "task.streamComments": { callers: ["export"], user: false },
  "task.countRows": { callers: ["export"], user: false },
  "task.createTasks": { callers: ["gateway"], user: false },
  "task.getTasks": { callers: ["gateway"], user: false },
};

const none = {} as never;
const declared: Record<string, Record<string, { access: Access }>> = {
  auth: authHandlers(none),
  workspace: workspaceHandlers(none, none),
  task: taskHandlers(none, none),
  export: exportHandlers(none),
  webhooks: webhookHandlers(none),
};

let mesh: Mesh;
let owner: SignedUp;
let workspaceId: string;
let taskId: string;

beforeAll(async () => {
  mesh = await Mesh.start();
  owner = await signUp(mesh.api, "Owner");
  workspaceId = (await owner.api.post("/workspaces", { name: "Internal" })).body.id;
  taskId = (await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "a task" })).body.id;
  await owner.api.post(`/workspaces/${workspaceId}/comments`, { task_id: taskId, content: "a comment" });
});

afterAll(() => mesh?.stop());

/** A batch item's caller: the user's token and a request id, no trace context. */
function onBehalfOf(user: SignedUp, requestId: string) {
  return { token: user.accessToken, request_id: requestId, traceparent: "", tracestate: "" };
}

/** One valid call of each method of INTERNAL, made with `as` (a process's credential, a user's token, or none). */
function calls(as: "anonymous" | "user" | Caller): Record<string, () => Promise<unknown>> {
  const caller = as === "anonymous" || as === "user" ? "gateway" : as;
  const call: OutgoingCall = as === "anonymous" ? {} : as === "user" ? { token: owner.accessToken } : { internal: true };
  const auth = mesh.grpcClient(AuthServiceClient, "auth", caller);
  const workspace = mesh.grpcClient(WorkspaceServiceClient, "workspace", caller);
  const task = mesh.grpcClient(TaskServiceClient, "task", caller);
  const drain = async (stream: AsyncIterable<unknown>) => {
    for await (const _ of stream) void _;
  };
  const onBehalf = onBehalfOf(owner, "internal-access");
  return {
    "auth.lookupUsers": () => auth.call("lookupUsers", { user_ids: [owner.id], emails: [] }, call),
    "auth.issuePasswordReset": () => auth.call("issuePasswordReset", { user_id: owner.id }, call),
    "auth.unsubscribeTokens": () => auth.call("unsubscribeTokens", { user_ids: [owner.id], emails: [] }, call),
    "workspace.getMembership": () => workspace.call("getMembership", { workspace_id: workspaceId, user_id: owner.id }, call),
    "workspace.listMemberIds": () => workspace.call("listMemberIds", { workspace_id: workspaceId }, call),
    "workspace.listGroups": () => workspace.call("listGroups", { workspace_id: workspaceId }, call),
    "task.getTask": () => task.call("getTask", { task_id: taskId }, call),
    "task.listComments": () => task.call("listComments", { task_id: taskId, page: { limit: 10, cursor: "" } }, call),
    "task.streamTasks": () => drain(task.stream("streamTasks", { workspace_id: workspaceId }, call)),
    "task.streamComments": () => drain(task.stream("streamComments", { workspace_id: workspaceId }, call)),
    "task.countRows": () => task.call("countRows", { workspace_id: workspaceId }, call),
    "task.createTasks": () => task.call("createTasks", { items: [{ caller: onBehalf, request: { workspace_id: workspaceId, title: "batched", labels: [] } }] }, call),
    "task.getTasks": () => task.call("getTasks", { items: [{ caller: onBehalf, request: { task_id: taskId } }] }, call),
  };
}

async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "ok";
  } catch (error) {
    return error instanceof AppError ? error.code : String(error);
  }
}

describe("internal credentials", () => {
  test("access: each method declares exactly the callers of the table, and every other method admits no process", () => {
    for (const [service, handlers] of Object.entries(declared)) {
      for (const [method, handler] of Object.entries(handlers)) {
        const expected = INTERNAL[`${service}.${method}`];
        const access = handler.access;
        if (expected) expect(access, `${service}.${method}`).toEqual({ callers: expected.callers, ...(expected.user ? { user: true } : {}) });
        else expect(["public", "user"], `${service}.${method} admits no process`).toContain(access);
      }
    }
  });

  test("access: every internal method admits the processes it names and refuses every other process's credential, a user's token and none", async () => {
    const seen: Record<string, Record<string, string>> = {};
    for (const as of [...CALLERS, "user", "anonymous"] as const) {
      for (const [name, call] of Object.entries(calls(as))) (seen[name] ??= {})[as] = await outcome(call);
    }
    for (const [name, rule] of Object.entries(INTERNAL)) {
      const expected: Record<string, string> = { anonymous: "unauthorized", user: rule.user ? "ok" : "forbidden" };
      for (const caller of CALLERS) expected[caller] = rule.callers.includes(caller) ? "ok" : "forbidden";
      expect(seen[name], name).toEqual(expected);
    }
    // The gateway's credential, the only one on the internet-facing process, opens nothing
    // that skips a user's authorisation: its methods authorise every item by its own token.
    expect(Object.entries(INTERNAL).filter(([, rule]) => rule.callers.includes("gateway")).map(([name]) => name)).toEqual([
      "workspace.getMembership",
      "workspace.listGroups",
      "task.createTasks",
      "task.getTasks",
    ]);
  });

  test("access: a credential no process holds is refused as unauthenticated", async () => {
    const stranger = connectService(TaskServiceClient, `127.0.0.1:${mesh.processes.get("task")!.ports["grpc"]}`, randomBytes(32).toString("base64url"), 5_000);
    try {
      await expect(stranger.call("countRows", { workspace_id: workspaceId }, { internal: true })).rejects.toMatchObject({ code: "unauthorized" });
    } finally {
      stranger.close();
    }
  });

  test("access: the gateway's batches still authorise each item by its user's token", async () => {
    const gateway = mesh.grpcClient(TaskServiceClient, "task", "gateway");
    const stranger = await signUp(mesh.api, "Stranger");
    const { results } = await gateway.call(
      "getTasks",
      { items: [{ caller: onBehalfOf(owner, "a"), request: { task_id: taskId } }, { caller: onBehalfOf(stranger, "b"), request: { task_id: taskId } }] },
      { internal: true },
    );
    expect(results.map((r) => (r.outcome?.$case === "task" ? "task" : r.outcome?.value.code))).toEqual(["task", "not_found"]);
  });

  test("limits: internal batches are bounded (at most 128 items)", async () => {
    const gateway = mesh.grpcClient(TaskServiceClient, "task", "gateway");
    const items = Array.from({ length: 129 }, () => ({ caller: onBehalfOf(owner, "x"), request: { task_id: taskId } }));
    await expect(gateway.call("getTasks", { items }, { internal: true })).rejects.toMatchObject({ code: "validation_failed" });
  });
});
