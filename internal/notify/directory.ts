import type { AuthServiceClient, PasswordReset, User } from "../../api/gen/taskboard/auth/v1/auth.js";
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
  /** A fresh password-reset token for a user, with the user; undefined when the account is gone. */
  passwordReset(userId: string): Promise<PasswordReset | undefined>;
  /** The unsubscribe token of each user (for the links in mails). */
  unsubscribeTokens(userIds: string[]): Promise<Map<string, string>>;
}

const PAGE = 200;
const INTERNAL = { internal: true } as const;
const UNSUBSCRIBE_CACHE = 10_000;

/** The Directory over gRPC, as the notify process (its own credential); member lists through the membership cache. */
export class ServiceDirectory implements Directory {
  private readonly unsubscribe = new Map<string, string>();

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

  async passwordReset(userId: string): Promise<PasswordReset | undefined> {
    try {
      return await this.auth.call("issuePasswordReset", { user_id: userId }, INTERNAL);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Tokens never change for a user (an HMAC of the id), so they are cached, up to UNSUBSCRIBE_CACHE users. */
  async unsubscribeTokens(userIds: string[]): Promise<Map<string, string>> {
    const missing = [...new Set(userIds)].filter((id) => !this.unsubscribe.has(id));
    for (let i = 0; i < missing.length; i += PAGE) {
      const { items } = await this.auth.call("unsubscribeTokens", { user_ids: missing.slice(i, i + PAGE), emails: [] }, INTERNAL);
      if (this.unsubscribe.size + items.length > UNSUBSCRIBE_CACHE) this.unsubscribe.clear();
      for (const { user_id, token } of items) this.unsubscribe.set(user_id, token);
    }
    return new Map(userIds.flatMap((id) => (this.unsubscribe.has(id) ? [[id, this.unsubscribe.get(id)!] as const] : [])));
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
