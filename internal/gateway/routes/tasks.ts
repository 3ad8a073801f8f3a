import type { UpdateTaskRequest } from "../../../api/gen/taskboard/task/v1/task.js";
import { toPatch, withoutNulls } from "../../../api/contracts/shape.js";
import { AssignTask, CreateTask, Task, TaskList, TaskListQuery, UpdateTask, WatcherList } from "../../../api/contracts/task.js";
import { json, noContent, route, type Route } from "../router.js";
import { presentPage, presentTask } from "../presenters.js";
import { itemCaller, onBehalfOf, type Services } from "../services.js";

export function taskRoutes(services: Services): Route[] {
  const tasks = services.task;
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/tasks",
      auth: "user",
      body: CreateTask,
      doc: {
        operationId: "createTask",
        summary: "Create a task",
        description: "Who: member. Defaults: status `pending`, priority `medium`. 422 when `assignee_id` is not a member of the workspace.",
        tag: "Tasks",
        ok: { status: 201, description: "The new task.", schema: Task },
        errors: [422],
      },
      handle: async (ctx) => {
        const request = { ...withoutNulls(ctx.body), workspace_id: ctx.params.workspace_id! };
        const task = await services.taskBatches.create.call({ caller: itemCaller(ctx), request });
        return json(201, presentTask(task));
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/tasks",
      auth: "user",
      query: TaskListQuery,
      doc: {
        operationId: "listTasks",
        summary: "List the tasks of a workspace",
        description: "Who: member. Newest first. Filters combine with AND.",
        tag: "Tasks",
        ok: { status: 200, description: "A page of tasks.", schema: TaskList },
      },
      handle: async (ctx) => {
        const { limit, cursor, ...filters } = ctx.query;
        const list = await tasks.call(
          "listTasks",
          { ...filters, workspace_id: ctx.params.workspace_id!, page: { limit: limit ?? 0, cursor: cursor ?? "" } },
          onBehalfOf(ctx),
        );
        return json(200, presentPage(list, presentTask));
      },
    }),
    route({
      method: "get",
      path: "/tasks/{task_id}",
      auth: "user",
      doc: {
        operationId: "getTask",
        summary: "Get a task",
        description: "Who: member (of the task's workspace).",
        tag: "Tasks",
        ok: { status: 200, description: "The task.", schema: Task },
      },
      handle: async (ctx) =>
        json(200, presentTask(await services.taskBatches.get.call({ caller: itemCaller(ctx), request: { task_id: ctx.params.task_id! } }))),
    }),
    route({
      method: "put",
      path: "/tasks/{task_id}",
      auth: "user",
      body: UpdateTask,
      doc: {
        operationId: "updateTask",
        summary: "Update a task (partial)",
        description:
          "Who: member (of the task's workspace). Partial update: only the given fields change; null clears `assignee_id` or `due_date`. 422 when `assignee_id` is not a member of the workspace.",
        tag: "Tasks",
        ok: { status: 200, description: "The updated task.", schema: Task },
        errors: [422],
      },
      handle: async (ctx) => {
        const request = { ...toPatch<Omit<UpdateTaskRequest, "task_id">>(UpdateTask, ctx.body), task_id: ctx.params.task_id! };
        return json(200, presentTask(await tasks.call("updateTask", request, onBehalfOf(ctx))));
      },
    }),
    route({
      method: "delete",
      path: "/tasks/{task_id}",
      auth: "user",
      doc: {
        operationId: "deleteTask",
        summary: "Delete a task",
        description: "Who: creator, owner, admin (owner and admin are workspace roles).",
        tag: "Tasks",
        ok: { status: 204, description: "Deleted." },
      },
      handle: async (ctx) => {
        await tasks.call("deleteTask", { task_id: ctx.params.task_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "post",
      path: "/tasks/{task_id}/assign",
      auth: "user",
      body: AssignTask,
      doc: {
        operationId: "assignTask",
        summary: "Assign or unassign a task",
        description: "Who: member (of the task's workspace). The assignee must be a member of the workspace, else 422; `null` unassigns.",
        tag: "Tasks",
        ok: { status: 200, description: "The updated task.", schema: Task },
        errors: [422],
      },
      handle: async (ctx) => {
        const request = { task_id: ctx.params.task_id!, assignee_id: ctx.body.assignee_id ?? undefined };
        return json(200, presentTask(await tasks.call("assignTask", request, onBehalfOf(ctx))));
      },
    }),
    route({
      method: "get",
      path: "/tasks/{task_id}/watchers",
      auth: "user",
      doc: {
        operationId: "listWatchers",
        summary: "Who watches a task",
        description: "Who: member. User ids, in the order they began watching; the creator and every assignee watch a task from the start.",
        tag: "Tasks",
        ok: { status: 200, description: "The watchers.", schema: WatcherList },
      },
      handle: async (ctx) => json(200, await tasks.call("listWatchers", { task_id: ctx.params.task_id! }, onBehalfOf(ctx))),
    }),
    ...(["put", "delete"] as const).map((method) =>
      route({
        method,
        path: "/tasks/{task_id}/watchers/{user_id}",
        auth: "user",
        doc: {
          operationId: method === "put" ? "addWatcher" : "removeWatcher",
          summary: method === "put" ? "Watch a task" : "Stop watching a task",
          description:
            "Who: a member for themself; owner or admin for any member. The user must be a member of the task's workspace (422). Idempotent: nothing changes, and no event is published, when it already is as asked; otherwise `task.watcher_added` / `task.watcher_removed` with `data` `{task_id, user_id}`.",
          tag: "Tasks",
          ok: { status: 204, description: method === "put" ? "The user watches the task." : "The user does not watch the task." },
          errors: [422],
        },
        handle: async (ctx) => {
          const ref = { task_id: ctx.params.task_id!, user_id: ctx.params.user_id! };
          await tasks.call(method === "put" ? "addWatcher" : "removeWatcher", ref, onBehalfOf(ctx));
          return noContent();
        },
      }),
    ),
  ];
}
