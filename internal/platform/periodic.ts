import type { Logger } from "./logger.js";

/**
 * Work run every `intervalMs` (and once at start), never two runs at once. A
 * failed run is logged and the next tick tries again: a dependency that went
 * away never stops the loop or the process.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the ticks and waits for a run in progress. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Runs now, unless a run is in progress (which the caller may ask to go on, as Dispatcher does). */
  runNow(): Promise<void> | undefined {
    this.tick();
    return this.running;
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.work()
      .catch((error: unknown) => this.log.warn({ err: error }, `${this.name} failed; will retry`))
      .finally(() => (this.running = undefined));
  }
}
