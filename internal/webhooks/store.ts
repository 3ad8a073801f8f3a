import type { Delivery, Webhook } from "../../api/gen/taskboard/webhooks/v1/webhooks.js";
import { Delivery as DeliveryContract, Webhook as WebhookContract } from "../../api/contracts/webhook.js";
import { fieldsOf, rowToMessage } from "../../api/contracts/shape.js";
import type { Sql, TransactionSql } from "../platform/postgres.js";

export interface WebhookRow {
  workspace_id: string;
  id: string;
  url: string;
  events: string[];
  description: string;
  active: boolean;
  secret: string;
  created_at: Date;
}

interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  response_status: number | null;
  next_attempt_at: Date | null;
  created_at: Date;
  seq: string;
}

/** A delivery claimed for sending, with what it is sent to. */
export interface ClaimedDelivery {
  workspace_id: string;
  id: string;
  webhook_id: string;
  event_type: string;
  payload: string;
  attempts: number;
  retry_until: Date;
  /** The trace the delivery was recorded in (tracing.ts headers as JSON), if any. */
  trace_context: string | null;
  url: string;
  secret: string;
}

/** A webhook as the API shows it (never its secret): the answers and `webhook.disabled`'s data. */
export const webhookResource: (row: WebhookRow) => Omit<Webhook, "secret"> = rowToMessage<Webhook>(WebhookContract);
export const toWebhook = (row: WebhookRow): Webhook => ({ ...webhookResource(row), secret: "" });
export const toDelivery: (row: DeliveryRow) => Delivery = rowToMessage<Delivery>(DeliveryContract);
const DELIVERY_COLUMNS = [...fieldsOf(DeliveryContract), "seq"];

/** SQL over webhooks.webhooks and webhooks.deliveries. */
export class WebhookStore {
  constructor(private readonly sql: Sql) {}

  async insert(tx: TransactionSql, row: Omit<WebhookRow, "created_at" | "active">): Promise<WebhookRow> {
    const [inserted] = await tx<WebhookRow[]>`insert into webhooks.webhooks ${tx(row)} returning *`;
    return inserted!;
  }

  async count(tx: TransactionSql, workspaceId: string): Promise<number> {
    const [row] = await tx<{ n: number }[]>`select count(*)::int as n from webhooks.webhooks where workspace_id = ${workspaceId}`;
    return row!.n;
  }

  async byId(id: string): Promise<WebhookRow | undefined> {
    const [row] = await this.sql<WebhookRow[]>`select * from webhooks.webhooks where id = ${id}`;
    return row;
  }

  async list(workspaceId: string): Promise<WebhookRow[]> {
    return this.sql<WebhookRow[]>`select * from webhooks.webhooks where workspace_id = ${workspaceId} order by created_at, id`;
  }

  /** The workspace's active webhooks (the consumer matches each event against them). */
  async active(workspaceId: string): Promise<{ id: string; events: string[] }[]> {
    return this.sql`select id, events from webhooks.webhooks where workspace_id = ${workspaceId} and active`;
  }

  async update(workspaceId: string, id: string, changes: { url?: string | undefined; events?: string[] | undefined; active?: boolean | undefined }) {
    const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    const [row] = await this.sql<WebhookRow[]>`
      update webhooks.webhooks set ${this.sql(set)} where workspace_id = ${workspaceId} and id = ${id} returning *`;
    return row;
  }

  async delete(workspaceId: string, id: string): Promise<boolean> {
    return (await this.sql`delete from webhooks.webhooks where workspace_id = ${workspaceId} and id = ${id} returning id`).length > 0;
  }

  async deleteWorkspace(workspaceId: string): Promise<number> {
    return (await this.sql`delete from webhooks.webhooks where workspace_id = ${workspaceId} returning id`).length;
  }

  /** One delivery record per (webhook, event): a redelivered event adds none. Returns how many were new. */
  async record(
    workspaceId: string,
    rows: { id: string; webhook_id: string; event_id: string; event_type: string; payload: string; trace_context: string | null }[],
    retryUntil: Date,
  ): Promise<number> {
    if (rows.length === 0) return 0;
    const values = rows.map((r) => ({ ...r, workspace_id: workspaceId, retry_until: retryUntil }));
    const inserted = await this.sql`
      insert into webhooks.deliveries ${this.sql(values)} on conflict (webhook_id, event_id) do nothing returning id`;
    return inserted.length;
  }

  /** Newest first: `limit + 1` deliveries of a webhook before position `before`. */
  async pageDeliveries(webhookId: string, before: string | undefined, limit: number): Promise<DeliveryRow[]> {
    return this.sql<DeliveryRow[]>`
      select ${this.sql(DELIVERY_COLUMNS)} from webhooks.deliveries
      where webhook_id = ${webhookId} ${before ? this.sql`and seq < ${before}::bigint` : this.sql``}
      order by seq desc limit ${limit + 1}`;
  }

  /** Queues a delivery again now, with a fresh retry window; undefined when there is no such delivery. */
  async requeue(webhookId: string, deliveryId: string, retryUntil: Date): Promise<DeliveryRow | undefined> {
    const [row] = await this.sql<DeliveryRow[]>`
      update webhooks.deliveries
      set status = 'pending', next_attempt_at = now(), claimed_until = null, retry_until = ${retryUntil}
      where webhook_id = ${webhookId} and id = ${deliveryId}
      returning ${this.sql(DELIVERY_COLUMNS)}`;
    return row;
  }

  /**
   * Claims up to `limit` due deliveries of active webhooks for `claimMs` (other
   * replicas skip them meanwhile; a claim that expires, its holder dead, is taken over),
   * counting the attempt.
   */
  async claimDue(limit: number, claimMs: number): Promise<ClaimedDelivery[]> {
    return this.sql<ClaimedDelivery[]>`
      with due as (
        select d.workspace_id, d.id from webhooks.deliveries d
        join webhooks.webhooks w on w.workspace_id = d.workspace_id and w.id = d.webhook_id and w.active
        where d.status = 'pending' and d.next_attempt_at <= now() and (d.claimed_until is null or d.claimed_until < now())
        order by d.next_attempt_at
        limit ${limit}
        for update of d skip locked)
      update webhooks.deliveries d
      set claimed_until = now() + ${claimMs}::bigint * interval '1 millisecond', attempts = d.attempts + 1
      from due, webhooks.webhooks w
      where d.workspace_id = due.workspace_id and d.id = due.id and w.workspace_id = d.workspace_id and w.id = d.webhook_id
      returning d.workspace_id, d.id, d.webhook_id, d.event_type, d.payload, d.attempts, d.retry_until, d.trace_context, w.url, w.secret`;
  }

  async markDelivered(delivery: ClaimedDelivery, status: number): Promise<void> {
    await this.sql`
      update webhooks.deliveries
      set status = 'delivered', response_status = ${status}, last_error = null, delivered_at = now(), next_attempt_at = null, claimed_until = null
      where workspace_id = ${delivery.workspace_id} and id = ${delivery.id}`;
  }

  /** A failed attempt: tried again at `retryAt`, or given up (`failed`) when that is past the retry window. */
  async markAttemptFailed(delivery: ClaimedDelivery, result: { status?: number | undefined; error: string }, retryAt: Date | undefined): Promise<void> {
    await this.sql`
      update webhooks.deliveries
      set status = ${retryAt ? "pending" : "failed"}, response_status = ${result.status ?? null}, last_error = ${result.error.slice(0, 1_000)},
          next_attempt_at = ${retryAt ?? null}, claimed_until = null
      where workspace_id = ${delivery.workspace_id} and id = ${delivery.id}`;
  }

  /** Deactivates a webhook; the row when this call changed it (so its event is published once). */
  async deactivate(tx: TransactionSql, workspaceId: string, id: string): Promise<WebhookRow | undefined> {
    const [row] = await tx<WebhookRow[]>`
      update webhooks.webhooks set active = false where workspace_id = ${workspaceId} and id = ${id} and active returning *`;
    return row;
  }
}
