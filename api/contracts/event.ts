import { z } from "zod";
import { eventCatalogue, type EventType } from "../../internal/platform/events.js";
import { field, out, pageOf, pageQuery } from "./fields.js";

/**
 * The event envelope (API.md "Events", ARCHITECTURE.md "Subjects"): what the
 * stream stores, the WebSocket sends and `GET /workspaces/{id}/events` lists.
 * `data` is the resource after the change, as its own contract presents it.
 */

const workspaceEventTypes = Object.keys(eventCatalogue).filter((type) => !type.startsWith("user.")) as [EventType, ...EventType[]];

export const Event = z
  .object({
    id: out.id(),
    type: z.string().meta({ description: `One of ${Object.keys(eventCatalogue).join(", ")}.`, examples: ["task.created"] }),
    workspace_id: out.id(),
    user_id: out.id().nullable().optional().meta({ description: "Who caused it, when a user did." }),
    aggregate_id: out.id(),
    data: z.record(z.string(), z.unknown()).meta({ description: "The resource after the change; `{id}` for deletions." }),
    timestamp: z.int().meta({ description: "Epoch milliseconds." }),
    seq: z.int().min(1).meta({ description: "The event's JetStream stream sequence." }),
    changes: z.array(z.string()).optional().meta({ description: "task.updated: the fields whose values changed." }),
    group_id: out.id().optional().meta({ description: "custom.message of a group: delivered to the group's members only." }),
  })
  .meta({ id: "Event" });

export const EventList = pageOf(Event, "EventList");

export const EventsQuery = pageQuery.extend({
  type: z.enum(workspaceEventTypes, "type must be a workspace event type, e.g. task.created").optional().meta({ description: "Only events of this type." }),
  aggregate_id: field.id("aggregate_id").optional().meta({ description: "Only events about this resource." }),
  since: z
    .union(
      [
        z.string().regex(/^\d{1,15}$/).transform((v) => ({ afterSeq: Number(v) })),
        z.iso.datetime({ offset: true }).transform((v) => ({ time: new Date(v) })),
      ],
      "since must be an RFC 3339 time or a stream sequence",
    )
    .optional()
    .meta({ description: "Only events after this point: an RFC 3339 time or a stream sequence (`seq`)." }),
});

export const Broadcast = z
  .strictObject({
    content: z.string("content must be a string").min(1, "content is required").max(10_000, "content must be at most 10000 characters"),
  })
  .meta({ id: "BroadcastRequest" });

/** GET /workspaces/{id}/groups/{group_id}/messages: a group's messages of the last 7 days. */
export const GroupMessagesQuery = pageQuery.extend({ since: EventsQuery.shape.since });
