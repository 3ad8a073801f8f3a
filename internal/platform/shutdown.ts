import type { Logger } from "./logger.js";

type Step = { name: string; run: () => Promise<unknown> | unknown };

/**
 * Graceful shutdown in a fixed order: steps run one after another, in the order
 * they were added, under one time limit. `run()` is safe to call twice and
 * returns the same promise.
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** Adds a step; steps run in the order they were added. */
  add(name: string, run: Step["run"]): this {
    this.steps.push({ name, run });
    return this;
  }

  run(reason: string): Promise<void> {
    this.running ??= this.execute(reason);
    return this.running;
  }

  private async execute(reason: string): Promise<void> {
    this.log.info({ reason }, "shutting down");
    let timer: NodeJS.Timeout | undefined;
    let current = "";
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`shutdown took longer than ${this.timeoutMs} ms (stuck in step "${current}")`)), this.timeoutMs);
      timer.unref();
    });
    const steps = (async () => {
      for (const step of this.steps) {
        current = step.name;
        try {
          await step.run();
        } catch (error) {
          this.log.error({ err: error, step: step.name }, "shutdown step failed");
        }
      }
    })();
    try {
      await Promise.race([steps, deadline]);
      this.log.info("shutdown complete");
    } catch (error) {
      this.log.error({ err: error }, "shutdown incomplete");
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
