import { expect, test } from "vitest";
import type { EventType } from "../../internal/platform/events.js";
import { isEventOf, type KnownEventType, type RealtimeEvent } from "./events.js";

type WorkspaceEventType = Exclude<EventType, `user.${string}`>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type check (npm run typecheck) when the event catalogue and the SDK's typed events part ways. */
const covered: Same<WorkspaceEventType, KnownEventType> = true;

test("events: the SDK types exactly the workspace event types of the catalogue", () => {
  expect(covered).toBe(true);
});

test("events: isEventOf narrows by type", () => {
  const event: RealtimeEvent = { id: "e", type: "task.created", workspace_id: "w", aggregate_id: "t", data: { title: "x" }, timestamp: 1, seq: 1 };
  expect(isEventOf(event, "task.created")).toBe(true);
  expect(isEventOf(event, "task.deleted")).toBe(false);
  if (isEventOf(event, "task.created")) expect(event.data.title).toBe("x");
});
