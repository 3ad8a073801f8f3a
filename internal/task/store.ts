import type { Comment, Task } from "../../api/gen/taskboard/task/v1/task.js";
import type { Sql, TransactionSql } from "../platform/postgres.js";
import type { TaskPriority, TaskStatus } from "./fields.js";

export interface TaskRow {
  workspace_id: string;
  id: string;
  seq: string;
  title: string;
  description: string;
  status: TaskStatus;
  priority: TaskPriority;
  assignee_id: string | null;
  created_by: string;
  due_date: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface CommentRow {
  workspace_id: string;
  id: string;
  seq: string;
  task_id: string;
  author_id: string;
  content: string;
  created_at: Date;
  updated_at: Date;
}

export interface NewTask {
  workspace_id: string;
  id: string;
  title: string;
  description: string;
  status: TaskStatus;
  priority: TaskPriority;
  assignee_id: string | null;
  created_by: string;
  due_date: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface TaskChanges {
  title?: string | undefined;
  description?: string | undefined;
  status?: TaskStatus | undefined;
  priority?: TaskPriority | undefined;
  /** null clears. */
  assignee_id?: string | null | undefined;
  /** null clears. */
  due_date?: Date | null | undefined;
}

export interface TaskFilters {
  status?: TaskStatus | undefined;
  priority?: TaskPriority | undefined;
  assignee_id?: string | undefined;
  /** A to_tsquery expression over the `search` column (see prefixQuery). */
  search?: string | undefined;
  due_before?: Date | undefined;
  due_after?: Date | undefined;
}

// Every column but the search vector, which callers never need.
const TASK_COLUMNS = [
  "workspace_id",
  "id",
  "seq",
  "title",
  "description",
  "status",
  "priority",
  "assignee_id",
  "created_by",
  "due_date",
  "created_at",
  "updated_at",
];

export function toTask(row: Omit<TaskRow, "seq">): Task {
  return {
    id: row.id,
    workspace_id: row.workspace_id,
    title: row.title,
    description: row.description,
    status: row.status,
    priority: row.priority,
    assignee_id: row.assignee_id ?? undefined,
    created_by: row.created_by,
    due_date: row.due_date?.toISOString(),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export function toComment(row: CommentRow): Comment {
  return {
    id: row.id,
    workspace_id: row.workspace_id,
    task_id: row.task_id,
    author_id: row.author_id,
    content: row.content,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

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

  async updateTask(tx: TransactionSql, workspaceId: string, id: string, changes: TaskChanges): Promise<TaskRow | undefined> {
    const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    const [row] = await tx<TaskRow[]>`
      update task.tasks set ${tx(set)}, updated_at = now()
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

  async insertComment(
    tx: TransactionSql,
    comment: { workspace_id: string; id: string; task_id: string; author_id: string; content: string },
  ): Promise<CommentRow> {
    const [row] = await tx<CommentRow[]>`insert into task.comments ${tx(comment)} returning *`;
    return row!;
  }

  async commentById(id: string): Promise<CommentRow | undefined> {
    const [row] = await this.sql<CommentRow[]>`select * from task.comments where id = ${id}`;
    return row;
  }

  async updateComment(tx: TransactionSql, workspaceId: string, id: string, content: string): Promise<CommentRow | undefined> {
    const [row] = await tx<CommentRow[]>`
      update task.comments set content = ${content}, updated_at = now()
      where workspace_id = ${workspaceId} and id = ${id} returning *`;
    return row;
  }

  async deleteComment(tx: TransactionSql, workspaceId: string, id: string): Promise<boolean> {
    const rows = await tx`delete from task.comments where workspace_id = ${workspaceId} and id = ${id} returning id`;
    return rows.length > 0;
  }

  /** Oldest first: `limit + 1` comments of a task after position `after` (a seq). */
  async pageComments(workspaceId: string, taskId: string, after: string | undefined, limit: number): Promise<CommentRow[]> {
    return this.sql<CommentRow[]>`
      select * from task.comments
      where workspace_id = ${workspaceId} and task_id = ${taskId} and seq > ${after ?? "0"}::bigint
      order by seq limit ${limit + 1}`;
  }

  /** Oldest first: up to `limit` comments of a workspace after position `after`. */
  async commentBatch(workspaceId: string, after: string, limit: number): Promise<CommentRow[]> {
    return this.sql<CommentRow[]>`
      select * from task.comments
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
