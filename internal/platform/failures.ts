import { AppError } from "./errors.js";

// postgres.js, ioredis and Node socket errors that mean "a dependency is down".
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "57P01", // admin_shutdown
  "57P03", // cannot_connect_now
  // nats.js: no server answers the subject (JetStream down or electing a leader), a timeout, a connection gone.
  "503",
  "TIMEOUT",
  "DISCONNECT",
  "CONNECTION_REFUSED",
  "CONNECTION_DRAINING",
]);

/**
 * What an error means to the API caller: an AppError as it is; a dependency
 * outage as `unavailable` (503); anything else as `internal` (500), with the
 * original kept as the cause for the log, never shown to the caller.
 */
export function classifyError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const code = (error as { code?: unknown })?.code;
  const message = String((error as { message?: unknown })?.message ?? "");
  if (
    (typeof code === "string" && UNAVAILABLE_CODES.has(code)) ||
    /Connection is closed|Stream isn't writeable|enableOfflineQueue|CONNECTION_CLOSED|TIMEOUT|disconnect/i.test(message)
  ) {
    return new AppError("dependency_unavailable", "a dependency is unavailable; try again", undefined, { cause: error });
  }
  return new AppError("internal", "internal error", undefined, { cause: error });
}
