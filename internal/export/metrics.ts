import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { RunOutcome } from "./store.js";

/** What an operator asks first about exports: how many ran, how they ended, how fast. */
export class ExportMetrics {
  readonly attempts: Counter<"outcome">;
  readonly rows: Counter;
  readonly bytes: Counter;
  readonly duration: Histogram<"format">;
  readonly running: Gauge;

  constructor(registry: Registry) {
    this.attempts = new Counter({
      name: "taskboard_export_attempts_total",
      help: "Export attempts this replica ran, by how they ended (completed, failed, retry, released, lost)",
      labelNames: ["outcome"],
      registers: [registry],
    });
    this.rows = new Counter({ name: "taskboard_export_rows_total", help: "Rows written to export files", registers: [registry] });
    this.bytes = new Counter({ name: "taskboard_export_bytes_total", help: "Bytes of export files stored", registers: [registry] });
    this.duration = new Histogram({
      name: "taskboard_export_attempt_duration_seconds",
      help: "Duration of completed export attempts",
      labelNames: ["format"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    });
    this.running = new Gauge({ name: "taskboard_export_running", help: "Export jobs running on this replica", registers: [registry] });
  }

  ended(outcome: RunOutcome): void {
    this.attempts.inc({ outcome });
  }
}
