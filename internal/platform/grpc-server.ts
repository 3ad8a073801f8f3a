import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { Counter, Histogram, type Registry } from "prom-client";
import { AppError, errorCatalogue, forbidden, unauthorized } from "./errors.js";
import { classifyError } from "./failures.js";
import { requestIdOf, type Logger } from "./logger.js";
import { credentialDigest } from "./internal-callers.js";
import { admits, type Access, type Caller, type Principal } from "./principal.js";
import { bearerToken, type AccessClaims } from "./access-tokens.js";
import { MAX_MESSAGE_BYTES } from "./grpc-client.js";
import { failSpan, inSpan, isTracing, remoteContext, SpanKind, type Span } from "./tracing.js";

export interface CallContext {
  principal: Principal;
  requestId: string;
  /** The network address of the calling process (the peer of the gRPC connection). */
  peerAddress: string;
  log: Logger;
  /** Aborted when the caller cancels or the deadline passes. */
  signal: AbortSignal;
}

export interface UnaryMethod<Req, Res> {
  access: Access;
  handle(request: Req, ctx: CallContext): Promise<Res>;
}

/** A server-streaming method: `send` resolves when the message may be followed by another (backpressure). */
export interface StreamMethod<Req, Res> {
  access: Access;
  stream(request: Req, ctx: CallContext, send: (message: Res) => Promise<void>): Promise<void>;
}

type MethodDefinition = {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize: (value: Buffer) => unknown;
  responseSerialize: (value: never) => Buffer;
};
type RequestOf<D> = D extends { requestDeserialize: (value: Buffer) => infer R } ? R : never;
type ResponseOf<D> = D extends { responseSerialize: (value: infer R) => Buffer } ? R : never;

/** The handlers of a ts-proto service definition, each with its access rule. */
export type Handlers<S> = {
  [K in keyof S]: S[K] extends { responseStream: true }
    ? StreamMethod<RequestOf<S[K]>, ResponseOf<S[K]>>
    : UnaryMethod<RequestOf<S[K]>, ResponseOf<S[K]>>;
};

export interface GrpcServerDeps {
  log: Logger;
  registry: Registry;
  /** Internal callers by the digest of their credential (INTERNAL_CALLERS). */
  callers: ReadonlyMap<string, Caller>;
  verifyAccessToken: (token: string) => Promise<AccessClaims>;
}

/**
 * A gRPC server whose methods are async functions. Each call gets a request id
 * (from `x-request-id` or fresh), a child logger, its principal (a user by
 * access token, a process by its own credential) checked against the method's
 * access rule, metrics, and errors mapped to gRPC statuses with
 * the API error code in trailing metadata (`tb-error-code`).
 */
export class GrpcServer {
  private readonly server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.keepalive_permit_without_calls": 1,
  });
  private readonly handled: Counter<"method" | "code">;
  private readonly duration: Histogram<"method">;

  constructor(private readonly deps: GrpcServerDeps) {
    this.handled = new Counter({
      name: "taskboard_grpc_server_handled_total",
      help: "gRPC calls handled, by method and status code",
      labelNames: ["method", "code"],
      registers: [deps.registry],
    });
    this.duration = new Histogram({
      name: "taskboard_grpc_server_duration_seconds",
      help: "gRPC call duration",
      labelNames: ["method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [deps.registry],
    });
  }

  add<S extends Record<string, MethodDefinition>>(definition: S, handlers: Handlers<S>): this {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(definition)) {
      const method = definition[name]!;
      const handler = handlers[name as keyof S] as UnaryMethod<unknown, unknown> | StreamMethod<unknown, unknown>;
      const label = method.path.split("/").pop() ?? name;
      implementation[name] = method.responseStream
        ? (traced(method.path, this.streaming(label, handler as StreamMethod<unknown, unknown>)) as grpc.handleServerStreamingCall<unknown, unknown>)
        : traced(method.path, this.unary(label, handler as UnaryMethod<unknown, unknown>));
    }
    this.server.addService(definition as unknown as grpc.ServiceDefinition, implementation);
    return this;
  }

  /** Binds `host:port` (port 0 picks one) and returns the bound port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(new Error(`cannot bind gRPC on ${host}:${port}`, { cause: error })) : resolve(bound),
      );
    });
  }

  /** Stops accepting calls and lets running ones finish, up to `graceMs`, then cancels the rest. */
  close(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private unary(label: string, method: UnaryMethod<unknown, unknown>): TracedHandler<grpc.ServerUnaryCall<unknown, unknown>, grpc.sendUnaryData<unknown>> {
    const duration = this.duration.labels({ method: label });
    const ok = this.handled.labels({ method: label, code: "OK" });
    return (call, callback, span) => {
      const started = performance.now();
      let ctx: Context | undefined;
      call.on("cancelled", () => ctx?.cancel());
      return this.context(call.metadata, method.access, label, call.getPeer())
        .then((context) => {
          ctx = context;
          return method.handle(call.request, context).then(
            (response) => {
              ok.inc();
              callback(null, response);
            },
            (error: unknown) => callback(this.failure(label, error, context.log, span)),
          );
        })
        .catch((error: unknown) => callback(this.failure(label, error, this.deps.log, span)))
        .finally(() => duration.observe((performance.now() - started) / 1000));
    };
  }

  private streaming(label: string, method: StreamMethod<unknown, unknown>): TracedHandler<grpc.ServerWritableStream<unknown, unknown>, unknown> {
    const duration = this.duration.labels({ method: label });
    const ok = this.handled.labels({ method: label, code: "OK" });
    return (call, _callback, span) => {
      const started = performance.now();
      let ctx: Context | undefined;
      let cancelled = false;
      call.on("cancelled", () => {
        cancelled = true;
        ctx?.cancel();
      });
      const send = (message: unknown) =>
        new Promise<void>((resolve, reject) => {
          if (cancelled) return reject(new AppError("dependency_unavailable", "call cancelled"));
          if (call.write(message)) resolve();
          else call.once("drain", () => resolve());
        });
      return this.context(call.metadata, method.access, label, call.getPeer())
        .then((context) => {
          ctx = context;
          if (cancelled) context.cancel();
          return method.stream(call.request, context, send);
        })
        .then(() => {
          ok.inc();
          call.end();
        })
        .catch((error: unknown) => {
          if (!cancelled) call.emit("error", this.failure(label, error, ctx?.log ?? this.deps.log, span));
        })
        .finally(() => duration.observe((performance.now() - started) / 1000));
    };
  }

  private async context(metadata: grpc.Metadata, access: Access, label: string, peer: string): Promise<Context> {
    const requestId = requestIdOf(metadata.get("x-request-id")[0]) ?? randomUUID();
    const principal = await this.authenticate(metadata);
    if (!admits(access, principal)) {
      throw principal.kind === "anonymous" ? unauthorized("missing credentials") : forbidden(`not allowed for this caller`);
    }
    return new Context(principal, requestId, this.deps.log, label, peerAddress(peer));
  }

  private async authenticate(metadata: grpc.Metadata): Promise<Principal> {
    const internal = metadata.get("x-internal-token")[0];
    if (typeof internal === "string") {
      // Known by digest: comparing digests reveals nothing about a secret.
      const caller = this.deps.callers.get(credentialDigest(internal));
      if (!caller) throw unauthorized("invalid internal credential");
      return { kind: "internal", caller };
    }
    const header = metadata.get("authorization")[0];
    if (typeof header !== "string") return { kind: "anonymous" };
    const token = bearerToken(header);
    if (!token) throw unauthorized("malformed authorization metadata");
    const claims = await this.deps.verifyAccessToken(token);
    return { kind: "user", userId: claims.userId, role: claims.role, token };
  }

  private failure(label: string, error: unknown, log: Logger, span: Span | undefined): Partial<grpc.StatusObject> {
    const appError = classifyError(error);
    const { grpc: code } = errorCatalogue[appError.code];
    this.handled.inc({ method: label, code: grpc.status[code] ?? String(code) });
    span?.setAttribute("rpc.grpc.status_code", code);
    if (appError.code === "internal" || appError.code === "dependency_unavailable") {
      log.error({ err: error }, "call failed");
      if (span) failSpan(span, error);
    }
    const metadata = new grpc.Metadata();
    metadata.set("tb-error-code", appError.code);
    if (appError.details) metadata.set("tb-error-details", JSON.stringify(appError.details));
    return { code, details: appError.message, metadata };
  }
}

/** A method's handler, told the call's server span when tracing; returns when the call is done. */
type TracedHandler<Call, Callback> = (call: Call, callback: Callback, span?: Span) => Promise<unknown>;

/**
 * The gRPC handler of `serve`: within a server span that continues the
 * caller's trace (W3C headers in the metadata) when tracing, else `serve` as is.
 */
function traced<Call extends { metadata: grpc.Metadata }, Callback>(path: string, serve: TracedHandler<Call, Callback>): (call: Call, callback: Callback) => void {
  const name = path.replace(/^\//, "");
  const [service = "", method = ""] = name.split("/");
  const attributes = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
  return (call, callback) => {
    if (!isTracing()) return void serve(call, callback);
    const parent = remoteContext((key) => {
      const value = call.metadata.get(key)[0];
      return typeof value === "string" ? value : undefined;
    });
    void inSpan(name, SpanKind.SERVER, attributes, (span) => serve(call, callback, span), parent);
  };
}

/**
 * A call's context. The child logger and the cancellation signal are made on
 * first use: most calls need neither, and both cost on every call otherwise.
 */
class Context implements CallContext {
  private logger: Logger | undefined;
  private controller: AbortController | undefined;
  private cancelled = false;

  constructor(
    readonly principal: Principal,
    readonly requestId: string,
    private readonly baseLog: Logger,
    private readonly method: string,
    readonly peerAddress: string,
  ) {}

  get log(): Logger {
    return (this.logger ??= this.baseLog.child({ request_id: this.requestId, method: this.method }));
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.cancelled) this.controller.abort();
    return this.controller.signal;
  }

  cancel(): void {
    this.cancelled = true;
    this.controller?.abort();
  }
}

/** The address of a gRPC peer ("ipv4:10.0.0.5:41234", "ipv6:[::1]:41234" → "10.0.0.5", "::1"). */
export function peerAddress(peer: string): string {
  const address = peer.replace(/^(ipv4|ipv6|unix):/, "");
  const bracketed = /^\[([^\]]+)\]/.exec(address);
  if (bracketed) return bracketed[1]!;
  const lastColon = address.lastIndexOf(":");
  return lastColon > 0 && address.indexOf(":") === lastColon ? address.slice(0, lastColon) : address;
}
