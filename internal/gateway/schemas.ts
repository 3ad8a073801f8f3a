import { z } from "zod";
import { userFields } from "../auth/fields.js";
import { MAX_PAGE_SIZE } from "../platform/cursor.js";
import { fields } from "../platform/validate.js";
import { workspaceFields } from "../workspace/fields.js";
import { taskFields } from "../task/fields.js";
import { exportFields } from "../export/fields.js";
import { eventCatalogue, type EventType } from "../platform/events.js";

/** Request bodies and queries of the REST API, validated at the edge (unknown fields are refused). */

const atLeastOne = (value: object) => Object.keys(value).length > 0;
const atLeastOneMessage = { message: "at least one field is required" };

export const pageQuery = z.object({
  limit: z.coerce
    .number("limit must be a number")
    .int("limit must be an integer")
    .min(1, "limit must be at least 1")
    .max(MAX_PAGE_SIZE, `limit must be at most ${MAX_PAGE_SIZE}`)
    .optional(),
  cursor: z.string().max(512, "cursor is too long").optional(),
});

export const registerBody = z.strictObject({
  name: userFields.name,
  email: userFields.email,
  password: userFields.password,
});

export const loginBody = z.strictObject({
  email: z.string("email must be a string").min(1, "email is required").max(254, "email is too long"),
  password: z.string("password must be a string").min(1, "password is required").max(1024, "password is too long"),
});

export const refreshTokenBody = z.strictObject({
  refresh_token: z.string("refresh_token must be a string").min(1, "refresh_token is required").max(512, "refresh_token is too long"),
});

export const createUserBody = registerBody.extend({ role: userFields.role.optional() });

export const updateUserBody = z
  .strictObject({
    name: userFields.name.optional(),
    email: userFields.email.optional(),
    password: userFields.password.optional(),
    email_notifications: userFields.email_notifications.optional(),
    role: userFields.role.optional(),
  })
  .refine(atLeastOne, atLeastOneMessage);

export const createWorkspaceBody = z.strictObject({
  name: workspaceFields.name,
  description: workspaceFields.description.optional(),
});

export const updateWorkspaceBody = z
  .strictObject({
    name: workspaceFields.name.optional(),
    description: workspaceFields.description.optional(),
  })
  .refine(atLeastOne, atLeastOneMessage);

export const addMemberBody = z
  .strictObject({
    user_id: fields.uuid("user_id").optional(),
    email: userFields.email.optional(),
    role: workspaceFields.grantableRole,
  })
  .refine((b) => (b.user_id === undefined) !== (b.email === undefined), {
    message: "exactly one of user_id or email is required",
  });

export const updateMemberBody = z.strictObject({ role: workspaceFields.grantableRole });

export const broadcastBody = z.strictObject({
  content: z.string("content must be a string").min(1, "content is required").max(10_000, "content must be at most 10000 characters"),
});

const workspaceEventTypes = Object.keys(eventCatalogue).filter((type) => !type.startsWith("user.")) as EventType[];

export const eventsQuery = pageQuery.extend({
  type: z.enum(workspaceEventTypes as [EventType, ...EventType[]], "type must be a workspace event type, e.g. task.created").optional(),
  aggregate_id: fields.uuid("aggregate_id").optional(),
  since: z
    .union(
      [z.string().regex(/^\d{1,15}$/).transform((v) => ({ afterSeq: Number(v) })), z.iso.datetime({ offset: true }).transform((v) => ({ time: new Date(v) }))],
      "since must be an RFC 3339 time or a stream sequence",
    )
    .optional(),
});

export const createTaskBody = z.strictObject({
  title: taskFields.title,
  description: taskFields.description.optional(),
  status: taskFields.status.optional(),
  priority: taskFields.priority.optional(),
  assignee_id: fields.uuid("assignee_id").nullable().optional(),
  due_date: taskFields.dueDate.nullable().optional(),
});

export const updateTaskBody = z
  .strictObject({
    title: taskFields.title.optional(),
    description: taskFields.description.optional(),
    status: taskFields.status.optional(),
    priority: taskFields.priority.optional(),
    assignee_id: fields.uuid("assignee_id").nullable().optional(),
    due_date: taskFields.dueDate.nullable().optional(),
  })
  .refine(atLeastOne, atLeastOneMessage);

/** `assignee_id` must be given: a member's id, or null to unassign. */
export const assignTaskBody = z.strictObject({
  assignee_id: z.union([fields.uuid("assignee_id"), z.null()], "assignee_id must be a UUID or null"),
});

export const taskListQuery = pageQuery.extend({
  status: taskFields.status.optional(),
  priority: taskFields.priority.optional(),
  assignee_id: fields.uuid("assignee_id").optional(),
  q: taskFields.q.optional(),
  due_before: taskFields.dueBefore.optional(),
  due_after: taskFields.dueAfter.optional(),
});

export const createCommentBody = z.strictObject({
  task_id: fields.uuid("task_id"),
  content: taskFields.content,
});

export const updateCommentBody = z.strictObject({ content: taskFields.content });

export const createExportBody = z.strictObject({
  type: exportFields.type,
  format: exportFields.format,
});
