import type { Logger } from "../platform/logger.js";
import type { ExportStore } from "./store.js";

/**
 * Deletes expired jobs with their files, every `intervalMs` (and once at
 * start). Every replica runs it; the deletes are idempotent, and reads already
 * hide expired jobs, so expiry is exact whatever the interval.
 */
export class ExpiredExportsCleanup {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: ExportStore,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.sweep()
      .catch((error: unknown) => this.log.warn({ err: error }, "expired exports cleanup failed; will retry"))
      .finally(() => (this.running = undefined));
  }

  private async sweep(): Promise<void> {
    let deleted = 0;
    for (;;) {
      const n = await this.store.deleteExpired(100);
      deleted += n;
      if (n < 100) break;
    }
    if (deleted > 0) this.log.info({ deleted }, "expired exports deleted");
  }
}
