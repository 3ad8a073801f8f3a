import type { Logger } from "../platform/logger.js";
import type { Outbox } from "../platform/outbox.js";
import { Periodic } from "../platform/periodic.js";
import { taskResource } from "./resources.js";
import { toTask, type TaskRow, type TaskStore } from "./store.js";

/** Reminders claimed per transaction. */
const BATCH = 100;

/**
 * Due-date reminders (migration 004_reminders.sql arms them): every replica looks
 * every `pollMs` for reminders whose time has come, claims a batch with FOR UPDATE
 * SKIP LOCKED (so replicas never take the same one), and in the same transaction
 * publishes `task.due_soon` / `task.overdue` (outbox) and marks them fired. A replica
 * killed midway rolls its claim back and another fires it: each once per (task,
 * due date). A due_soon whose due date has already passed (armed late) is marked
 * fired without an event: the overdue one says more.
 */
export class DueDateReminders {
  private readonly periodic: Periodic;

  constructor(
    private readonly store: TaskStore,
    private readonly outbox: Outbox,
    private readonly leadMs: number,
    pollMs: number,
    private readonly log: Logger,
  ) {
    this.periodic = new Periodic("due-date reminders", pollMs, () => this.fireDue(), log);
  }

  start(): void {
    this.periodic.start();
  }

  close(): Promise<void> {
    return this.periodic.close();
  }

  /** Fires every reminder that is due, a batch per transaction. */
  async fireDue(): Promise<void> {
    for (;;) {
      const fired = await this.outbox.transaction(async (tx, emit) => {
        const due = await this.store.claimDueReminders(tx, this.leadMs, BATCH);
        for (const { kind, task } of due) {
          if (kind === "due_soon" && task.due_date!.getTime() <= Date.now()) continue;
          emit({ type: `task.${kind}`, workspace_id: task.workspace_id, aggregate_id: task.id, data: taskResource(toTask(task)) });
        }
        await this.store.markFired(tx, due);
        return due.length;
      });
      if (fired > 0) this.log.info({ fired }, "due-date reminders fired");
      if (fired < BATCH) return;
    }
  }
}

export type DueReminder = { kind: "due_soon" | "overdue"; due_date: Date; task: TaskRow };
