import { TaskServiceService, type Task, type TaskResults } from "../../api/gen/taskboard/task/v1/task.js";
import type { AccessClaims } from "../platform/access-tokens.js";
import { boundedItems, principalOf, toItemError } from "../platform/batch.js";
import { AppError } from "../platform/errors.js";
import type { CallContext, Handlers } from "../platform/grpc-server.js";
import type { TaskService } from "./service.js";

/** gRPC handlers of taskboard.task.v1.TaskService; batch items are verified with `verify`, as single calls are. */
export function taskHandlers(service: TaskService, verify: (token: string) => Promise<AccessClaims>): Handlers<typeof TaskServiceService> {
  return {
    createTask: { access: "user", handle: (req, ctx) => service.createTask(ctx.principal, req) },
    listTasks: { access: "user", handle: (req, ctx) => service.listTasks(ctx.principal, req) },
    getTask: { access: { user: true, callers: ["notify"] }, handle: (req, ctx) => service.getTask(ctx.principal, req) },
    updateTask: { access: "user", handle: (req, ctx) => service.updateTask(ctx.principal, req) },
    deleteTask: {
      access: "user",
      handle: async (req, ctx) => {
        await service.deleteTask(ctx.principal, req);
        return {};
      },
    },
    assignTask: { access: "user", handle: (req, ctx) => service.assignTask(ctx.principal, req) },
    listWatchers: { access: "user", handle: (req, ctx) => service.listWatchers(ctx.principal, req) },
    addWatcher: {
      access: "user",
      handle: async (req, ctx) => {
        await service.setWatching(ctx.principal, req, true);
        return {};
      },
    },
    removeWatcher: {
      access: "user",
      handle: async (req, ctx) => {
        await service.setWatching(ctx.principal, req, false);
        return {};
      },
    },
    createComment: { access: "user", handle: (req, ctx) => service.createComment(ctx.principal, req) },
    listComments: { access: { user: true, callers: ["notify"] }, handle: (req, ctx) => service.listComments(ctx.principal, req) },
    getComment: { access: "user", handle: (req, ctx) => service.getComment(ctx.principal, req) },
    updateComment: { access: "user", handle: (req, ctx) => service.updateComment(ctx.principal, req) },
    deleteComment: {
      access: "user",
      handle: async (req, ctx) => {
        await service.deleteComment(ctx.principal, req);
        return {};
      },
    },
    // Whole workspaces, unchecked: the export worker, which authorised the job when it was created.
    streamTasks: { access: { callers: ["export"] }, stream: (req, ctx, send) => service.streamTasks(req, send, ctx.signal) },
    streamComments: { access: { callers: ["export"] }, stream: (req, ctx, send) => service.streamComments(req, send, ctx.signal) },
    countRows: { access: { callers: ["export"] }, handle: (req) => service.countRows(req) },
    // The gateway's batches: each item carries its user's token and is authorised on its own.
    createTasks: {
      access: { callers: ["gateway"] },
      handle: async (req, ctx) => {
        const items = await Promise.all(
          boundedItems(req.items).map(async (item) => ({ principal: await principalOf(item.caller, verify), input: item.request!, caller: item.caller })),
        );
        return results(await service.createTasks(items), ctx);
      },
    },
    getTasks: {
      access: { callers: ["gateway"] },
      handle: async (req, ctx) => {
        const items = await Promise.all(
          boundedItems(req.items).map(async (item) => ({ principal: await principalOf(item.caller, verify), task_id: item.request?.task_id ?? "", caller: item.caller })),
        );
        return results(await service.getTasks(items), ctx);
      },
    },
  };
}

function results(outcomes: (Task | AppError)[], ctx: CallContext): TaskResults {
  return {
    results: outcomes.map((outcome) => {
      if (!(outcome instanceof AppError)) return { outcome: { $case: "task", value: outcome } };
      if (outcome.code === "internal" || outcome.code === "dependency_unavailable") ctx.log.error({ err: outcome.cause ?? outcome }, "batch item failed");
      return { outcome: { $case: "error", value: toItemError(outcome) } };
    }),
  };
}
