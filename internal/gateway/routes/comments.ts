import { Comment, CommentList, CreateComment, UpdateComment } from "../../../api/contracts/comment.js";
import { pageQuery } from "../../../api/contracts/fields.js";
import { json, noContent, route, type Route } from "../router.js";
import { presentComment, presentPage } from "../presenters.js";
import { onBehalfOf, type Services } from "../services.js";

export function commentRoutes(services: Services): Route[] {
  const tasks = services.task;
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/comments",
      auth: "user",
      body: CreateComment,
      doc: {
        operationId: "createComment",
        summary: "Comment on a task",
        description: "Who: member. `task_id` must be a task of this workspace (404 otherwise).",
        tag: "Comments",
        ok: { status: 201, description: "The new comment.", schema: Comment },
      },
      handle: async (ctx) => {
        const comment = await tasks.call("createComment", { ...ctx.body, workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx));
        return json(201, presentComment(comment));
      },
    }),
    route({
      method: "get",
      path: "/tasks/{task_id}/comments",
      auth: "user",
      query: pageQuery,
      doc: {
        operationId: "listTaskComments",
        summary: "List the comments of a task",
        description: "Who: member (of the task's workspace). Oldest first.",
        tag: "Comments",
        ok: { status: 200, description: "A page of comments, oldest first.", schema: CommentList },
      },
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
      doc: {
        operationId: "getComment",
        summary: "Get a comment",
        description: "Who: member (of the comment's workspace).",
        tag: "Comments",
        ok: { status: 200, description: "The comment.", schema: Comment },
      },
      handle: async (ctx) =>
        json(200, presentComment(await tasks.call("getComment", { comment_id: ctx.params.comment_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/comments/{comment_id}",
      auth: "user",
      body: UpdateComment,
      doc: {
        operationId: "updateComment",
        summary: "Edit a comment",
        description: "Who: author.",
        tag: "Comments",
        ok: { status: 200, description: "The updated comment.", schema: Comment },
      },
      handle: async (ctx) => {
        const comment = await tasks.call("updateComment", { ...ctx.body, comment_id: ctx.params.comment_id! }, onBehalfOf(ctx));
        return json(200, presentComment(comment));
      },
    }),
    route({
      method: "delete",
      path: "/comments/{comment_id}",
      auth: "user",
      doc: {
        operationId: "deleteComment",
        summary: "Delete a comment",
        description: "Who: author, owner, admin (owner and admin are workspace roles).",
        tag: "Comments",
        ok: { status: 204, description: "Deleted." },
      },
      handle: async (ctx) => {
        await tasks.call("deleteComment", { comment_id: ctx.params.comment_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
  ];
}
