import { randomUUID } from "node:crypto";
import type { Event as Envelope } from "../../api/gen/taskboard/events/v1/envelope.js";

/** The envelope (envelope.proto), for task.updated the fields whose values changed, for a group's custom.message its group. */
export type Event = Envelope & { changes?: string[]; group_id?: string };

/**
 * Every event type and the subject it is published on (ARCHITECTURE.md
 * "Subjects"): `<root>.<domain>.<workspace_id>.<action>`; user events on
 * `<root>.auth.users.<action>`.
 */
export const eventCatalogue = {
  "task.created": { domain: "tasks", action: "created" },
  "task.updated": { domain: "tasks", action: "updated" },
  "task.deleted": { domain: "tasks", action: "deleted" },
  "task.assigned": { domain: "tasks", action: "assigned" },
  "task.watcher_added": { domain: "tasks", action: "watcher_added" },
  "task.watcher_removed": { domain: "tasks", action: "watcher_removed" },
  "task.due_soon": { domain: "tasks", action: "due_soon" },
  "task.overdue": { domain: "tasks", action: "overdue" },
  "comment.created": { domain: "comments", action: "created" },
  "comment.updated": { domain: "comments", action: "updated" },
  "comment.deleted": { domain: "comments", action: "deleted" },
  "workspace.created": { domain: "workspaces", action: "created" },
  "workspace.updated": { domain: "workspaces", action: "updated" },
  "workspace.deleted": { domain: "workspaces", action: "deleted" },
  "member.added": { domain: "workspaces", action: "member_added" },
  "member.removed": { domain: "workspaces", action: "member_removed" },
  "member.role_changed": { domain: "workspaces", action: "member_role_changed" },
  "group.created": { domain: "groups", action: "created" },
  "group.deleted": { domain: "groups", action: "deleted" },
  "group.member_added": { domain: "groups", action: "member_added" },
  "group.member_removed": { domain: "groups", action: "member_removed" },
  "export.created": { domain: "exports", action: "created" },
  "export.progress": { domain: "exports", action: "progress" },
  "export.completed": { domain: "exports", action: "completed" },
  "export.failed": { domain: "exports", action: "failed" },
  "notification.sent": { domain: "notifications", action: "sent" },
  "notification.failed": { domain: "notifications", action: "failed" },
  "webhook.disabled": { domain: "webhooks", action: "disabled" },
  "custom.message": { domain: "realtime", action: "custom" },
  "presence.joined": { domain: "realtime", action: "joined" },
  "presence.left": { domain: "realtime", action: "left" },
  "user.registered": { domain: "auth", action: "registered" },
  "user.updated": { domain: "auth", action: "updated" },
  "user.deleted": { domain: "auth", action: "deleted" },
  "user.password_reset_requested": { domain: "auth", action: "password_reset_requested" },
} as const;

export type EventType = keyof typeof eventCatalogue;

export function isEventType(value: string): value is EventType {
  return Object.hasOwn(eventCatalogue, value);
}

export interface NewEvent {
  type: EventType;
  workspace_id?: string | undefined;
  user_id?: string | undefined;
  aggregate_id: string;
  data: Record<string, unknown>;
  /** *.updated: the fields whose values changed. */
  changes?: string[] | undefined;
  /** custom.message of a group: published on the group's subject, delivered to its members only. */
  group_id?: string | undefined;
  /** Not part of the event: the trace context its outbox row carries, when not the current one (tracing.ts). */
  trace?: Record<string, string> | undefined;
}

const decoder = new TextDecoder();

/**
 * An envelope from NATS bytes, or undefined when they are not one (not JSON,
 * not an object with a string `type`). Messages come from other processes:
 * a malformed one is dropped by the reader, never thrown out of a callback.
 */
export function decodeEvent(data: Uint8Array): Event | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return undefined; // not JSON: the caller logs and drops it
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const event = value as Partial<Event>;
  return typeof event.type === "string" && typeof event.id === "string" ? (event as Event) : undefined;
}

/** A fresh envelope: a new UUID and the current time. */
export function newEvent(input: NewEvent): Event {
  return {
    id: randomUUID(),
    type: input.type,
    workspace_id: input.workspace_id,
    user_id: input.user_id,
    aggregate_id: input.aggregate_id,
    data: input.data,
    timestamp: Date.now(),
    ...(input.changes ? { changes: input.changes } : {}),
    ...(input.group_id ? { group_id: input.group_id } : {}),
  };
}

/**
 * The subject layout under one root token. The root lets several deployments or
 * test runs share a NATS server, and gives JetStream one stream subject
 * (`<root>.>`) of which the room filter `<root>.*.<ws>.>` is a subset.
 */
export class Subjects {
  constructor(readonly root: string) {}

  /** The subject an event is published on (a group's custom.message: its group's subject). */
  of(event: Pick<Event, "type" | "workspace_id" | "group_id">): string {
    if (!isEventType(event.type)) throw new Error(`unknown event type ${event.type}`);
    const { domain, action } = eventCatalogue[event.type];
    if (domain === "auth") return `${this.root}.auth.users.${action}`;
    if (!event.workspace_id) throw new Error(`event ${event.type} needs a workspace_id`);
    if (event.type === "custom.message" && event.group_id) return this.group(event.workspace_id, event.group_id);
    return `${this.root}.${domain}.${event.workspace_id}.${action}`;
  }

  /** The subject of a group's messages: `<root>.realtime.<ws>.group.<group_id>` (inside the room's filter). */
  group(workspaceId: string, groupId: string): string {
    return `${this.root}.realtime.${workspaceId}.group.${groupId}`;
  }

  /** The group of a group message's subject; undefined for any other subject. */
  groupOf(subject: string): string | undefined {
    const tokens = subject.split(".");
    return tokens.length === 5 && tokens[1] === "realtime" && tokens[3] === "group" ? tokens[4] : undefined;
  }

  /** The stored subject of one event type across all workspaces (a durable consumer's filter). */
  allOf(type: EventType): string {
    const { domain, action } = eventCatalogue[type];
    return domain === "auth" ? `${this.root}.auth.users.${action}` : `${this.root}.${domain}.*.${action}`;
  }

  /** Every stored subject of one workspace (catch-up filter). */
  room(workspaceId: string): string {
    return `${this.root}.*.${workspaceId}.>`;
  }

  /** The stream's subjects. */
  get stream(): string[] {
    return [`${this.root}.>`];
  }

  /** Where the stream republishes each stored message, with its sequence in headers. */
  get republished(): { src: string; dest: string } {
    return { src: `${this.root}.>`, dest: `rt.${this.root}.>` };
  }

  /** The live (republished) subjects of one workspace. */
  roomLive(workspaceId: string): string {
    return `rt.${this.room(workspaceId)}`;
  }

  /** Live subject of one event type across all workspaces, e.g. every member_removed. */
  liveAll(type: EventType): string {
    const { domain, action } = eventCatalogue[type];
    return domain === "auth" ? `rt.${this.root}.auth.users.${action}` : `rt.${this.root}.${domain}.*.${action}`;
  }

  /** Unstored announcements of membership revocations, ahead of the stored events (see memberships.ts). */
  get membershipChanges(): string {
    return this.internal("memberships.changed");
  }

  /** Internal, unstored subjects (outbox wake-ups, stats requests). */
  internal(name: string): string {
    return `_tb.${this.root}.${name}`;
  }
}
