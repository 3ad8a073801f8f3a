import { json, noContent, route, type Route } from "../router.js";
import { presentPage, presentTask } from "../presenters.js";
import { assignTaskBody, createTaskBody, taskListQuery, updateTaskBody } from "../schemas.js";
import { itemCaller, onBehalfOf, type Services } from "../services.js";

/** A body field that may be null, as gRPC's NullableString: absent stays absent, null is `{}`. */
const nullable = (value: string | null | undefined) => (value === undefined ? undefined : { value: value ?? undefined });

export function taskRoutes(services: Services): Route[] {
  const tasks = services.task;
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/tasks",
      auth: "user",
      body: createTaskBody,
      handle: async (ctx) => {
        const task = await services.taskBatches.create.call({
          caller: itemCaller(ctx),
          request: {
            ...ctx.body,
            workspace_id: ctx.params.workspace_id!,
            assignee_id: ctx.body.assignee_id ?? undefined,
            due_date: ctx.body.due_date ?? undefined,
          },
        });
        return json(201, presentTask(task));
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/tasks",
      auth: "user",
      query: taskListQuery,
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
      handle: async (ctx) =>
        json(200, presentTask(await services.taskBatches.get.call({ caller: itemCaller(ctx), request: { task_id: ctx.params.task_id! } }))),
    }),
    route({
      method: "put",
      path: "/tasks/{task_id}",
      auth: "user",
      body: updateTaskBody,
      handle: async (ctx) => {
        const task = await tasks.call(
          "updateTask",
          {
            ...ctx.body,
            task_id: ctx.params.task_id!,
            assignee_id: nullable(ctx.body.assignee_id),
            due_date: nullable(ctx.body.due_date),
          },
          onBehalfOf(ctx),
        );
        return json(200, presentTask(task));
      },
    }),
    route({
      method: "delete",
      path: "/tasks/{task_id}",
      auth: "user",
      handle: async (ctx) => {
        await tasks.call("deleteTask", { task_id: ctx.params.task_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "post",
      path: "/tasks/{task_id}/assign",
      auth: "user",
      body: assignTaskBody,
      handle: async (ctx) => {
        const task = await tasks.call(
          "assignTask",
          { task_id: ctx.params.task_id!, assignee_id: ctx.body.assignee_id ?? undefined },
          onBehalfOf(ctx),
        );
        return json(200, presentTask(task));
      },
    }),
  ];
}
