import { z } from "zod";
import { field } from "./fields.js";

/**
 * The real-time endpoints' own shapes (API.md "WebSocket" and "Real-time:
 * recovery that tells the truth, tickets, SSE, limits"): tickets, where a
 * client resumes from, and the `connected` frame.
 */

export const TicketRequest = z
  .strictObject({ workspace_id: field.id("workspace_id") })
  .meta({ id: "TicketRequest" });

export const Ticket = z
  .object({
    ticket: z.string().meta({ description: "Single use; pass it as `?ticket=` to `/ws/{workspace_id}` or `/workspaces/{workspace_id}/stream`." }),
    expires_in: z.int().min(1).meta({ description: "Seconds until the ticket expires unused." }),
  })
  .meta({ id: "Ticket" });

/** A stream sequence in a query or header: where a client resumes from. */
export const resumePosition = z
  .string()
  .regex(/^\d{1,15}$/, "since must be a stream sequence (a non-negative integer)")
  .transform(Number);

export const StreamQuery = z.object({
  ticket: z.string().max(64, "ticket is at most 64 characters").optional().meta({ description: "A ticket from `POST /realtime/tickets` (or send `Authorization: Bearer`)." }),
  since: resumePosition.optional().meta({ description: "Resume after this `seq` (the `Last-Event-ID` header does the same and wins)." }),
  epoch: z.string().max(64, "epoch is at most 64 characters").optional().meta({ description: "The `epoch` of the `connected` event the position belongs to." }),
});

export const Connected = z
  .object({
    type: z.literal("connected"),
    workspace_id: z.uuid(),
    connection_id: z.uuid(),
    seq: z.int().min(0).meta({ description: "The latest event of the workspace now." }),
    epoch: z.string().meta({ description: "Identifies the event history; it changes when the history is reset." }),
    first_seq: z.int().min(0).meta({ description: "The oldest retained event of the workspace, 0 if none." }),
    recovered: z.boolean().optional().meta({ description: "With `since`: whether every event after it follows. `false`: reload over REST, then live from `seq`." }),
  })
  .meta({ id: "Connected" });
