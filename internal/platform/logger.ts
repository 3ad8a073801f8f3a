import { pino, type Logger } from "pino";

export type { Logger };

/** JSON-lines logger for one process; secrets and auth headers are redacted. */
export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [
        "password",
        "*.password",
        "token",
        "*.token",
        "refresh_token",
        "*.refresh_token",
        "access_token",
        "*.access_token",
        "authorization",
        "*.authorization",
        "headers",
      ],
      censor: "[redacted]",
    },
  });
}

/** A request id a caller sent (`x-request-id`), if it is safe to log and forward; otherwise undefined (make a fresh one). */
export function requestIdOf(value: unknown): string | undefined {
  return typeof value === "string" && /^[A-Za-z0-9._-]{1,128}$/.test(value) ? value : undefined;
}
