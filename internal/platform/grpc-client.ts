import * as grpc from "@grpc/grpc-js";
import { AppError, errorCodeForGrpcStatus, isErrorCode } from "./errors.js";
import { inSpan, isTracing, SpanKind, traceHeaders, type Span } from "./tracing.js";

/** Who an outgoing call acts for, and how long it may take. */
export interface OutgoingCall {
  /** The end user's access token, forwarded so the callee authorises them. */
  token?: string | undefined;
  /** Act as this process (its own internal credential) instead of a user. */
  internal?: boolean;
  requestId?: string | undefined;
  timeoutMs?: number;
  /** Cancels the call when aborted (e.g. the HTTP client of a download went away). */
  signal?: AbortSignal | undefined;
}

type Callback<Res> = (error: grpc.ServiceError | null, response: Res) => void;
type UnaryFn<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: Callback<Res>,
) => grpc.ClientUnaryCall;
type StreamFn<Req, Res> = (
  request: Req,
  metadata?: grpc.Metadata,
  options?: Partial<grpc.CallOptions>,
) => grpc.ClientReadableStream<Res>;

// A server-streaming method also matches UnaryFn (a ClientReadableStream is a ClientUnaryCall
// structurally, and fewer parameters are assignable), so methods are told apart by what they
// return; the base Client's own methods (makeServerStreamRequest, …) are not service methods.
type ReturnsStream<F> = F extends (...args: any[]) => grpc.ClientReadableStream<any> ? true : false;
type MethodNames<C> = Exclude<keyof C, keyof grpc.Client>;
type UnaryNames<C> = { [K in MethodNames<C>]: C[K] extends UnaryFn<any, any> ? (ReturnsStream<C[K]> extends true ? never : K) : never }[MethodNames<C>];
type StreamNames<C> = { [K in MethodNames<C>]: ReturnsStream<C[K]> extends true ? K : never }[MethodNames<C>];
type Req<F> = F extends StreamFn<infer R, any> ? R : F extends UnaryFn<infer R, any> ? R : never;
type Res<F> = F extends StreamFn<any, infer R> ? R : F extends UnaryFn<any, infer R> ? R : never;

/**
 * The largest message between processes: a full batch of the gateway (128 tasks
 * of up to about 31 KB each, with their tokens) fits with room to spare.
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export const channelOptions: grpc.ClientOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  // No transparent retries: each call is one attempt (the callers decide), and grpc-js skips
  // buffering every request for a possible retry.
  "grpc.enable_retries": 0,
};

/**
 * Promise-returning calls on a ts-proto grpc-js client, each with a deadline
 * and the caller's credentials; failures come back as AppError with the code
 * the callee chose (or one derived from the gRPC status).
 */
export class ServiceClient<C extends grpc.Client> {
  constructor(
    readonly client: C,
    private readonly internalSecret: string,
    private readonly defaultTimeoutMs: number,
  ) {}

  call<K extends UnaryNames<C>>(method: K, request: Req<C[K]>, call: OutgoingCall): Promise<Res<C[K]>> {
    const fn = this.client[method] as unknown as UnaryFn<Req<C[K]>, Res<C[K]>>;
    const send = (span?: Span) =>
      new Promise<Res<C[K]>>((resolve, reject) => {
        fn.call(this.client, request, this.metadata(call, span), { deadline: this.deadline(call) }, (error, response) =>
          error ? reject(fromGrpcError(error)) : resolve(response),
        );
      });
    return isTracing() ? inSpan(...this.spanOf(method as string), send) : send();
  }

  /** A server stream as an async iterable; errors are AppErrors. */
  async *stream<K extends StreamNames<C>>(method: K, request: Req<C[K]>, call: OutgoingCall): AsyncGenerator<Res<C[K]>> {
    const fn = this.client[method] as unknown as StreamFn<Req<C[K]>, Res<C[K]>>;
    // Traced as the call's opening: the stream's context travels to the callee; its messages are not spans.
    const stream = isTracing()
      ? await inSpan(...this.spanOf(method as string), async (span) => fn.call(this.client, request, this.metadata(call, span), { deadline: this.deadline(call) }))
      : fn.call(this.client, request, this.metadata(call), { deadline: this.deadline(call) });
    const cancel = () => stream.cancel();
    if (call.signal?.aborted) cancel();
    else call.signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of stream) yield message as Res<C[K]>;
    } catch (error) {
      throw fromGrpcError(error as grpc.ServiceError);
    } finally {
      call.signal?.removeEventListener("abort", cancel);
      stream.cancel();
    }
  }

  close(): void {
    this.client.close();
  }

  /** Resolves when the channel is connected (or rejects after `timeoutMs`). */
  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())),
    );
  }

  private deadline(call: OutgoingCall): number {
    return Date.now() + (call.timeoutMs ?? this.defaultTimeoutMs);
  }

  /** The client span's name, kind and attributes (OpenTelemetry's RPC conventions). */
  private spanOf(method: string): [string, SpanKind, { "rpc.system": string; "rpc.service": string; "rpc.method": string }] {
    const service = (this.client.constructor as { serviceName?: string }).serviceName ?? "unknown";
    const name = method.charAt(0).toUpperCase() + method.slice(1);
    return [`${service}/${name}`, SpanKind.CLIENT, { "rpc.system": "grpc", "rpc.service": service, "rpc.method": name }];
  }

  private metadata(call: OutgoingCall, span?: Span): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (call.internal) metadata.set("x-internal-token", this.internalSecret);
    else if (call.token) metadata.set("authorization", `Bearer ${call.token}`);
    if (call.requestId) metadata.set("x-request-id", call.requestId);
    if (span) for (const [key, value] of Object.entries(traceHeaders() ?? {})) metadata.set(key, value);
    return metadata;
  }
}

/** Converts a gRPC failure into the AppError the callee meant. */
export function fromGrpcError(error: grpc.ServiceError): AppError {
  const code = error.metadata?.get("tb-error-code")[0];
  if (isErrorCode(code)) {
    const raw = error.metadata.get("tb-error-details")[0];
    let details: Record<string, unknown> | undefined;
    if (typeof raw === "string") {
      try {
        details = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        details = undefined;
      }
    }
    return new AppError(code, error.details || code, details, { cause: error });
  }
  const derived = errorCodeForGrpcStatus(error.code);
  const message =
    derived === "dependency_unavailable" ? "a service is unavailable; try again" : derived === "internal" ? "internal error" : error.details;
  return new AppError(derived, message, undefined, { cause: error });
}

/** A client of `Ctor` for `address` (host:port), plaintext inside the cluster. */
export function connectService<C extends grpc.Client>(
  Ctor: new (address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) => C,
  address: string,
  internalSecret: string,
  timeoutMs: number,
  options: Partial<grpc.ClientOptions> = {},
): ServiceClient<C> {
  return new ServiceClient(new Ctor(address, grpc.credentials.createInsecure(), { ...channelOptions, ...options }), internalSecret, timeoutMs);
}
