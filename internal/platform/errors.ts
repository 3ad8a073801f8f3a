import { status as GrpcStatus } from "@grpc/grpc-js";

/**
 * The catalogue of API error codes: each with its HTTP status (API.md "Errors")
 * and the gRPC status services answer with. The gateway maps gRPC back to HTTP
 * here and nowhere else.
 */
export const errorCatalogue = {
  validation_failed: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  invalid_json: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  invalid_token: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT },
  unauthorized: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED },
  forbidden: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED },
  not_found: { http: 404, grpc: GrpcStatus.NOT_FOUND },
  conflict: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS },
  email_taken: { http: 409, grpc: GrpcStatus.ALREADY_EXISTS },
  not_ready: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION },
  payload_too_large: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  unsupported_media_type: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT },
  unprocessable: { http: 422, grpc: GrpcStatus.FAILED_PRECONDITION },
  rate_limited: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  internal: { http: 500, grpc: GrpcStatus.INTERNAL },
  dependency_unavailable: { http: 503, grpc: GrpcStatus.UNAVAILABLE },
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(errorCatalogue, value);
}

/** An error the API shows to its caller: a catalogued code, a message and optional details. */
export class AppError extends Error {
  override name = "AppError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get httpStatus(): number {
    return errorCatalogue[this.code].http;
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new AppError("validation_failed", message, details);
export const unauthorized = (message = "missing, invalid or expired token") => new AppError("unauthorized", message);
export const forbidden = (message = "not allowed") => new AppError("forbidden", message);
export const notFound = (what: string) => new AppError("not_found", `${what} not found`);
export const unprocessable = (message: string, details?: Record<string, unknown>) =>
  new AppError("unprocessable", message, details);

/** What the gateway does with a gRPC status that carries no catalogued code. */
export function errorCodeForGrpcStatus(code: number): ErrorCode {
  switch (code) {
    case GrpcStatus.INVALID_ARGUMENT:
      return "validation_failed";
    case GrpcStatus.UNAUTHENTICATED:
      return "unauthorized";
    case GrpcStatus.PERMISSION_DENIED:
      return "forbidden";
    case GrpcStatus.NOT_FOUND:
      return "not_found";
    case GrpcStatus.ALREADY_EXISTS:
      return "conflict";
    case GrpcStatus.FAILED_PRECONDITION:
      return "unprocessable";
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return "rate_limited";
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
    case GrpcStatus.CANCELLED:
      return "dependency_unavailable";
    default:
      return "internal";
  }
}

/** The `Retry-After` value (seconds) of a `rate_limited` error that says when to retry (`details.retry_after_seconds`). */
export function retryAfterOf(error: AppError): string | undefined {
  const seconds = error.details?.["retry_after_seconds"];
  return error.code === "rate_limited" && typeof seconds === "number" ? String(seconds) : undefined;
}

/** The API's error body. */
export function errorBody(code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return { error: details ? { code, message, details } : { code, message } };
}
