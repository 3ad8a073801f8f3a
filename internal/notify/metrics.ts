import { Counter, Histogram, type Registry } from "prom-client";

/** What an operator of notify asks first: how many mails went out, failed, were retried or suppressed. */
export class NotifyMetrics {
  readonly sent: Counter<"type">;
  readonly failed: Counter<"type" | "reason">;
  readonly retried: Counter<"reason">;
  readonly duplicates: Counter<"type">;
  readonly claimsBusy: Counter;
  readonly resentInDoubt: Counter<"type">;
  readonly sendSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.sent = new Counter({
      name: "taskboard_notify_mails_sent_total",
      help: "Mails SES accepted, by event type",
      labelNames: ["type"],
      registers,
    });
    this.failed = new Counter({
      name: "taskboard_notify_mails_failed_total",
      help: "Mails given up, by event type and reason (rejected: a permanent SES error; exhausted: retries used up)",
      labelNames: ["type", "reason"],
      registers,
    });
    this.retried = new Counter({
      name: "taskboard_notify_mails_retried_total",
      help: "SendEmail attempts that failed transiently and were retried, by reason (throttled, server_error, network)",
      labelNames: ["reason"],
      registers,
    });
    this.duplicates = new Counter({
      name: "taskboard_notify_duplicates_suppressed_total",
      help: "Mails not sent again because their record says sent or failed (redelivered or duplicated events)",
      labelNames: ["type"],
      registers,
    });
    this.claimsBusy = new Counter({
      name: "taskboard_notify_claims_busy_total",
      help: "Mails deferred because another replica held a live claim on them",
      registers,
    });
    this.resentInDoubt = new Counter({
      name: "taskboard_notify_resent_in_doubt_total",
      help: "Mails sent again after their previous holder died between SES and recording them (the recipient may get two)",
      labelNames: ["type"],
      registers,
    });
    this.sendSeconds = new Histogram({
      name: "taskboard_notify_send_seconds",
      help: "Duration of SendEmail calls (successful or not)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }
}
