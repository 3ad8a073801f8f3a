import type { AuthServiceClient, User } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { Comment, Task, TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { AppError } from "../platform/errors.js";
import type { ServiceClient } from "../platform/grpc-client.js";
import type { CachedMemberships } from "../platform/memberships.js";

export type { Comment, Task, User };

/** The facts notify needs from the other services, read at send time. */
export interface Directory {
  /** The ids of the workspace's members now (empty when the workspace is gone). */
  memberIds(workspaceId: string): Promise<ReadonlySet<string>>;
  /** Users by id (deleted ones are missing). */
  users(ids: string[]): Promise<Map<string, User>>;
  /** A task, or undefined when it was deleted. */
  task(taskId: string): Promise<Task | undefined>;
  /** A task's comments, oldest first. */
  comments(taskId: string): Promise<Comment[]>;
}

const PAGE = 200;
const INTERNAL = { internal: true } as const;

/** The Directory over gRPC, as the notify process (its own credential); member lists through the membership cache. */
export class ServiceDirectory implements Directory {
  constructor(
    private readonly auth: ServiceClient<AuthServiceClient>,
    private readonly memberships: CachedMemberships,
    private readonly tasks: ServiceClient<TaskServiceClient>,
  ) {}

  memberIds(workspaceId: string): Promise<ReadonlySet<string>> {
    return this.memberships.memberIds(workspaceId);
  }

  async users(ids: string[]): Promise<Map<string, User>> {
    const users = new Map<string, User>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += PAGE) {
      const list = await this.auth.call("lookupUsers", { user_ids: unique.slice(i, i + PAGE), emails: [] }, INTERNAL);
      for (const user of list.items) users.set(user.id, user);
    }
    return users;
  }

  async task(taskId: string): Promise<Task | undefined> {
    try {
      return await this.tasks.call("getTask", { task_id: taskId }, INTERNAL);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async comments(taskId: string): Promise<Comment[]> {
    const comments: Comment[] = [];
    try {
      for (let cursor = ""; ; ) {
        const page = await this.tasks.call("listComments", { task_id: taskId, page: { limit: PAGE, cursor } }, INTERNAL);
        comments.push(...page.items);
        if (!page.next_cursor) return comments;
        cursor = page.next_cursor;
      }
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof AppError && error.code === "not_found";
}
