import type { Comment, Task } from "../../api/gen/taskboard/task/v1/task.js";
import { Comment as CommentContract } from "../../api/contracts/comment.js";
import { fieldsOf, rowToMessage } from "../../api/contracts/shape.js";
import { Task as TaskContract, type TaskFilter, type UpdateTask } from "../../api/contracts/task.js";
import type { z } from "zod";
import type { Sql, TransactionSql } from "../platform/postgres.js";
import type { DueReminder } from "./reminders.js";

/**
 * A task's columns are its contract's fields (api/contracts/task.ts), plus
 * `seq` (list position) and `search` (never read). Rows are written with
 * times as RFC 3339 text, which Postgres parses, and read with times as Dates.
 */
type Times = "due_date" | "created_at" | "updated_at";
export type NewTask = TaskContract;
export type TaskRow = Omit<TaskContract, Times> & { due_date: Date | null; created_at: Date; updated_at: Date; seq: string };
export type CommentRow = Omit<CommentContract, "created_at" | "updated_at"> & { created_at: Date; updated_at: Date; seq: string };

/** A partial update as the contract checked it; null clears a field. */
export type TaskChanges = z.output<typeof UpdateTask>;

export type TaskFilters = Omit<z.output<typeof TaskFilter>, "q"> & {
  /** A to_tsquery expression over the `search` column (see prefixQuery). */
  search?: string | undefined;
};

const TASK_COLUMNS = [...fieldsOf(TaskContract), "seq"];
const COMMENT_COLUMNS = [...fieldsOf(CommentContract), "seq"];

export const toTask: (row: NewTask | TaskRow) => Task = rowToMessage<Task>(TaskContract);
export const toComment: (row: CommentRow) => Comment = rowToMessage<Comment>(CommentContract);

/**
 * The search text as a prefix query: each word (letters and digits only, so
 * nothing reaches the tsquery syntax) becomes `word:*`, all of them required.
 * "lau pla" finds "Launch plan". Undefined when no word is left.
 */
export function prefixQuery(text: string): string | undefined {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.length > 0 ? words.map((w) => `${w}:*`).join(" & ") : undefined;
}

const MAX_SEQ = "9223372036854775807";

/** `watcher_ids` with `userId` added at the end, unless it is there already. */
function watching(sql: Sql | TransactionSql, userId: string) {
  return sql`case when ${userId}::uuid = any(watcher_ids) then watcher_ids else array_append(watcher_ids, ${userId}::uuid) end`;
}

/** SQL over task.tasks and task.comments; every statement names the workspace when it knows it. */
export class TaskStore {
  constructor(private readonly sql: Sql) {}

  /** The INSERT of new tasks, every column given (for Outbox.write, which runs it with their events). */
  insertTasks(sql: Sql, tasks: NewTask[]) {
    return sql`insert into task.tasks ${sql(tasks)}`;
  }

  async tasksByIds(ids: string[]): Promise<TaskRow[]> {
    if (ids.length === 0) return [];
    return this.sql<TaskRow[]>`select ${this.sql(TASK_COLUMNS)} from task.tasks where id = any(${ids}::uuid[])`;
  }

  /** A task by id alone (the caller does not know its workspace yet). */
  async taskById(id: string): Promise<TaskRow | undefined> {
    const [row] = await this.sql<TaskRow[]>`select ${this.sql(TASK_COLUMNS)} from task.tasks where id = ${id}`;
    return row;
  }

  /** The task, locked until the transaction ends. */
  async lockTask(tx: TransactionSql, workspaceId: string, id: string): Promise<TaskRow | undefined> {
    const [row] = await tx<TaskRow[]>`
      select ${tx(TASK_COLUMNS)} from task.tasks where workspace_id = ${workspaceId} and id = ${id} for update`;
    return row;
  }

  /** Whether the task exists; it cannot be deleted until the transaction ends (its comments reference it). */
  async holdTask(tx: TransactionSql, workspaceId: string, id: string): Promise<boolean> {
    const rows = await tx`select 1 from task.tasks where workspace_id = ${workspaceId} and id = ${id} for key share`;
    return rows.length > 0;
  }

  /** Applies `changes`; a new assignee also becomes a watcher (API.md: every assignee watches). */
  async updateTask(tx: TransactionSql, workspaceId: string, id: string, changes: TaskChanges): Promise<TaskRow | undefined> {
    const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    const assignee = changes.assignee_id;
    const [row] = await tx<TaskRow[]>`
      update task.tasks set ${tx(set)}, updated_at = now()
        ${assignee ? tx`, watcher_ids = ${watching(tx, assignee)}` : tx``}
      where workspace_id = ${workspaceId} and id = ${id}
      returning ${tx(TASK_COLUMNS)}`;
    return row;
  }

  /** Adds or removes a watcher (the task locked by the caller); the task as it is then. */
  async setWatching(tx: TransactionSql, workspaceId: string, id: string, userId: string, watch: boolean): Promise<TaskRow | undefined> {
    const [row] = await tx<TaskRow[]>`
      update task.tasks set watcher_ids = ${watch ? watching(tx, userId) : tx`array_remove(watcher_ids, ${userId}::uuid)`}
      where workspace_id = ${workspaceId} and id = ${id}
      returning ${tx(TASK_COLUMNS)}`;
    return row;
  }

  async deleteTask(tx: TransactionSql, workspaceId: string, id: string): Promise<boolean> {
    const rows = await tx`delete from task.tasks where workspace_id = ${workspaceId} and id = ${id} returning id`;
    return rows.length > 0;
  }

  /** Newest first: `limit + 1` tasks created before position `before` (a seq), filtered. */
  async pageTasks(workspaceId: string, filters: TaskFilters, before: string | undefined, limit: number): Promise<TaskRow[]> {
    const sql = this.sql;
    return sql<TaskRow[]>`
      select ${sql(TASK_COLUMNS)} from task.tasks
      where workspace_id = ${workspaceId}
        and seq < ${before ?? MAX_SEQ}::bigint
        ${filters.status ? sql`and status = ${filters.status}` : sql``}
        ${filters.priority ? sql`and priority = ${filters.priority}` : sql``}
        ${filters.assignee_id ? sql`and assignee_id = ${filters.assignee_id}` : sql``}
        ${filters.due_before ? sql`and due_date < ${filters.due_before}` : sql``}
        ${filters.due_after ? sql`and due_date > ${filters.due_after}` : sql``}
        ${filters.search ? sql`and search @@ to_tsquery('simple', ${filters.search})` : sql``}
        ${filters.label.length > 0 ? sql`and labels @> ${filters.label}::text[]` : sql``}
      order by seq desc
      limit ${limit + 1}`;
  }

  /** Oldest first: up to `limit` tasks after position `after` (a seq), for streaming a whole workspace. */
  async taskBatch(workspaceId: string, after: string, limit: number): Promise<TaskRow[]> {
    return this.sql<TaskRow[]>`
      select ${this.sql(TASK_COLUMNS)} from task.tasks
      where workspace_id = ${workspaceId} and seq > ${after}::bigint
      order by seq limit ${limit}`;
  }

  /**
   * Claims up to `limit` reminders whose time has come (due_soon `leadMs` before the due
   * date, overdue at it), locked until the transaction ends and skipped by other
   * replicas meanwhile, with their tasks as they are now.
   */
  async claimDueReminders(tx: TransactionSql, leadMs: number, limit: number): Promise<DueReminder[]> {
    const rows = await tx<(TaskRow & { reminder_kind: DueReminder["kind"]; reminder_due: Date })[]>`
      with due as (
        select r.workspace_id, r.task_id, r.kind, r.due_date from task.reminders r
        where r.fired_at is null
          and r.due_date - case r.kind when 'due_soon' then ${leadMs}::bigint * interval '1 millisecond' else interval '0' end <= now()
        order by r.due_date
        limit ${limit}
        for update of r skip locked)
      select ${tx(TASK_COLUMNS.map((c) => `t.${c}`))}, due.kind as reminder_kind, due.due_date as reminder_due
      from due join task.tasks t on t.workspace_id = due.workspace_id and t.id = due.task_id`;
    return rows.map(({ reminder_kind, reminder_due, ...task }) => ({ kind: reminder_kind, due_date: reminder_due, task }));
  }

  async markFired(tx: TransactionSql, reminders: DueReminder[]): Promise<void> {
    if (reminders.length === 0) return;
    await tx`
      update task.reminders r set fired_at = now()
      from (select unnest(${reminders.map((r) => r.task.workspace_id)}::uuid[]) as workspace_id,
                   unnest(${reminders.map((r) => r.task.id)}::uuid[]) as task_id,
                   unnest(${reminders.map((r) => r.kind)}::text[]) as kind,
                   unnest(${reminders.map((r) => r.due_date.toISOString())}::timestamptz[]) as due_date) f
      where r.workspace_id = f.workspace_id and r.task_id = f.task_id and r.kind = f.kind and r.due_date = f.due_date`;
  }

  async insertComment(
    tx: TransactionSql,
    comment: { workspace_id: string; id: string; task_id: string; author_id: string; content: string },
  ): Promise<CommentRow> {
    const [row] = await tx<CommentRow[]>`insert into task.comments ${tx(comment)} returning ${tx(COMMENT_COLUMNS)}`;
    return row!;
  }

  async commentById(id: string): Promise<CommentRow | undefined> {
    const [row] = await this.sql<CommentRow[]>`select ${this.sql(COMMENT_COLUMNS)} from task.comments where id = ${id}`;
    return row;
  }

  async updateComment(tx: TransactionSql, workspaceId: string, id: string, content: string): Promise<CommentRow | undefined> {
    const [row] = await tx<CommentRow[]>`
      update task.comments set content = ${content}, updated_at = now()
      where workspace_id = ${workspaceId} and id = ${id} returning ${tx(COMMENT_COLUMNS)}`;
    return row;
  }

  async deleteComment(tx: TransactionSql, workspaceId: string, id: string): Promise<boolean> {
    const rows = await tx`delete from task.comments where workspace_id = ${workspaceId} and id = ${id} returning id`;
    return rows.length > 0;
  }

  /** Oldest first: `limit + 1` comments of a task after position `after` (a seq). */
  async pageComments(workspaceId: string, taskId: string, after: string | undefined, limit: number): Promise<CommentRow[]> {
    return this.sql<CommentRow[]>`
      select ${this.sql(COMMENT_COLUMNS)} from task.comments
      where workspace_id = ${workspaceId} and task_id = ${taskId} and seq > ${after ?? "0"}::bigint
      order by seq limit ${limit + 1}`;
  }

  /** Oldest first: up to `limit` comments of a workspace after position `after`. */
  async commentBatch(workspaceId: string, after: string, limit: number): Promise<CommentRow[]> {
    return this.sql<CommentRow[]>`
      select ${this.sql(COMMENT_COLUMNS)} from task.comments
      where workspace_id = ${workspaceId} and seq > ${after}::bigint
      order by seq limit ${limit}`;
  }

  async countRows(workspaceId: string): Promise<{ tasks: number; comments: number }> {
    const [row] = await this.sql<{ tasks: string; comments: string }[]>`
      select (select count(*) from task.tasks where workspace_id = ${workspaceId}) as tasks,
             (select count(*) from task.comments where workspace_id = ${workspaceId}) as comments`;
    return { tasks: Number(row!.tasks), comments: Number(row!.comments) };
  }

  /** Deletes every task and comment of a workspace; counts what was there. */
  async purgeWorkspace(workspaceId: string): Promise<{ tasks: number; comments: number }> {
    return this.sql.begin(async (tx) => {
      const comments = await tx`delete from task.comments where workspace_id = ${workspaceId}`;
      const tasks = await tx`delete from task.tasks where workspace_id = ${workspaceId}`;
      return { tasks: tasks.count, comments: comments.count };
    });
  }
}
