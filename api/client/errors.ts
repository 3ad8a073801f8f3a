/** An error answer of the API (`{"error": {code, message, details}}`), or a request that got no answer. */
export class TaskboardError extends Error {
  override readonly name = "TaskboardError";
  /** The HTTP status; 0 when no answer arrived (network failure). */
  readonly status: number;
  /** The API's error code (`validation_failed`, `not_found`, …); `network_error` when no answer arrived, `http_<status>` for a body that was not the API's. */
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds to wait before trying again (from `Retry-After`, e.g. on 429). */
  readonly retryAfter: number | undefined;
  /** The gateway's `x-request-id`, to quote when asking what happened. */
  readonly requestId: string | undefined;

  constructor(
    message: string,
    init: { status: number; code: string; details?: Record<string, unknown>; retryAfter?: number; requestId?: string; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.details = init.details;
    this.retryAfter = init.retryAfter;
    this.requestId = init.requestId;
  }
}

/** Seconds from a `Retry-After` header: a number of seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** The TaskboardError of a response that is not ok (reads its body). */
export async function errorFromResponse(response: Response): Promise<TaskboardError> {
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  const requestId = response.headers.get("x-request-id") ?? undefined;
  let text = "";
  try {
    text = await response.text();
  } catch (cause) {
    return new TaskboardError(`HTTP ${response.status} (the body could not be read)`, { status: response.status, code: `http_${response.status}`, retryAfter, requestId, cause });
  }
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined; // not the API's JSON (e.g. a proxy's page): described by the status below
  }
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (error && typeof error.code === "string") {
    return new TaskboardError(typeof error.message === "string" ? error.message : error.code, {
      status: response.status,
      code: error.code,
      details: typeof error.details === "object" && error.details !== null ? (error.details as Record<string, unknown>) : undefined,
      retryAfter,
      requestId,
    });
  }
  return new TaskboardError(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`, {
    status: response.status,
    code: `http_${response.status}`,
    retryAfter,
    requestId,
  });
}


/** A realtime connection ended for good (removed from the workspace, workspace deleted, flooding, or access refused). */
export class RealtimeClosedError extends Error {
  override readonly name = "RealtimeClosedError";
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
