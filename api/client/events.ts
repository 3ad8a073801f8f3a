import type { z } from "zod";
import type { Comment } from "../contracts/comment.js";
import type { ExportJob } from "../contracts/export-job.js";
import type { Group } from "../contracts/group.js";
import type { Member } from "../contracts/member.js";
import type { Connected } from "../contracts/realtime.js";
import type { Task } from "../contracts/task.js";
import type { Webhook } from "../contracts/webhook.js";
import type { Workspace } from "../contracts/workspace.js";

/** `data` of a deletion: the id of what is gone. */
export interface Deleted {
  id: string;
}

/** `data` of task.watcher_added / task.watcher_removed: the task and the user who began or stopped watching it. */
export interface Watching {
  task_id: string;
  user_id: string;
}

/** The `data` of each event type a workspace room carries (API.md: the resource after the change). */
export interface EventDataMap {
  "task.created": Task;
  "task.updated": Task;
  "task.deleted": Deleted;
  "task.assigned": Task;
  "task.watcher_added": Watching;
  "task.watcher_removed": Watching;
  "task.due_soon": Task;
  "task.overdue": Task;
  "comment.created": Comment;
  "comment.updated": Comment;
  "comment.deleted": Deleted;
  "workspace.created": Workspace;
  "workspace.updated": Workspace;
  "workspace.deleted": Deleted;
  "member.added": Member;
  "member.removed": Partial<Member> & Record<string, unknown>;
  "member.role_changed": Member;
  "group.created": Group;
  "group.deleted": Deleted & { workspace_id: string };
  "group.member_added": Group;
  "group.member_removed": Group;
  "export.created": ExportJob;
  "export.progress": ExportJob;
  "export.completed": ExportJob;
  "export.failed": ExportJob;
  "notification.sent": Record<string, unknown>;
  "notification.failed": Record<string, unknown>;
  "webhook.disabled": Webhook;
  "custom.message": Record<string, unknown>;
  "presence.joined": Record<string, unknown>;
  "presence.left": Record<string, unknown>;
}

export type KnownEventType = keyof EventDataMap;

/** An event of the room: the envelope plus its stream `seq`. */
export interface RealtimeEvent<T extends string = string, D = Record<string, unknown>> {
  id: string;
  type: T;
  workspace_id: string;
  user_id?: string | null;
  aggregate_id: string;
  data: D;
  /** Epoch milliseconds. */
  timestamp: number;
  /** The event's stream sequence: resume after it with `since`. */
  seq: number;
  /** task.updated: the fields whose values changed. */
  changes?: string[];
  /** Set on `custom.message` events of a group. */
  group_id?: string;
}

/** An event of a known type, its `data` typed. */
export type EventOf<T extends KnownEventType> = RealtimeEvent<T, EventDataMap[T]>;

/** Narrows an event to a known type: `if (isEventOf(e, "task.created")) e.data.title`. */
export function isEventOf<T extends KnownEventType>(event: RealtimeEvent<string, unknown>, type: T): event is EventOf<T> {
  return event.type === type;
}

/** The first frame of a connection (API.md "Real-time: recovery that tells the truth"): `seq` (latest event now), `epoch`, `first_seq`, and with `since`, `recovered`. */
export type ConnectedFrame = z.output<typeof Connected>;
