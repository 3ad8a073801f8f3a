import { randomBytes, randomUUID } from "node:crypto";
import { z } from "zod";
import { field } from "../../api/contracts/fields.js";
import { CreateWebhook, matchesPatterns, UpdateWebhook } from "../../api/contracts/webhook.js";
import type { Delivery, DeliveryList, Webhook, WebhookList } from "../../api/gen/taskboard/webhooks/v1/webhooks.js";
import { decodeCursor, pageOf, pageSize } from "../platform/cursor.js";
import { storableTrace } from "../platform/tracing.js";
import { AppError, notFound, unprocessable } from "../platform/errors.js";
import type { Event } from "../platform/events.js";
import type { Outbox } from "../platform/outbox.js";
import type { Principal } from "../platform/principal.js";
import { MANAGERS, type Tenancy } from "../platform/tenancy.js";
import { parseInput } from "../platform/validate.js";
import { checkWebhookUrl } from "./addresses.js";
import { toDelivery, toWebhook, type WebhookRow, type WebhookStore } from "./store.js";

export interface WebhookRules {
  allowPrivate: boolean;
  maxPerWorkspace: number;
  retryWindowMs: number;
}

const workspaceId = field.id("workspace_id");
const webhookId = field.id("webhook_id");
const deliveryRef = z.object({ webhook_id: webhookId, delivery_id: field.id("delivery_id") });

/**
 * Webhooks (API.md "Webhooks"): owners and admins of a workspace register URLs for its
 * events. Every matching event gets exactly one delivery record per webhook (written by
 * `record`, the consumer's handler, before anything is sent); the Dispatcher sends them.
 */
export class WebhookService {
  constructor(
    private readonly store: WebhookStore,
    private readonly outbox: Outbox,
    private readonly tenancy: Tenancy,
    private readonly rules: WebhookRules,
  ) {}

  async create(principal: Principal, input: { workspace_id: string; url: string; events: string[]; description: string }): Promise<Webhook> {
    const id = parseInput(workspaceId, input.workspace_id);
    const body = parseInput(CreateWebhook, { url: input.url, events: input.events, description: input.description });
    await this.tenancy.member(principal, id, { allowed: MANAGERS });
    await checkWebhookUrl(body.url, this.rules.allowPrivate);
    const secret = `whsec_${randomBytes(32).toString("base64url")}`;
    const row = await this.outbox.transaction(async (tx) => {
      if ((await this.store.count(tx, id)) >= this.rules.maxPerWorkspace) {
        throw unprocessable(`a workspace has at most ${this.rules.maxPerWorkspace} webhooks`);
      }
      return this.store.insert(tx, { workspace_id: id, id: randomUUID(), url: body.url, events: body.events, description: body.description, secret });
    });
    // The secret, this once.
    return { ...toWebhook(row), secret };
  }

  async list(principal: Principal, input: { workspace_id: string }): Promise<WebhookList> {
    const id = parseInput(workspaceId, input.workspace_id);
    await this.tenancy.member(principal, id, { allowed: MANAGERS });
    return { items: (await this.store.list(id)).map(toWebhook) };
  }

  async get(principal: Principal, input: { webhook_id: string }): Promise<Webhook> {
    return toWebhook(await this.managed(principal, input.webhook_id));
  }

  async update(principal: Principal, input: { webhook_id: string; url?: string | undefined; events: string[]; set_events: boolean; active?: boolean | undefined }): Promise<Webhook> {
    const changes = parseInput(UpdateWebhook, { url: input.url, events: input.set_events ? input.events : undefined, active: input.active });
    const current = await this.managed(principal, input.webhook_id);
    if (changes.url !== undefined) await checkWebhookUrl(changes.url, this.rules.allowPrivate);
    const row = await this.store.update(current.workspace_id, current.id, changes);
    if (!row) throw notFound("webhook");
    return toWebhook(row);
  }

  async delete(principal: Principal, input: { webhook_id: string }): Promise<void> {
    const current = await this.managed(principal, input.webhook_id);
    if (!(await this.store.delete(current.workspace_id, current.id))) throw notFound("webhook");
  }

  async deliveries(principal: Principal, input: { webhook_id: string; page: { limit: number; cursor: string } | undefined }): Promise<DeliveryList> {
    const webhook = await this.managed(principal, input.webhook_id);
    const limit = pageSize(input.page?.limit ?? 0);
    const rows = await this.store.pageDeliveries(webhook.id, decodeCursor(input.page?.cursor ?? ""), limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.seq);
    return { items: items.map(toDelivery), next_cursor };
  }

  /** Queues a delivery again, with a fresh retry window; the webhook must be active. */
  async redeliver(principal: Principal, input: { webhook_id: string; delivery_id: string }): Promise<Delivery> {
    const { webhook_id, delivery_id } = parseInput(deliveryRef, input);
    const webhook = await this.managed(principal, webhook_id);
    if (!webhook.active) throw new AppError("conflict", "the webhook is not active; activate it first (PUT active: true)");
    const row = await this.store.requeue(webhook.id, delivery_id, new Date(Date.now() + this.rules.retryWindowMs));
    if (!row) throw notFound("delivery");
    return toDelivery(row);
  }

  /**
   * The consumer's handler: one delivery record per matching active webhook of the
   * event's workspace, the envelope with its stream `seq` as the payload. A group's
   * messages are never delivered (they are for the group's members only).
   */
  async record(event: Event, seq: number): Promise<number> {
    if (!event.workspace_id || event.group_id) return 0;
    const matching = (await this.store.active(event.workspace_id)).filter((w) => matchesPatterns(w.events, event.type));
    if (matching.length === 0) return 0;
    const payload = JSON.stringify({ ...event, seq });
    const trace_context = storableTrace();
    return this.store.record(
      event.workspace_id,
      matching.map((w) => ({ id: randomUUID(), webhook_id: w.id, event_id: event.id, event_type: event.type, payload, trace_context })),
      new Date(Date.now() + this.rules.retryWindowMs),
    );
  }

  /** A webhook of a workspace where the caller is an owner or admin: 404 for a non-member, 403 for a plain member. */
  private async managed(principal: Principal, id: string): Promise<WebhookRow> {
    const row = await this.store.byId(parseInput(webhookId, id));
    if (!row) throw notFound("webhook");
    await this.tenancy.member(principal, row.workspace_id, { what: "webhook", allowed: MANAGERS });
    return row;
  }
}
