import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
} from "@opentelemetry/api";
import { headers as natsHeaders, type MsgHdrs } from "nats";
import { ConfigError } from "./config.js";
import type { Sql } from "./postgres.js";

/**
 * OpenTelemetry tracing (README "Tracing"): off unless an OTLP endpoint is
 * configured with the standard variables; then every process exports its spans
 * over OTLP/HTTP and carries W3C trace context in gRPC metadata, in NATS headers
 * and through the outbox, so one trace runs from a request to every effect.
 *
 * Off, nothing of the SDK is loaded and every helper here returns at its first
 * line (`enabled` is false): a request pays one boolean test per would-be span.
 */
let enabled = false;

export const tracer = trace.getTracer("taskboard");

export { SpanKind, SpanStatusCode, type Span, type Context };

/** What the OTEL_* variables ask for; undefined when tracing is off. */
export function tracingSettings(env: NodeJS.ProcessEnv): { protocol: "http/protobuf" | "http/json" } | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter === "none") return undefined;
  if (exporter && exporter !== "otlp") throw new ConfigError(`OTEL_TRACES_EXPORTER: only "otlp" or "none" are supported, not "${exporter}"`);
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf").trim();
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    throw new ConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" or "http/json" are supported, not "${protocol}"`);
  }
  return { protocol };
}

/**
 * Starts the SDK when the environment asks for it: a tracer provider for
 * `service` (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override), the
 * sampler of OTEL_TRACES_SAMPLER (default: parent-based, always on), a batch
 * processor (OTEL_BSP_*), the OTLP exporter (endpoint, headers, timeout and
 * compression from OTEL_EXPORTER_OTLP_*). Returns the flush-and-stop step for
 * shutdown, or undefined when tracing is off.
 */
export async function startTracing(service: string, env: NodeJS.ProcessEnv): Promise<(() => Promise<void>) | undefined> {
  const settings = tracingSettings(env);
  if (!settings) return undefined;
  const [{ NodeTracerProvider, BatchSpanProcessor }, { resourceFromAttributes, detectResources, envDetector }, exporterModule] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/resources"),
    settings.protocol === "http/json" ? import("@opentelemetry/exporter-trace-otlp-http") : import("@opentelemetry/exporter-trace-otlp-proto"),
  ]);
  const resource = resourceFromAttributes({ "service.name": service, "service.namespace": "taskboard" }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new exporterModule.OTLPTraceExporter())],
  });
  // The AsyncLocalStorage context manager and the W3C trace-context and baggage propagators.
  provider.register();
  enabled = true;
  return async () => {
    enabled = false;
    await provider.shutdown();
  };
}

export function isTracing(): boolean {
  return enabled;
}

/**
 * Runs `fn` in a new span, active for everything it calls, ended when it
 * settles (failed with the error if it throws). `parent` is the current
 * context unless given (a context taken from a message). Off: just `fn()`.
 */
export function inSpan<T>(
  name: string,
  kind: SpanKind,
  attributes: Attributes,
  fn: (span?: Span) => Promise<T>,
  parent?: Context,
  links?: Link[],
): Promise<T> {
  if (!enabled) return fn();
  return tracer.startActiveSpan(name, { kind, attributes, ...(links ? { links } : {}) }, parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A link to the current span (for a span of another trace that it serves), if there is one. */
export function linkToCurrent(): Link[] | undefined {
  const span = enabled ? trace.getSpan(context.active()) : undefined;
  return span ? [{ context: span.spanContext() }] : undefined;
}

/** Marks a span failed by `error` (recorded as an exception event). */
export function failSpan(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/**
 * The current trace context as W3C headers (`traceparent`, `tracestate`), for
 * an outgoing call or message; undefined when off or outside any trace.
 */
export function traceHeaders(from: Context = context.active()): Record<string, string> | undefined {
  if (!enabled || !trace.getSpan(from)) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(from, carrier);
  return carrier;
}

/** NATS headers carrying `values` (a stored carrier), or else the current trace context; undefined when there is none. */
export function traceMessageHeaders(values: Record<string, string> | undefined = traceHeaders()): MsgHdrs | undefined {
  if (!values) return undefined;
  const headers = natsHeaders();
  for (const [key, value] of Object.entries(values)) headers.set(key, value);
  return headers;
}

/** The trace context a NATS message's headers carry (the root context when off or when they carry none). */
export function messageContext(headers: MsgHdrs | undefined): Context {
  return remoteContext((key) => headers?.get(key) || undefined);
}

/**
 * A trace context as a column beside a row written now and acted on later (outbox rows,
 * webhook deliveries): its headers (the current ones unless given) as JSON; null when none.
 */
export function storableTrace(values: Record<string, string> | undefined = traceHeaders()): string | null {
  return values ? JSON.stringify(values) : null;
}

/** A trace context stored by storableTrace: its headers and the remote context they carry; undefined for none. */
export function storedTrace(text: string | null | undefined): { headers: Record<string, string>; context: Context } | undefined {
  if (!text) return undefined;
  const headers = JSON.parse(text) as Record<string, string>;
  return { headers, context: remoteContext((key) => headers[key]) };
}

/** A header source: gRPC metadata, NATS headers or a stored carrier, read by name. */
export type HeaderReader = (name: string) => string | undefined;

const readerGetter: TextMapGetter<HeaderReader> = {
  get: (read, key) => read(key),
  keys: () => ["traceparent", "tracestate"],
};

/** The remote context the headers carry (the root context when off or when they carry none). */
export function remoteContext(read: HeaderReader): Context {
  if (!enabled) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, read, readerGetter);
}

/**
 * postgres.js with a client span per executed query of a traced operation
 * (queries outside any trace, like pollers', make none). postgres.js has no
 * hooks, so the pool is wrapped: a tagged query (also in transactions and
 * savepoints) or `unsafe` gets its span when postgres.js hands it to a
 * connection (Query.handle), ended when it settles. Off: the pool itself.
 */
export function tracedSql(sql: Sql): Sql {
  if (!enabled) return sql;
  return wrapSql(sql);
}

interface QueryLike {
  executed: boolean;
  handle(): unknown;
}

function wrapSql<S extends (...args: any[]) => unknown>(sql: S): S {
  return new Proxy(sql, {
    apply(target, thisArg, args: unknown[]) {
      const result = Reflect.apply(target, thisArg, args);
      const strings = args[0] as TemplateStringsArray | undefined;
      return Array.isArray(strings) && "raw" in strings ? traceQuery(result as QueryLike, strings.join("$?")) : result;
    },
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (property === "begin" || property === "savepoint") {
        // begin([options,] fn) / savepoint([name,] fn): the scoped sql handed to fn is wrapped too.
        return (...args: unknown[]) => {
          const scoped = args[args.length - 1] as (tx: S) => unknown;
          args[args.length - 1] = (tx: S) => scoped(wrapSql(tx));
          return fn.apply(target, args);
        };
      }
      if (property === "unsafe") return (...args: unknown[]) => traceQuery(fn.apply(target, args) as QueryLike, String(args[0]));
      return value;
    },
  });
}

function traceQuery(query: QueryLike, text: string): QueryLike {
  const parent = context.active();
  if (!trace.getSpan(parent)) return query;
  const handle = query.handle;
  query.handle = function (this: QueryLike) {
    if (!this.executed) {
      const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? "QUERY";
      const span = tracer.startSpan(
        operation,
        { kind: SpanKind.CLIENT, attributes: { "db.system.name": "postgresql", "db.operation.name": operation, "db.query.text": text.slice(0, 2_000) } },
        parent,
      );
      // The promise's own `then` (Query's would execute it again); a cursor that never settles leaves its span unexported.
      Promise.prototype.then.call(
        this,
        () => span.end(),
        (error: unknown) => {
          failSpan(span, error);
          span.end();
        },
      );
    }
    return handle.call(this);
  };
  return query;
}
