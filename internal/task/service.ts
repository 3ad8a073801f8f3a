import { randomUUID } from "node:crypto";
import { z } from "zod";
import type {
  AssignTaskRequest,
  Comment,
  CommentBatch,
  CommentList,
  CreateCommentRequest,
  CreateTaskRequest,
  ListCommentsRequest,
  ListTasksRequest,
  Task,
  TaskBatch,
  TaskList,
  UpdateTaskRequest,
} from "../../api/gen/taskboard/task/v1/task.js";
import { CreateComment, UpdateComment } from "../../api/contracts/comment.js";
import { field } from "../../api/contracts/fields.js";
import { fromPatch } from "../../api/contracts/shape.js";
import { CreateTask, MAX_WATCHERS, TaskFilter, UpdateTask } from "../../api/contracts/task.js";
import type { OnBehalfOf } from "../../api/gen/taskboard/common/v1/batch.js";
import { inItemSpan } from "../platform/batch.js";
import { decodeCursor, pageOf, pageSize } from "../platform/cursor.js";
import { AppError, forbidden, notFound, unprocessable } from "../platform/errors.js";
import type { NewEvent, Subjects } from "../platform/events.js";
import { workspaceDeletions, type Subscription } from "../platform/durable-consumer.js";
import type { Logger } from "../platform/logger.js";
import { classifyError } from "../platform/failures.js";
import type { Outbox } from "../platform/outbox.js";
import type { Principal } from "../platform/principal.js";
import { traceHeaders } from "../platform/tracing.js";
import { parseInput } from "../platform/validate.js";
import { MANAGERS, Tenancy, userOf, type RoleSource } from "../platform/tenancy.js";
import { commentResource, taskResource } from "./resources.js";
import { prefixQuery, toComment, toTask, type NewTask, type TaskStore } from "./store.js";

// The service checks its gRPC input with the very contracts the gateway validated the request
// with (api/contracts): a caller that is not the gateway gets the same rules.
const workspaceId = field.id("workspace_id");
const taskId = field.id("task_id");
const commentId = field.id("comment_id");
const createInput = CreateTask.extend({ workspace_id: workspaceId });
const listInput = TaskFilter.extend({ workspace_id: workspaceId });
const assignInput = z.object({ task_id: taskId, assignee_id: field.id("assignee_id").optional() });
const watcherRef = z.object({ task_id: taskId, user_id: field.id("user_id") });

/** The fields of `keys` whose values differ between two versions of a task (task.updated's `changes`). */
function changedFields(before: Task, after: Task, keys: string[]): string[] {
  const value = (task: Task, key: string) => JSON.stringify((task as unknown as Record<string, unknown>)[key] ?? null);
  return keys.filter((key) => value(before, key) !== value(after, key));
}
const createCommentInput = CreateComment.extend({ workspace_id: workspaceId });
const updateCommentInput = UpdateComment.extend({ comment_id: commentId });

/**
 * Bound on a stream message's text (gRPC allows 4 MiB): large enough that the
 * per-message cost vanishes, small enough that a message and its decoded rows
 * die young in the receiver's heap (measured with npm run bench:export: 64 KiB
 * beat 32 KiB on rows/s and 256 KiB on both rows/s and the receiver's RSS).
 */
const STREAM_MESSAGE_BYTES = 64 * 1024;

interface PreparedTask {
  row: NewTask;
  task: Task;
  /** task.created, then task.assigned when it is created assigned. */
  events: NewEvent[];
}

export interface TaskServiceOptions {
  /** Rows per query when streaming a whole workspace. */
  streamBatchSize?: number;
}

/** The rules of tasks and comments (API.md "Tasks", "Comments"). */
export class TaskService {
  private readonly streamBatchSize: number;
  private readonly tenancy: Tenancy;

  constructor(
    private readonly store: TaskStore,
    private readonly outbox: Outbox,
    memberships: RoleSource,
    options: TaskServiceOptions = {},
  ) {
    this.tenancy = new Tenancy(memberships);
    this.streamBatchSize = options.streamBatchSize ?? 1_000;
  }

  async createTask(principal: Principal, input: CreateTaskRequest): Promise<Task> {
    const prepared = await this.prepareTask(principal, input);
    await this.writeTasks([prepared]);
    return prepared.task;
  }

  /** Many users' creates (the gateway's batches) in one statement; an item that fails does not fail the others. */
  async createTasks(items: { principal: Principal | AppError; input: CreateTaskRequest; caller?: OnBehalfOf | undefined }[]): Promise<(Task | AppError)[]> {
    const prepared = await Promise.all(
      items.map(({ principal, input, caller }) =>
        principal instanceof AppError
          ? principal
          : inItemSpan("taskboard.task.v1.TaskService/CreateTasks", caller, () => this.prepareTask(principal, input)).catch((error: unknown) => classifyError(error)),
      ),
    );
    const accepted = prepared.filter((p): p is PreparedTask => !(p instanceof AppError));
    const failed = new Map<PreparedTask, AppError>();
    try {
      if (accepted.length > 0) await this.writeTasks(accepted);
    } catch (error) {
      // An outage fails every item; a row the database refused fails only its own
      // item, so each is written again on its own.
      if (classifyError(error).code === "dependency_unavailable") throw error;
      if (accepted.length === 1) failed.set(accepted[0]!, classifyError(error));
      else for (const p of accepted) await this.writeTasks([p]).catch((e: unknown) => failed.set(p, classifyError(e)));
    }
    return prepared.map((p) => (p instanceof AppError ? p : (failed.get(p) ?? p.task)));
  }

  /** Many users' reads (the gateway's batches): one query, each item authorised on its own. */
  async getTasks(items: { principal: Principal | AppError; task_id: string; caller?: OnBehalfOf | undefined }[]): Promise<(Task | AppError)[]> {
    const ids = items.map((item) => taskId.safeParse(item.task_id)).flatMap((r) => (r.success ? [r.data] : []));
    const rows = new Map((await this.store.tasksByIds(ids)).map((row) => [row.id, row]));
    return Promise.all(
      items.map(async ({ principal, task_id, caller }) => {
        if (principal instanceof AppError) return principal;
        try {
          const row = rows.get(parseInput(taskId, task_id));
          if (!row) throw notFound("task");
          await inItemSpan("taskboard.task.v1.TaskService/GetTasks", caller, () => this.member(principal, row.workspace_id, "task"));
          return toTask(row);
        } catch (error) {
          return classifyError(error);
        }
      }),
    );
  }

  /** Validates and authorises a create, and builds the row and its event. */
  private async prepareTask(principal: Principal, input: CreateTaskRequest): Promise<PreparedTask> {
    const task = parseInput(createInput, input);
    const { caller } = await this.member(principal, task.workspace_id, "workspace");
    if (task.assignee_id) await this.requireAssignable(task.workspace_id, task.assignee_id);
    const now = new Date();
    const row: NewTask = {
      ...task,
      id: randomUUID(),
      assignee_id: task.assignee_id ?? null,
      due_date: task.due_date ?? null,
      created_by: caller.userId,
      // The creator and the assignee watch it from the start.
      watcher_ids: [...new Set([caller.userId, ...(task.assignee_id ? [task.assignee_id] : [])])],
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
    };
    const created = toTask(row);
    const event: NewEvent = {
      type: "task.created",
      workspace_id: row.workspace_id,
      user_id: caller.userId,
      aggregate_id: row.id,
      data: taskResource(created),
      // This item's trace (its request's), though the batch is written in one statement.
      trace: traceHeaders(),
    };
    return { row, task: created, events: row.assignee_id ? [event, { ...event, type: "task.assigned" }] : [event] };
  }

  /** The hot path: new rows and their events in one statement, one round trip. */
  private async writeTasks(prepared: PreparedTask[]): Promise<void> {
    await this.outbox.write(
      (sql) => this.store.insertTasks(sql, prepared.map((p) => p.row)),
      prepared.flatMap((p) => p.events),
    );
  }

  async listTasks(principal: Principal, input: ListTasksRequest): Promise<TaskList> {
    const { page, ...query } = input;
    const { workspace_id, q, ...filters } = parseInput(listInput, query);
    const limit = pageSize(page?.limit ?? 0);
    const before = decodeCursor(page?.cursor ?? "");
    await this.member(principal, workspace_id, "workspace");
    const search = q === undefined ? undefined : prefixQuery(q);
    const rows = await this.store.pageTasks(workspace_id, { ...filters, search }, before, limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.seq);
    return { items: items.map(toTask), next_cursor };
  }

  /** A task; an internal caller (notify) may read any task. */
  async getTask(principal: Principal, input: { task_id: string }): Promise<Task> {
    if (principal.kind === "internal") return toTask(await this.anyTask(input.task_id));
    const row = await this.visibleTask(principal, input.task_id);
    return toTask(row.task);
  }

  async updateTask(principal: Principal, input: UpdateTaskRequest): Promise<Task> {
    const task_id = parseInput(taskId, input.task_id);
    const changes = parseInput(UpdateTask, fromPatch(UpdateTask, input));
    const { task: current, caller } = await this.visibleTask(principal, task_id);
    const ws = current.workspace_id;
    if (changes.assignee_id) await this.requireAssignable(ws, changes.assignee_id);
    return this.outbox.transaction(async (tx, emit) => {
      const before = await this.store.lockTask(tx, ws, task_id);
      if (!before) throw notFound("task");
      const row = await this.store.updateTask(tx, ws, task_id, changes);
      const task = toTask(row!);
      const event = { workspace_id: ws, user_id: caller.userId, aggregate_id: task_id, data: taskResource(task) };
      emit({ type: "task.updated", ...event, changes: changedFields(toTask(before), task, Object.keys(changes)) });
      if (changes.assignee_id && changes.assignee_id !== before.assignee_id) emit({ type: "task.assigned", ...event });
      return task;
    });
  }

  async deleteTask(principal: Principal, input: { task_id: string }): Promise<void> {
    const { task, caller, role } = await this.visibleTask(principal, input.task_id);
    if (task.created_by !== caller.userId && !MANAGERS.includes(role)) {
      throw forbidden("only the task's creator or a workspace owner or admin may delete it");
    }
    await this.outbox.transaction(async (tx, emit) => {
      if (!(await this.store.deleteTask(tx, task.workspace_id, task.id))) throw notFound("task");
      emit({ type: "task.deleted", workspace_id: task.workspace_id, user_id: caller.userId, aggregate_id: task.id, data: { id: task.id } });
    });
  }

  /** Sets or clears the assignee; the assignee must be a member of the task's workspace. */
  async assignTask(principal: Principal, input: AssignTaskRequest): Promise<Task> {
    const { task_id, assignee_id } = parseInput(assignInput, input);
    const { task: current, caller } = await this.visibleTask(principal, task_id);
    const ws = current.workspace_id;
    if (assignee_id) await this.requireAssignable(ws, assignee_id);
    return this.outbox.transaction(async (tx, emit) => {
      const row = await this.store.updateTask(tx, ws, task_id, { assignee_id: assignee_id ?? null });
      if (!row) throw notFound("task");
      const task = toTask(row);
      emit({ type: "task.assigned", workspace_id: ws, user_id: caller.userId, aggregate_id: task_id, data: taskResource(task) });
      return task;
    });
  }

  /** The task's watchers, in the order they began watching (members). */
  async listWatchers(principal: Principal, input: { task_id: string }): Promise<{ items: string[] }> {
    const { task } = await this.visibleTask(principal, input.task_id);
    return { items: task.watcher_ids };
  }

  /**
   * Starts (`watch`) or stops a user's watching: a member for themself, an owner or admin for
   * any member; the user must be a member (422). Nothing changes, and nothing is published,
   * when it already is as asked.
   */
  async setWatching(principal: Principal, input: { task_id: string; user_id: string }, watch: boolean): Promise<void> {
    const { task_id, user_id } = parseInput(watcherRef, input);
    const { task: current, caller, role } = await this.visibleTask(principal, task_id);
    if (user_id !== caller.userId && !MANAGERS.includes(role)) throw forbidden("only owners and admins may change another member's watching");
    const ws = current.workspace_id;
    if (watch && !(await this.tenancy.isMember(ws, user_id))) throw unprocessable("the user is not a member of this workspace", { user_id });
    await this.outbox.transaction(async (tx, emit) => {
      const before = await this.store.lockTask(tx, ws, task_id);
      if (!before) throw notFound("task");
      if (before.watcher_ids.includes(user_id) === watch) return;
      if (watch && before.watcher_ids.length >= MAX_WATCHERS) throw unprocessable(`a task has at most ${MAX_WATCHERS} watchers`);
      await this.store.setWatching(tx, ws, task_id, user_id, watch);
      emit({
        type: watch ? "task.watcher_added" : "task.watcher_removed",
        workspace_id: ws,
        user_id: caller.userId,
        aggregate_id: task_id,
        data: { task_id, user_id },
      });
    });
  }

  async createComment(principal: Principal, input: CreateCommentRequest): Promise<Comment> {
    const { workspace_id, task_id, content } = parseInput(createCommentInput, input);
    const { caller } = await this.member(principal, workspace_id, "workspace");
    return this.outbox.transaction(async (tx, emit) => {
      if (!(await this.store.holdTask(tx, workspace_id, task_id))) throw notFound("task");
      const row = await this.store.insertComment(tx, { workspace_id, id: randomUUID(), task_id, author_id: caller.userId, content });
      const comment = toComment(row);
      emit({ type: "comment.created", workspace_id, user_id: caller.userId, aggregate_id: row.id, data: commentResource(comment) });
      return comment;
    });
  }

  /** A task's comments, oldest first; an internal caller may read any task's. */
  async listComments(principal: Principal, input: ListCommentsRequest): Promise<CommentList> {
    const limit = pageSize(input.page?.limit ?? 0);
    const after = decodeCursor(input.page?.cursor ?? "");
    const task = principal.kind === "internal" ? await this.anyTask(input.task_id) : (await this.visibleTask(principal, input.task_id)).task;
    const rows = await this.store.pageComments(task.workspace_id, task.id, after, limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.seq);
    return { items: items.map(toComment), next_cursor };
  }

  async getComment(principal: Principal, input: { comment_id: string }): Promise<Comment> {
    const { comment } = await this.visibleComment(principal, input.comment_id);
    return toComment(comment);
  }

  /** Only the author edits a comment. */
  async updateComment(principal: Principal, input: { comment_id: string; content: string }): Promise<Comment> {
    const { comment_id, content } = parseInput(updateCommentInput, input);
    const { comment: current, caller } = await this.visibleComment(principal, comment_id);
    if (current.author_id !== caller.userId) throw forbidden("only the author may edit a comment");
    return this.outbox.transaction(async (tx, emit) => {
      const row = await this.store.updateComment(tx, current.workspace_id, comment_id, content);
      if (!row) throw notFound("comment");
      const comment = toComment(row);
      emit({
        type: "comment.updated",
        workspace_id: row.workspace_id,
        user_id: caller.userId,
        aggregate_id: row.id,
        data: commentResource(comment),
      });
      return comment;
    });
  }

  async deleteComment(principal: Principal, input: { comment_id: string }): Promise<void> {
    const { comment, caller, role } = await this.visibleComment(principal, input.comment_id);
    if (comment.author_id !== caller.userId && !MANAGERS.includes(role)) {
      throw forbidden("only the author or a workspace owner or admin may delete a comment");
    }
    await this.outbox.transaction(async (tx, emit) => {
      if (!(await this.store.deleteComment(tx, comment.workspace_id, comment.id))) throw notFound("comment");
      emit({
        type: "comment.deleted",
        workspace_id: comment.workspace_id,
        user_id: caller.userId,
        aggregate_id: comment.id,
        data: { id: comment.id },
      });
    });
  }

  /**
   * Every task of a workspace, oldest first, in messages of up to a database
   * batch of tasks and STREAM_MESSAGE_BYTES; `send` waits while the caller is slow.
   */
  async streamTasks(input: { workspace_id: string }, send: (batch: TaskBatch) => Promise<void>, signal: AbortSignal): Promise<void> {
    const ws = parseInput(workspaceId, input.workspace_id);
    await this.streamBatches(
      (after) => this.store.taskBatch(ws, after, this.streamBatchSize),
      (row) => toTask(row),
      (t) => t.title.length + t.description.length,
      (items) => send({ items }),
      signal,
    );
  }

  /** Every comment of a workspace, oldest first, in messages like streamTasks'. */
  async streamComments(input: { workspace_id: string }, send: (batch: CommentBatch) => Promise<void>, signal: AbortSignal): Promise<void> {
    const ws = parseInput(workspaceId, input.workspace_id);
    await this.streamBatches(
      (after) => this.store.commentBatch(ws, after, this.streamBatchSize),
      toComment,
      (c) => c.content.length,
      (items) => send({ items }),
      signal,
    );
  }

  /** How many tasks and comments a workspace has (an export's progress is measured against it). */
  async countRows(input: { workspace_id: string }): Promise<{ tasks: number; comments: number }> {
    return this.store.countRows(parseInput(workspaceId, input.workspace_id));
  }

  /**
   * Reads rows in keyset batches, the next batch while the current one is
   * being sent, and sends them in messages that stay under
   * STREAM_MESSAGE_BYTES (3 bytes per UTF-16 unit of text bounds the UTF-8).
   */
  private async streamBatches<R extends { seq: string }, M>(
    read: (after: string) => Promise<R[]>,
    convert: (row: R) => M,
    textLength: (message: M) => number,
    send: (items: M[]) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    let rows = await read("0");
    while (rows.length > 0 && !signal.aborted) {
      const next = rows.length < this.streamBatchSize ? undefined : read(rows[rows.length - 1]!.seq);
      next?.catch(() => undefined); // awaited below; this only keeps an abandoned read from going unhandled
      let items: M[] = [];
      let bytes = 0;
      for (const row of rows) {
        const item = convert(row);
        items.push(item);
        bytes += 3 * textLength(item) + 256;
        if (bytes >= STREAM_MESSAGE_BYTES) {
          await send(items);
          items = [];
          bytes = 0;
        }
      }
      if (items.length > 0) await send(items);
      if (!next) return;
      rows = await next;
    }
  }

  /** A deleted workspace takes its tasks and comments with it (idempotent: redelivery finds nothing). */
  async purgeWorkspace(id: string): Promise<{ tasks: number; comments: number }> {
    return this.store.purgeWorkspace(parseInput(workspaceId, id));
  }

  /** The events this service acts on. */
  subscriptions(subjects: Subjects, log: Logger): Subscription[] {
    return [workspaceDeletions(subjects, "task-workspace-deletions", (id) => this.purgeWorkspace(id), log)];
  }

  /** The caller's role in a workspace; 404 naming `what` for non-members, as if it did not exist. */
  private member(principal: Principal, workspace: string, what: string) {
    return this.tenancy.member(principal, workspace, { what });
  }

  /** Any task, for internal callers, which skip the membership check (they decide who sees what). */
  private async anyTask(id: string) {
    const task = await this.store.taskById(parseInput(taskId, id));
    if (!task) throw notFound("task");
    return task;
  }

  /** A task the caller may see (404 for a missing one and for one in another workspace alike). */
  private async visibleTask(principal: Principal, id: string) {
    userOf(principal);
    const task = await this.store.taskById(parseInput(taskId, id));
    if (!task) throw notFound("task");
    return { task, ...(await this.member(principal, task.workspace_id, "task")) };
  }

  private async visibleComment(principal: Principal, id: string) {
    userOf(principal);
    const comment = await this.store.commentById(parseInput(commentId, id));
    if (!comment) throw notFound("comment");
    return { comment, ...(await this.member(principal, comment.workspace_id, "comment")) };
  }

  private async requireAssignable(workspace: string, userId: string): Promise<void> {
    if (!(await this.tenancy.isMember(workspace, userId))) throw unprocessable("assignee is not a member of this workspace", { assignee_id: userId });
  }
}
