import { json, noContent, route, type Route } from "../router.js";
import { presentComment, presentPage } from "../presenters.js";
import { createCommentBody, pageQuery, updateCommentBody } from "../schemas.js";
import { onBehalfOf, type Services } from "../services.js";

export function commentRoutes(services: Services): Route[] {
  const tasks = services.task;
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/comments",
      auth: "user",
      body: createCommentBody,
      handle: async (ctx) => {
        const comment = await tasks.call(
          "createComment",
          { workspace_id: ctx.params.workspace_id!, task_id: ctx.body.task_id, content: ctx.body.content },
          onBehalfOf(ctx),
        );
        return json(201, presentComment(comment));
      },
    }),
    route({
      method: "get",
      path: "/tasks/{task_id}/comments",
      auth: "user",
      query: pageQuery,
      handle: async (ctx) => {
        const list = await tasks.call(
          "listComments",
          { task_id: ctx.params.task_id!, page: { limit: ctx.query.limit ?? 0, cursor: ctx.query.cursor ?? "" } },
          onBehalfOf(ctx),
        );
        return json(200, presentPage(list, presentComment));
      },
    }),
    route({
      method: "get",
      path: "/comments/{comment_id}",
      auth: "user",
      handle: async (ctx) =>
        json(200, presentComment(await tasks.call("getComment", { comment_id: ctx.params.comment_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/comments/{comment_id}",
      auth: "user",
      body: updateCommentBody,
      handle: async (ctx) => {
        const comment = await tasks.call(
          "updateComment",
          { comment_id: ctx.params.comment_id!, content: ctx.body.content },
          onBehalfOf(ctx),
        );
        return json(200, presentComment(comment));
      },
    }),
    route({
      method: "delete",
      path: "/comments/{comment_id}",
      auth: "user",
      handle: async (ctx) => {
        await tasks.call("deleteComment", { comment_id: ctx.params.comment_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
  ];
}
