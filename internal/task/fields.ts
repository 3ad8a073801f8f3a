import { z } from "zod";
import { fields } from "../platform/validate.js";

export const TASK_STATUSES = ["pending", "in_progress", "completed", "cancelled"] as const;
export const TASK_PRIORITIES = ["low", "medium", "high", "urgent"] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TaskPriority = (typeof TASK_PRIORITIES)[number];

/** The dates a task may carry: years 1 to 9999, which Postgres stores and RFC 3339 writes. */
const EARLIEST = Date.parse("0001-01-01T00:00:00Z");
const LATEST = Date.parse("9999-12-31T23:59:59.999Z");

/** An RFC 3339 date-time (Z or an offset) in years 1–9999, normalised to UTC ISO with milliseconds. */
const dateTime = (name: string) =>
  z.iso
    .datetime({ offset: true, error: `${name} must be an RFC 3339 date-time, e.g. 2030-01-31T17:00:00Z` })
    .refine((v) => !Number.isNaN(Date.parse(v)), `${name} must be an RFC 3339 date-time, e.g. 2030-01-31T17:00:00Z`)
    .refine((v) => Date.parse(v) >= EARLIEST && Date.parse(v) <= LATEST, `${name} must be between 0001-01-01 and 9999-12-31`)
    .transform((v) => new Date(v).toISOString());

/** Task and comment fields, shared by the gateway's request schemas and the service. */
export const taskFields = {
  title: fields.text("title", 200),
  description: fields.optionalText("description", 10_000),
  status: z.enum(TASK_STATUSES, `status must be one of ${TASK_STATUSES.join(", ")}`),
  priority: z.enum(TASK_PRIORITIES, `priority must be one of ${TASK_PRIORITIES.join(", ")}`),
  dueDate: dateTime("due_date"),
  dueBefore: dateTime("due_before"),
  dueAfter: dateTime("due_after"),
  /** Search text: words are matched as prefixes in title and description. */
  q: z
    .string("q must be a string")
    .trim()
    .min(1, "q must not be empty")
    .max(200, "q must be at most 200 characters")
    .refine((v) => /[\p{L}\p{N}]/u.test(v), "q must contain a letter or a digit"),
  content: fields.text("content", 10_000),
};
