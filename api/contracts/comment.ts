import { z } from "zod";
import { field, out, pageOf } from "./fields.js";

/** Comments on tasks (API.md "Comments"): the resource and its inputs, defined once (see task.ts). */

const content = field.text("content", 10_000);

export const Comment = z
  .object({
    id: out.id(),
    workspace_id: out.id(),
    task_id: out.id(),
    author_id: out.id(),
    content: z.string(),
    created_at: out.time(),
    updated_at: out.time(),
  })
  .meta({ id: "Comment" });
export type Comment = z.output<typeof Comment>;

export const CreateComment = z.strictObject({ task_id: field.id("task_id"), content }).meta({ id: "CreateCommentRequest" });
export const UpdateComment = z.strictObject({ content }).meta({ id: "UpdateCommentRequest" });
export const CommentList = pageOf(Comment, "CommentList");
