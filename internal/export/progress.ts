/**
 * When an export.progress event is due. Two rules: at most one event a second
 * per job, and one at least every `step` (10) points of progress. Progress is
 * checked at every whole percent, so a job slower than `step` points a second
 * gets an event at each step exactly (10, 20, …, 90 %). For a faster job the two
 * rules conflict and the rate limit wins: an event comes each second with the
 * progress of that moment (steps skipped), and a job done in under a second
 * sends none between its `running` event (which counts as the first, at 0 %)
 * and export.completed (100 %). The second is measured between the events'
 * own timestamps: `sent` records the time the event was stamped with, which is
 * later than the moment `due` said yes.
 */
export class ProgressThrottle {
  private lastProgress = 0;
  private lastAt: number;

  constructor(
    now: number,
    private readonly minIntervalMs = 1_000,
    private readonly step = 10,
  ) {
    this.lastAt = now;
  }

  /** Whether an event for `progress` is due at `now`. */
  due(progress: number, now: number): boolean {
    return progress - this.lastProgress >= this.step && now - this.lastAt >= this.minIntervalMs;
  }

  /** Records the event sent for `progress`, stamped `at`. */
  sent(progress: number, at: number): void {
    this.lastProgress = progress;
    this.lastAt = at;
  }
}

/** Whole percent done, at most 99 until the job has completed (rows may be added while it runs). */
export function percentDone(rows: number, total: number): number {
  if (total <= 0) return 0;
  return Math.min(99, Math.floor((rows * 100) / total));
}
