import type { Logger } from "../platform/logger.js";
import { Periodic } from "../platform/periodic.js";
import type { ExportStore } from "./store.js";

/**
 * Deletes expired jobs with their files, every `intervalMs` (and once at
 * start). Every replica runs it; the deletes are idempotent, and reads already
 * hide expired jobs, so expiry is exact whatever the interval.
 */
export class ExpiredExportsCleanup {
  private readonly periodic: Periodic;

  constructor(
    private readonly store: ExportStore,
    intervalMs: number,
    private readonly log: Logger,
  ) {
    this.periodic = new Periodic("expired exports cleanup", intervalMs, () => this.sweep(), log);
  }

  start(): void {
    this.periodic.start();
  }

  close(): Promise<void> {
    return this.periodic.close();
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
