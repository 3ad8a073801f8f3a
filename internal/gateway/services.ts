import type { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { ExportServiceClient } from "../../api/gen/taskboard/export/v1/export.js";
import type { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import type { WebhookServiceClient } from "../../api/gen/taskboard/webhooks/v1/webhooks.js";
import type { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import type { OutgoingCall, ServiceClient } from "../platform/grpc-client.js";
import type { Memberships } from "../platform/memberships.js";
import type { TaskBatches } from "./task-batches.js";
import { traceHeaders } from "../platform/tracing.js";

/** The gRPC services behind the gateway. */
export interface Services {
  auth: ServiceClient<AuthServiceClient>;
  workspace: ServiceClient<WorkspaceServiceClient>;
  task: ServiceClient<TaskServiceClient>;
  export: ServiceClient<ExportServiceClient>;
  webhooks: ServiceClient<WebhookServiceClient>;
  /** Coalesced create-task and get-task calls (the hot paths). */
  taskBatches: TaskBatches;
  /** Workspace roles, cached and invalidated by membership changes. */
  memberships: Memberships;
}

/** The caller of a batched call's item. */
export function itemCaller(ctx: { caller: { token: string } | undefined; requestId: string }) {
  const trace = traceHeaders();
  return { token: ctx.caller?.token ?? "", request_id: ctx.requestId, traceparent: trace?.["traceparent"] ?? "", tracestate: trace?.["tracestate"] ?? "" };
}

/** A call on behalf of the request's caller (token forwarded) with its request id. */
export function onBehalfOf(ctx: { caller: { token: string } | undefined; requestId: string }): OutgoingCall {
  return { token: ctx.caller?.token, requestId: ctx.requestId };
}

/** A call the gateway makes as itself: with the internal credential, so that what it forwards (the client's address) is believed. */
export function asGateway(ctx: { requestId: string }): OutgoingCall {
  return { internal: true, requestId: ctx.requestId };
}
