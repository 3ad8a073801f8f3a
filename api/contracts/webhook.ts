import { z } from "zod";
import { eventCatalogue } from "../../internal/platform/events.js";
import { field, out, pageOf } from "./fields.js";

/** Webhooks (API.md "Webhooks"): the resources and inputs, defined once. */

export const MAX_WEBHOOK_EVENTS = 20;

/** The event types a webhook may receive: every workspace event type. */
const WEBHOOK_EVENT_TYPES = Object.keys(eventCatalogue).filter((type) => !type.startsWith("user."));
const PREFIXES = new Set(WEBHOOK_EVENT_TYPES.map((type) => type.split(".")[0]!));

/** Whether a pattern names event types: "*", "task.*" (a family) or one type. */
export function isEventPattern(pattern: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return PREFIXES.has(pattern.slice(0, -2));
  return WEBHOOK_EVENT_TYPES.includes(pattern);
}

/** Whether an event type matches one of a webhook's patterns. */
export function matchesPatterns(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === "*" || p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1))));
}

const events = z
  .array(z.string("events must be strings").refine(isEventPattern, "events must be event types (task.created), families (task.*) or *"), "events must be a list")
  .min(1, "events must name at least one event type")
  .max(MAX_WEBHOOK_EVENTS, `events must be at most ${MAX_WEBHOOK_EVENTS}`)
  .transform((list) => [...new Set(list)])
  .meta({ description: `Event types (task.created), families (task.*) or * for all; up to ${MAX_WEBHOOK_EVENTS}.` });

const url = z
  .url({ protocol: /^https?$/, error: "url must be an http(s) URL" })
  .max(2_000, "url must be at most 2000 characters")
  .meta({ description: "https, and a public address (checked after DNS resolution too)." });

export const Webhook = z
  .object({
    id: out.id(),
    workspace_id: out.id(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string(),
    active: z.boolean().meta({ description: "False once deliveries failed for the retry window (or when set so)." }),
    created_at: out.time(),
  })
  .meta({ id: "Webhook" });
export type Webhook = z.output<typeof Webhook>;

export const WebhookCreated = Webhook.extend({
  secret: z.string().meta({ description: "The signing secret: shown in this answer only." }),
}).meta({ id: "WebhookCreated" });

export const WebhookList = z.object({ items: z.array(Webhook) }).meta({ id: "WebhookList" });

export const CreateWebhook = z
  .strictObject({ url, events, description: field.optionalText("description", 500).default("") })
  .meta({ id: "CreateWebhookRequest" });

export const UpdateWebhook = z
  .strictObject({ url: url.optional(), events: events.optional(), active: z.boolean("active must be true or false").optional() })
  .refine((v) => v.url !== undefined || v.events !== undefined || v.active !== undefined, "give url, events or active")
  .meta({ id: "UpdateWebhookRequest" });

export const DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;

export const Delivery = z
  .object({
    id: out.id(),
    event_id: out.id(),
    event_type: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.int().min(0),
    response_status: z.int().nullable(),
    next_attempt_at: out.time().nullable(),
    created_at: out.time(),
  })
  .meta({ id: "Delivery" });

export const DeliveryList = pageOf(Delivery, "DeliveryList");
