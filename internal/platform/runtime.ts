import type { Registry } from "prom-client";
import { ConfigError } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { createMetricsRegistry } from "./metrics.js";
import { Health } from "./health.js";
import { Shutdown } from "./shutdown.js";

/** What every process has: a logger, metrics, health and an ordered shutdown. */
export interface Runtime {
  log: Logger;
  registry: Registry;
  health: Health;
  shutdown: Shutdown;
}

export function createRuntime(service: string, config: { LOG_LEVEL: string; SHUTDOWN_TIMEOUT_MS: number }): Runtime {
  const log = createLogger(service, config.LOG_LEVEL);
  return {
    log,
    registry: createMetricsRegistry(service),
    health: new Health(),
    shutdown: new Shutdown(log, config.SHUTDOWN_TIMEOUT_MS),
  };
}

/**
 * Runs a process entry: a configuration error prints one line and exits 1; any
 * other start failure or crash is logged as JSON and exits 1.
 */
export function runMain(service: string, start: () => Promise<Runtime>): void {
  const crash = (log: Pick<Logger, "fatal"> | undefined, error: unknown, what: string) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${service}: ${error.message}\n`);
    } else if (log) {
      log.fatal({ err: error }, what);
    } else {
      process.stderr.write(`${JSON.stringify({ level: "fatal", service, msg: what, err: describe(error) })}\n`);
    }
    process.exit(1);
  };
  let runtime: Runtime | undefined;
  let pendingSignal: NodeJS.Signals | undefined;
  // Installed before start: a signal that arrives while starting (even right after
  // "ready" is logged) shuts down once started instead of killing the process.
  const onSignal = (signal: NodeJS.Signals) => {
    if (!runtime) {
      pendingSignal = signal;
      return;
    }
    runtime.shutdown.run(signal).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("unhandledRejection", (error) => crash(runtime?.log, error, "unhandled rejection"));
  process.on("uncaughtException", (error) => crash(runtime?.log, error, "uncaught exception"));
  start().then(
    (started) => {
      runtime = started;
      started.health.markRunning();
      if (pendingSignal) onSignal(pendingSignal);
    },
    (error: unknown) => crash(runtime?.log, error, "start failed"),
  );
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${describe(error.cause)}` : "";
  return `${error.message}${cause}`;
}

/** Logs the "ready" line with the bound ports whatever LOG_LEVEL is: the dev runner and the tests wait for it. */
export function announceReady(log: Logger, ports: Record<string, unknown>): void {
  log.child({}, { level: "info" }).info(ports, "ready");
}
