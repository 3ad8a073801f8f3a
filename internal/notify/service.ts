import { writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { RetryLater } from "../platform/durable-consumer.js";
import type { Event } from "../platform/events.js";
import type { Logger } from "../platform/logger.js";
import type { Outbox } from "../platform/outbox.js";
import { exponentialBackoff, type Backoff } from "../platform/retry.js";
import type { NotifyFault } from "./config.js";
import type { Directory, User } from "./directory.js";
import { MailSendError, type Mailer } from "./mailer.js";
import type { NotifyMetrics } from "./metrics.js";
import type { DeliveryKey, DeliveryStore } from "./store.js";
import {
  commentCreatedMail,
  dueSoonMail,
  passwordResetMail,
  statusChangedMail,
  taskAssignedMail,
  watchedTaskAssignedMail,
  taskCreatedMail,
  unsubscribeLink,
  type Mail,
  type MailContext,
} from "./templates.js";

/** The event types notify mails about. */
export const NOTIFIED_TYPES = [
  "task.created",
  "task.assigned",
  "task.updated",
  "task.due_soon",
  "comment.created",
  "user.password_reset_requested",
] as const;

/** The workspace_id under which mails that belong to no workspace (account mails) are recorded. */
export const ACCOUNT_MAILS = "00000000-0000-0000-0000-000000000000";
export type NotifiedType = (typeof NOTIFIED_TYPES)[number];

export interface NotifyServiceOptions {
  appUrl: string;
  /** This process, as written in the claims it holds (unique per process start). */
  replica: string;
  claimTtlMs: number;
  /** SendEmail attempts within one delivery. */
  sendAttempts: number;
  retryBaseMs: number;
  /** The JetStream delivery from which remaining transient failures are recorded as failed. */
  maxDeliver: number;
  /** TEST ONLY (NOTIFY_FAULT). */
  fault?: NotifyFault | undefined;
}

/** One mail to send. */
interface Planned {
  recipient: User;
  mail: Mail;
}

/** What became of one mail in this delivery. */
type Outcome = { kind: "done" } | { kind: "later"; delayMs?: number };

// The parts of event `data` (API.md resources) the rules read.
const taskData = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string().default(""),
  assignee_id: z.string().nullable().optional(),
  created_by: z.string(),
  status: z.string().default(""),
  due_date: z.string().nullable().optional(),
  watcher_ids: z.array(z.string()).default([]),
});
const commentData = z.object({ id: z.string(), task_id: z.string(), author_id: z.string(), content: z.string(), created_at: z.string() });

/** Retries of recording a sent mail: 100 ms doubling to 5 s, for as long as it takes. */
const recordPolicy = exponentialBackoff(100, 5_000);
/** Looking again for another replica's claim on a mail: soon first, doubling. */
const BUSY_BACKOFF = exponentialBackoff(250, 60_000);

/** A comment's author (the actor too, but the rule names the author). */
function authorOf(event: Event): string | undefined {
  const author = event.type === "comment.created" ? event.data?.["author_id"] : undefined;
  return typeof author === "string" ? author : undefined;
}

/**
 * E-mail notifications (ARCHITECTURE.md guarantee 6: one mail per event and
 * recipient, whatever the redeliveries, restarts and replicas).
 *
 * Recipients are decided when the mail is sent, never earlier:
 * - task.created: every member except the actor and the assignee (who hears of it
 *   through the task.assigned that follows);
 * - task.assigned: the assignee ("assigned to you") and the task's watchers ("X
 *   assigned it to Y"), unless they did it themselves (the actor is never mailed
 *   about their own action); nothing when the assignee was cleared;
 * - task.updated, when its `changes` name `status`: the task's watchers;
 * - task.due_soon (the task service's reminders): the assignee;
 * - comment.created: the task's creator, its assignee, its watchers and the
 *   authors of the task's earlier comments, except the comment's author (nothing
 *   when the task is gone);
 * - user.password_reset_requested: the account (see planPasswordReset);
 * and of those only current members of the workspace whose
 * `email_notifications` is on.
 *
 * Exactly once, per (event id, recipient), through a record in Postgres:
 * 1. claim: one upsert creates the record as `claimed` by this replica until
 *    now + NOTIFY_CLAIM_TTL_MS; a record already `sent` or `failed` means a
 *    duplicate delivery (skipped, counted); a live claim of another replica
 *    means it is being sent right now (this delivery waits: RetryLater with the
 *    claim's remaining time); an expired claim (its replica died) is taken over;
 * 2. send through SES; right before every attempt the claim is renewed and the
 *    record marked `sending` (each attempt is bounded by SES_TIMEOUT_MS, and the
 *    claim lasts at least twice that, so no one can take a claim over while its
 *    holder may still be sending);
 * 3. record `sent` (or `failed`) together with its notification.sent/failed
 *    event in one outbox transaction, retried until it commits;
 * 4. only then is the JetStream message acked (by the consumer, after `handle`).
 *
 * The one window that cannot be closed: SES accepts the mail, and the process
 * dies (or the request times out after SES took it) before step 3 commits.
 * SES SendEmail has no idempotency key to ask "did you get this one", so the
 * next holder sends it again; but it knows it is doing so: it took over a claim
 * marked `sending`, so the record says `resent_in_doubt` and
 * taskboard_notify_resent_in_doubt_total counts it. A holder that died before
 * its send (claim not marked), a redelivery, a second replica, a Postgres outage
 * after the send: each mail once.
 */
export class NotifyService {
  private sendBackoff: Backoff | undefined;

  constructor(
    private readonly store: DeliveryStore,
    private readonly outbox: Outbox,
    private readonly directory: Directory,
    private readonly mailer: Mailer,
    private readonly metrics: NotifyMetrics,
    private readonly log: Logger,
    private readonly options: NotifyServiceOptions,
  ) {}

  /**
   * Handles one delivery (`delivery`: 1 for the first) of a notified event.
   * Resolves when every mail is sent, failed for good, or was already done;
   * throws RetryLater when some must be tried again in a later delivery.
   */
  async handle(event: Event, delivery: number): Promise<void> {
    const planned = await this.plan(event);
    let later = 0;
    let delayMs: number | undefined;
    for (const mail of planned) {
      const outcome = await this.deliver(event, mail, delivery);
      if (outcome.kind === "later") {
        later++;
        if (outcome.delayMs !== undefined) delayMs = Math.max(delayMs ?? 0, outcome.delayMs);
      }
    }
    if (later > 0) throw new RetryLater(`${later} of ${planned.length} mails of event ${event.id} must be tried again`, delayMs);
  }

  /** The mails an event calls for, to the recipients of the rules above as they are now. */
  private async plan(event: Event): Promise<Planned[]> {
    if (event.type === "user.password_reset_requested") return this.planPasswordReset(event);
    const workspaceId = event.workspace_id;
    if (!workspaceId) return this.skip(event, "no workspace_id");
    const actor = event.user_id ?? "";
    const members = await this.directory.memberIds(workspaceId);
    let candidates: (string | null | undefined)[];
    let compose: (ctx: MailContext, actorName: string, recipientId: string, nameOf: (id: string) => string) => Mail;
    /** Users named in a mail besides the actor and the recipient. */
    let named: (string | null | undefined)[] = [];

    switch (event.type) {
      case "task.created": {
        const task = taskData.safeParse(event.data);
        if (!task.success) return this.skip(event, "task data unreadable");
        candidates = [...members].filter((id) => id !== task.data.assignee_id);
        compose = (ctx, actorName) => taskCreatedMail(ctx, { actorName, title: task.data.title, description: task.data.description });
        break;
      }
      case "task.assigned": {
        const task = taskData.safeParse(event.data);
        if (!task.success) return this.skip(event, "task data unreadable");
        const { assignee_id, title, description, watcher_ids } = task.data;
        if (!assignee_id) return this.skip(event, "unassigned");
        candidates = [assignee_id, ...watcher_ids];
        named = [assignee_id];
        compose = (ctx, actorName, recipientId, nameOf) =>
          recipientId === assignee_id
            ? taskAssignedMail(ctx, { actorName, title, description })
            : watchedTaskAssignedMail(ctx, { actorName, assigneeName: nameOf(assignee_id), title, description });
        break;
      }
      case "task.updated": {
        const task = taskData.safeParse(event.data);
        if (!task.success) return this.skip(event, "task data unreadable");
        if (!event.changes?.includes("status")) return this.skip(event, "no status change");
        const { title, description, status, watcher_ids } = task.data;
        candidates = watcher_ids;
        compose = (ctx, actorName) => statusChangedMail(ctx, { actorName, title, description, status });
        break;
      }
      case "task.due_soon": {
        const task = taskData.safeParse(event.data);
        if (!task.success || !task.data.due_date) return this.skip(event, "task data unreadable");
        const { assignee_id, title, description, due_date } = task.data;
        candidates = [assignee_id];
        compose = (ctx) => dueSoonMail(ctx, { title, description, dueDate: due_date });
        break;
      }
      case "comment.created": {
        const parsed = commentData.safeParse(event.data);
        if (!parsed.success) return this.skip(event, "comment data unreadable");
        const comment = parsed.data;
        const task = await this.directory.task(comment.task_id);
        if (!task) return this.skip(event, "task deleted");
        const comments = await this.directory.comments(task.id);
        const at = comments.findIndex((c) => c.id === comment.id);
        // A comment deleted since: the ones written no later than it were earlier.
        const earlier = at >= 0 ? comments.slice(0, at) : comments.filter((c) => c.created_at <= comment.created_at);
        candidates = [task.created_by, task.assignee_id, ...task.watcher_ids, ...earlier.map((c) => c.author_id)];
        compose = (ctx, actorName) => commentCreatedMail(ctx, { authorName: actorName, taskTitle: task.title, content: comment.content });
        break;
      }
      default:
        return this.skip(event, "not a notified type");
    }

    const wanted = [...new Set(candidates)].filter(
      (id): id is string => Boolean(id) && id !== actor && id !== authorOf(event) && members.has(id!),
    );
    if (wanted.length === 0) return [];
    const users = await this.directory.users([...wanted, actor, ...named.filter((id): id is string => Boolean(id))]);
    const actorName = users.get(actor)?.name ?? "Someone";
    const nameOf = (id: string) => users.get(id)?.name ?? "someone";
    const recipients = wanted.map((id) => users.get(id)).filter((user): user is User => Boolean(user?.email && user.email_notifications));
    const tokens = await this.directory.unsubscribeTokens(recipients.map((user) => user.id));
    const planned: Planned[] = [];
    for (const user of recipients) {
      const ctx = { appUrl: this.options.appUrl, workspaceId, recipientName: user.name, unsubscribeUrl: unsubscribeLink(this.options.appUrl, tokens.get(user.id)!) };
      planned.push({ recipient: user, mail: compose(ctx, actorName, user.id, nameOf) });
    }
    this.log.debug({ event_id: event.id, type: event.type, recipients: planned.length }, "mails planned");
    return planned;
  }

  /**
   * The reset mail of user.password_reset_requested: to the account's address whatever
   * its notification setting (the user asked for it), with a fresh token from auth (the
   * token never enters the event stream). An account deleted since gets nothing.
   */
  private async planPasswordReset(event: Event): Promise<Planned[]> {
    const reset = await this.directory.passwordReset(event.aggregate_id);
    const user = reset?.user;
    if (!reset || !user) return this.skip(event, "account deleted");
    const { token, expires_in } = reset;
    const tokens = await this.directory.unsubscribeTokens([user.id]);
    const ctx = { appUrl: this.options.appUrl, recipientName: user.name, unsubscribeUrl: unsubscribeLink(this.options.appUrl, tokens.get(user.id)!) };
    return [{ recipient: user, mail: passwordResetMail(ctx, { token, minutes: Math.round(expires_in / 60) }) }];
  }

  private skip(event: Event, why: string): Planned[] {
    this.log.info({ event_id: event.id, type: event.type, why }, "event needs no mail");
    return [];
  }

  /** One mail, at most once: claim, send (with retries), record. */
  private async deliver(event: Event, planned: Planned, delivery: number): Promise<Outcome> {
    const key: DeliveryKey = { workspace_id: event.workspace_id ?? ACCOUNT_MAILS, event_id: event.id, recipient_id: planned.recipient.id };
    const { replica, claimTtlMs } = this.options;
    const log = this.log.child({ event_id: event.id, type: event.type, recipient_id: key.recipient_id, delivery });

    const claim = await this.store.claim(key, event.type, replica, claimTtlMs);
    if (claim.kind === "done") {
      this.metrics.duplicates.inc({ type: event.type });
      log.info({ state: claim.state }, "mail already handled; duplicate suppressed");
      return { kind: "done" };
    }
    if (claim.kind === "busy") {
      this.metrics.claimsBusy.inc();
      log.info({ holder: claim.holder, remaining_ms: Math.round(claim.remainingMs) }, "mail claimed by another replica; later");
      return { kind: "later", delayMs: this.busyDelay(claim.remainingMs, delivery) };
    }
    if (claim.claims > 1) log.info({ claims: claim.claims }, "mail claimed again (released or expired claim)");
    if (claim.inDoubt) {
      this.metrics.resentInDoubt.inc({ type: event.type });
      log.warn("the previous holder died while its send may have reached SES: sending again, in doubt");
    }
    this.injectFault("exit-after-claim", log);

    let lastFailure: MailSendError | undefined;
    for (let attempt = 1; attempt <= this.options.sendAttempts; attempt++) {
      if (attempt > 1) await sleep(this.retryDelay(attempt - 1));
      if (!(await this.store.markSending(key, replica, claimTtlMs))) {
        log.warn("claim lost before a send; the next delivery decides");
        return { kind: "later" };
      }
      const stopTimer = this.metrics.sendSeconds.startTimer();
      let messageId: string;
      try {
        messageId = await this.mailer.send(planned.recipient.email, planned.mail);
      } catch (error) {
        if (!(error instanceof MailSendError)) throw error;
        if (!error.transient) {
          log.warn({ err: error }, "mail rejected");
          await this.recordFailed(event, key, "rejected", error.message);
          return { kind: "done" };
        }
        this.metrics.retried.inc({ reason: error.failure });
        log.warn({ err: error, attempt }, "send failed; will retry");
        lastFailure = error;
        continue;
      } finally {
        stopTimer();
      }
      await this.recordSent(event, key, messageId, log);
      this.injectFault("exit-after-record", log);
      return { kind: "done" };
    }

    const why = lastFailure?.message ?? "send failed";
    if (delivery >= this.options.maxDeliver) {
      await this.recordFailed(event, key, "exhausted", `retries exhausted: ${why}`);
      return { kind: "done" };
    }
    await this.store.release(key, replica, why, lastFailure !== undefined && lastFailure.failure !== "network");
    return { kind: "later" };
  }

  /**
   * Marks the mail sent and emits notification.sent in one transaction. SES
   * already took the mail, so this is retried until it commits (Postgres down
   * for a while, say): giving up would let a redelivery send it again. While
   * this runs, the consumer's heartbeat keeps the event from being redelivered.
   */
  private async recordSent(event: Event, key: DeliveryKey, messageId: string, log: Logger): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const recorded = await this.outbox.transaction(async (tx, emit) => {
          if (!(await this.store.markSent(tx, key, messageId))) return false;
          // An account mail belongs to no workspace: recorded, but no room hears of it.
          if (key.workspace_id !== ACCOUNT_MAILS) {
            emit({
              type: "notification.sent",
              workspace_id: key.workspace_id,
              aggregate_id: event.id,
              data: { event_id: event.id, event_type: event.type, recipient_id: key.recipient_id, message_id: messageId },
            });
          }
          return true;
        });
        if (recorded) {
          this.metrics.sent.inc({ type: event.type });
          log.info({ message_id: messageId }, "mail sent");
        } else {
          // Only when this replica outlived its claim and another took it over: both sent.
          log.error({ message_id: messageId }, "mail sent, but another replica had recorded it already");
        }
        return;
      } catch (error) {
        log.warn({ err: error, attempt, message_id: messageId }, "recording a sent mail failed; retrying until it commits");
        await sleep(recordPolicy.backoff(attempt));
      }
    }
  }

  private async recordFailed(event: Event, key: DeliveryKey, reason: "rejected" | "exhausted", error: string): Promise<void> {
    const recorded = await this.outbox.transaction(async (tx, emit) => {
      if (!(await this.store.markFailed(tx, key, this.options.replica, error))) return false;
      if (key.workspace_id !== ACCOUNT_MAILS) {
        emit({
          type: "notification.failed",
          workspace_id: key.workspace_id,
          aggregate_id: event.id,
          data: { event_id: event.id, event_type: event.type, recipient_id: key.recipient_id, reason, error },
        });
      }
      return true;
    });
    if (recorded) {
      this.metrics.failed.inc({ type: event.type, reason });
      this.log.warn({ event_id: event.id, recipient_id: key.recipient_id, reason, error }, "mail failed for good");
    }
  }

  /**
   * How long to wait for another replica's claim: a live holder is done in
   * moments, so look again soon (doubling each delivery); but the delivery
   * before the last waits out the whole claim, so that a dead holder's claim
   * has expired before the deliveries run out.
   */
  private busyDelay(remainingMs: number, delivery: number): number {
    const untilExpired = Math.round(remainingMs) + 250;
    if (delivery >= this.options.maxDeliver - 1) return untilExpired;
    return Math.min(untilExpired, BUSY_BACKOFF.backoff(delivery - 1));
  }

  /** The retry policy (retry.ts) from retryBaseMs, at most 10 s; `n` counts from 1. */
  private retryDelay(n: number): number {
    this.sendBackoff ??= exponentialBackoff(this.options.retryBaseMs, 10_000);
    return this.sendBackoff.backoff(n - 1);
  }

  /**
   * TEST ONLY (NOTIFY_FAULT): dies like a crash (SIGKILL: no shutdown, no ack)
   * at a chosen point, so a test can prove what the idempotency record holds.
   */
  private injectFault(point: NotifyFault, log: Logger): void {
    if (this.options.fault !== point) return;
    log.fatal({ fault: point }, "NOTIFY_FAULT: killing the process");
    writeSync(2, `NOTIFY_FAULT ${point}: SIGKILL\n`);
    process.kill(process.pid, "SIGKILL");
  }
}
