import { z } from "zod";
import { field, out, pageOf, pageQuery, partialUpdate } from "./fields.js";

/**
 * Tasks (API.md "Tasks"): the resource, its create/update/filter inputs and
 * their rules, defined once. The gateway validates requests with these, the
 * task service checks its gRPC input with them, the resource and event data
 * are presented from `Task`, the store reads and writes its columns, exports
 * write its fields, and the OpenAPI document is generated from them.
 */

export const TASK_STATUSES = ["pending", "in_progress", "completed", "cancelled"] as const;
export const TASK_PRIORITIES = ["low", "medium", "high", "urgent"] as const;

export const TaskStatus = z.enum(TASK_STATUSES, `status must be one of ${TASK_STATUSES.join(", ")}`).meta({ id: "TaskStatus" });
export const TaskPriority = z.enum(TASK_PRIORITIES, `priority must be one of ${TASK_PRIORITIES.join(", ")}`).meta({ id: "TaskPriority" });

export type TaskStatus = z.output<typeof TaskStatus>;
export type TaskPriority = z.output<typeof TaskPriority>;

const label = z
  .string("a label must be a string")
  .trim()
  .min(1, "a label must not be empty")
  .max(32, "a label must be at most 32 characters")
  .refine((v) => !/[\u0000-\u001f]/.test(v), "a label contains control characters");

/** The fields a client writes, with their rules. */
const writable = {
  labels: z
    .array(label, "labels must be a list of strings")
    .max(20, "labels must be at most 20")
    .transform((labels) => [...new Set(labels)])
    .meta({ description: "Up to 20 distinct labels of 1–32 characters; repeats are dropped." }),
  title: field.text("title", 200),
  description: field.optionalText("description", 10_000),
  status: TaskStatus,
  priority: TaskPriority,
  assignee_id: field.id("assignee_id").nullable().meta({ description: "A member of the workspace; null for none." }),
  due_date: field.dateTime("due_date").nullable(),
};

/** A task as the API shows it, in REST answers, event data and exports. */
export const Task = z
  .object({
    id: out.id(),
    workspace_id: out.id(),
    title: z.string(),
    description: z.string(),
    status: TaskStatus,
    priority: TaskPriority,
    assignee_id: out.id().nullable(),
    created_by: out.id(),
    due_date: out.time().nullable(),
    labels: z.array(z.string()),
    watcher_ids: z.array(out.id()).meta({ description: "Who hears about the task: its creator, every assignee, and members who chose to watch it." }),
    created_at: out.time(),
    updated_at: out.time(),
  })
  .meta({ id: "Task" });
export type Task = z.output<typeof Task>;

export const CreateTask = z
  .strictObject({
    title: writable.title,
    description: writable.description.default(""),
    status: writable.status.default("pending"),
    priority: writable.priority.default("medium"),
    assignee_id: writable.assignee_id.optional(),
    due_date: writable.due_date.optional(),
    labels: writable.labels.default([]),
  })
  .meta({ id: "CreateTaskRequest" });

/** A partial update: only the given fields change; null clears a nullable one. */
export const UpdateTask = partialUpdate(
  {
    title: writable.title.optional(),
    description: writable.description.optional(),
    status: writable.status.optional(),
    priority: writable.priority.optional(),
    assignee_id: writable.assignee_id.optional(),
    due_date: writable.due_date.optional(),
    labels: writable.labels.optional(),
  },
  "UpdateTaskRequest",
);

/** `assignee_id` must be given: a member's id, or null to unassign. */
export const AssignTask = z
  .strictObject({ assignee_id: z.union([field.id("assignee_id"), z.null()], "assignee_id must be a UUID or null") })
  .meta({ id: "AssignTaskRequest" });

/** `GET /workspaces/{id}/tasks`: filters combine with AND. */
export const TaskFilter = z.object({
  status: TaskStatus.optional(),
  priority: TaskPriority.optional(),
  assignee_id: field.id("assignee_id").optional(),
  q: z
    .string("q must be a string")
    .trim()
    .min(1, "q must not be empty")
    .max(200, "q must be at most 200 characters")
    .refine((v) => /[\p{L}\p{N}]/u.test(v), "q must contain a letter or a digit")
    .optional()
    .meta({ description: "Words matched as prefixes in title and description." }),
  due_before: field.dateTime("due_before").optional().meta({ description: "Only tasks due before this time." }),
  due_after: field.dateTime("due_after").optional().meta({ description: "Only tasks due after this time." }),
  label: z
    .union([label.transform((v) => [v]), z.array(label).max(20, "at most 20 labels")])
    .default([])
    .meta({ description: "Only tasks that carry this label; repeat it for tasks that carry every one given." }),
});

export const TaskListQuery = pageQuery.extend(TaskFilter.shape);
export const TaskList = pageOf(Task, "TaskList");

/** At most this many watchers per task. */
export const MAX_WATCHERS = 100;

export const WatcherList = z.object({ items: z.array(out.id()) }).meta({ id: "WatcherList" });
