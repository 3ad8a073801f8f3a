import { Counter, Histogram, type Registry } from "prom-client";
import type { Logger } from "../platform/logger.js";
import type { Outbox } from "../platform/outbox.js";
import { Periodic } from "../platform/periodic.js";
import { exponentialBackoff, type Backoff } from "../platform/retry.js";
import { postDelivery, type SendResult } from "./sender.js";
import { webhookResource, type ClaimedDelivery, type WebhookStore } from "./store.js";

export interface DispatcherOptions {
  pollMs: number;
  concurrency: number;
  timeoutMs: number;
  retryBaseMs: number;
  allowPrivate: boolean;
}

/**
 * Sends the recorded deliveries. Every replica looks every `pollMs` (and at once when
 * its consumer recorded some), claims due deliveries of active webhooks with FOR UPDATE
 * SKIP LOCKED for longer than a send may take, and POSTs up to `concurrency` at a time.
 * A 2xx is delivered; anything else (another status, a timeout, a refused address) is
 * tried again with exponential backoff until the delivery's retry window ends: then it
 * is failed and its webhook deactivated (`webhook.disabled`, once). A replica killed while
 * sending leaves a claim that expires: another replica sends it again, under the same
 * `Taskboard-Delivery` id (at least once; the record stays one).
 */
export class Dispatcher {
  private readonly periodic: Periodic;
  private readonly backoff: Backoff;
  private readonly sent: Counter<"outcome">;
  private readonly duration: Histogram;
  private again = false;

  constructor(
    private readonly store: WebhookStore,
    private readonly outbox: Outbox,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.periodic = new Periodic("webhook dispatch", options.pollMs, () => this.dispatch(), log);
    this.backoff = exponentialBackoff(options.retryBaseMs, 3_600_000);
    this.sent = new Counter({
      name: "taskboard_webhook_attempts_total",
      help: "Webhook delivery attempts, by outcome (delivered, retry, failed)",
      labelNames: ["outcome"],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "taskboard_webhook_send_seconds",
      help: "Duration of webhook POSTs",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }

  start(): void {
    this.periodic.start();
  }

  close(): Promise<void> {
    return this.periodic.close();
  }

  /** Deliveries were recorded: look now rather than at the next tick. */
  wake(): void {
    this.again = true;
    void this.periodic.runNow();
  }

  /** Claims and sends batches until none is due (each batch at most `concurrency` at once). */
  async dispatch(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        // Claimed for twice the longest send, so that nobody takes over a live attempt.
        const batch = await this.store.claimDue(this.options.concurrency, this.options.timeoutMs * 2 + 5_000);
        if (batch.length === 0) break;
        await Promise.all(batch.map((delivery) => this.send(delivery)));
      }
    } while (this.again);
  }

  private async send(delivery: ClaimedDelivery): Promise<void> {
    const stop = this.duration.startTimer();
    const result = await postDelivery(
      { url: delivery.url, secret: delivery.secret },
      { id: delivery.id, eventType: delivery.event_type, body: delivery.payload, trace: delivery.trace_context },
      { timeoutMs: this.options.timeoutMs, allowPrivate: this.options.allowPrivate },
    );
    stop();
    if (result.status !== undefined && result.status >= 200 && result.status < 300) {
      await this.store.markDelivered(delivery, result.status);
      this.sent.inc({ outcome: "delivered" });
      return;
    }
    await this.failed(delivery, result);
  }

  private async failed(delivery: ClaimedDelivery, result: SendResult): Promise<void> {
    const error = result.error ?? `HTTP ${result.status}`;
    const retryAt = new Date(Date.now() + this.backoff.backoff(delivery.attempts - 1));
    if (retryAt <= delivery.retry_until) {
      await this.store.markAttemptFailed(delivery, { status: result.status, error }, retryAt);
      this.sent.inc({ outcome: "retry" });
      this.log.info({ delivery_id: delivery.id, webhook_id: delivery.webhook_id, attempt: delivery.attempts, error }, "webhook delivery failed; will retry");
      return;
    }
    await this.store.markAttemptFailed(delivery, { status: result.status, error }, undefined);
    this.sent.inc({ outcome: "failed" });
    // Failing for the whole window: the webhook is switched off, and the workspace told once.
    await this.outbox.transaction(async (tx, emit) => {
      const row = await this.store.deactivate(tx, delivery.workspace_id, delivery.webhook_id);
      if (row) emit({ type: "webhook.disabled", workspace_id: row.workspace_id, aggregate_id: row.id, data: { ...webhookResource(row) } });
    });
    this.log.warn({ delivery_id: delivery.id, webhook_id: delivery.webhook_id, attempts: delivery.attempts, error }, "webhook delivery failed for good; webhook deactivated");
  }
}
