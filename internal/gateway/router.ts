import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { z } from "zod";
import { Counter, Histogram, type Registry } from "prom-client";
import { bearerToken, type AccessClaims } from "../platform/access-tokens.js";
import { AppError, errorBody, forbidden, retryAfterOf, unauthorized } from "../platform/errors.js";
import { classifyError } from "../platform/failures.js";
import { requestIdOf, type Logger } from "../platform/logger.js";
import { inSpan, isTracing, SpanKind, SpanStatusCode, type Span } from "../platform/tracing.js";
import { parseInput } from "../platform/validate.js";
import { field } from "../../api/contracts/fields.js";

export type Method = "get" | "post" | "put" | "delete";
export type RouteAuth = "public" | "user" | "admin";

/** The authenticated caller of a route. */
export interface Caller extends AccessClaims {
  token: string;
}

interface BaseContext<B, Q> {
  requestId: string;
  log: Logger;
  ip: string;
  params: Record<string, string>;
  /** The request headers the route declared (lower-case names; "" when absent). */
  headers: Record<string, string>;
  query: Q;
  body: B;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export type RouteContext<A extends RouteAuth, B, Q> = BaseContext<B, Q> &
  (A extends "public" ? { caller: Caller | undefined } : { caller: Caller });

/** What a route answers: JSON, raw bytes, or a byte stream (downloads). */
export type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; raw: string | Buffer; contentType: string; headers?: Record<string, string> }
  | { status: number; stream: AsyncIterable<Buffer>; contentType: string; headers?: Record<string, string> }
  | { status: 204 | 304; headers?: Record<string, string> };

/**
 * What the OpenAPI document says of a route beyond its method, path, auth,
 * body and query (which it reads from the route itself).
 */
export interface RouteDoc {
  operationId: string;
  summary: string;
  /** Who may call it and what else a caller should know. */
  description?: string;
  tag: string;
  /**
   * The answer on success: its status, description and body (a contract schema, or a
   * content type for files, comma-separated when there are several, with the schema of
   * those that have one in `contentSchemas`, e.g. a JSON file's; the others are text).
   */
  ok: { status: number; description: string; schema?: z.ZodType; contentType?: string; contentSchemas?: Record<string, z.ZodType> };
  /** Error statuses beyond what the route's shape implies (400 for input, 401/403/429/503 when authenticated, 404 for a path id, 413/415 for a body, 500 always). */
  errors?: number[];
}

export interface Route<A extends RouteAuth = RouteAuth, B = unknown, Q = unknown> {
  method: Method;
  /** OpenAPI-style path, e.g. /workspaces/{workspace_id}; `_id` parameters must be UUIDs. */
  path: string;
  auth: A;
  /** The request body's contract (a schema registered with an id). */
  body?: z.ZodType<B>;
  /** The query's contract: an object schema; a parameter given more than once arrives as an array. */
  query?: z.ZodType<Q>;
  /** Request headers the handler reads (lower case), beyond what the router reads itself. */
  headers?: string[];
  doc: RouteDoc;
  handle(ctx: RouteContext<A, B, Q>): Promise<Reply>;
}

/** The names of a route path's parameters, in order: `/tasks/{task_id}` → `["task_id"]`. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]!);
}

/** Declares a route with its types inferred. */
export function route<A extends RouteAuth, B = undefined, Q = Record<string, never>>(definition: Route<A, B, Q>): Route {
  return definition as unknown as Route;
}

export const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({ status, json: body, headers });
export const noContent = (): Reply => ({ status: 204 });

export interface RouterDeps {
  log: Logger;
  registry: Registry;
  verify: (token: string) => Promise<AccessClaims>;
  maxBodyBytes: number;
  trustProxy: boolean;
  accessLog: boolean;
  /** Origins allowed cross-origin access (exact `scheme://host[:port]`); empty: none. */
  corsOrigins: ReadonlySet<string>;
  /** Counts an authenticated request of the user; throws rate_limited beyond their limit. */
  limitUser: (userId: string) => Promise<void>;
}

/** Request headers a cross-origin page may send, and response headers it may read. */
const CORS_ALLOW_HEADERS = "authorization, content-type, x-request-id, last-event-id";
const CORS_EXPOSE_HEADERS = "x-request-id, retry-after, content-disposition";

/** Headers on every answer: no content sniffing, no referrer leaks, no framing, and HSTS once served over TLS. */
const SECURITY_HEADERS: [string, string][] = [
  ["x-content-type-options", "nosniff"],
  ["referrer-policy", "no-referrer"],
  ["x-frame-options", "DENY"],
  ["strict-transport-security", "max-age=31536000"],
];

export function writeSecurityHeaders(res: HttpResponse): void {
  for (const [name, value] of SECURITY_HEADERS) res.writeHeader(name, value);
}

const decoder = new TextDecoder();

/**
 * Serves a table of routes on a uWebSockets.js app. For each request, in this
 * order: path parameters (400), token (401, 403 for admin routes), the user's
 * rate limit (429), JSON body (415, 413, 400) and query (400) validation, then
 * the handler; any failure becomes the API's error body, never a stack trace.
 */
export class Router {
  readonly routes: Route[] = [];
  private readonly requests: Counter<"route" | "method" | "status">;
  private readonly duration: Histogram<"route" | "method">;

  constructor(private readonly deps: RouterDeps) {
    this.requests = new Counter({
      name: "taskboard_http_requests_total",
      help: "HTTP requests by route, method and status",
      labelNames: ["route", "method", "status"],
      registers: [deps.registry],
    });
    this.duration = new Histogram({
      name: "taskboard_http_request_duration_seconds",
      help: "HTTP request duration by route",
      labelNames: ["route", "method"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [deps.registry],
    });
  }

  add(...routes: Route[]): this {
    this.routes.push(...routes);
    return this;
  }

  /** Registers every route, and a JSON 404 for anything else. */
  mount(app: TemplatedApp): void {
    for (const r of this.routes) {
      const names = pathParameters(r.path);
      const compiled: CompiledRoute = {
        route: r,
        params: names.map((name) => ({ name, schema: name.endsWith("_id") ? field.id(name) : undefined })),
        duration: this.duration.labels({ route: r.path, method: r.method }),
        spanName: `${r.method.toUpperCase()} ${r.path}`,
        byStatus: new Map(),
      };
      const pattern = r.path.replace(/\{([a-z_]+)\}/g, ":$1");
      const handler = (res: HttpResponse, req: HttpRequest) => this.serve(compiled, res, req);
      if (r.method === "get") app.get(pattern, handler);
      else if (r.method === "post") app.post(pattern, handler);
      else if (r.method === "put") app.put(pattern, handler);
      else app.del(pattern, handler);
    }
    app.any("/*", (res, req) => {
      const method = req.getCaseSensitiveMethod();
      const url = req.getUrl();
      const cors = this.corsHeaders(req.getHeader("origin"));
      if (method === "OPTIONS") return this.preflight(res, cors, req.getHeader("access-control-request-method"));
      this.send(res, new RequestState(), "", { status: 404, json: errorBody("not_found", `no route for ${method} ${url}`), headers: cors });
    });
  }

  /** CORS headers for a request from `origin` (CORS_ORIGINS); none for other origins or same-origin requests. */
  private corsHeaders(origin: string): Record<string, string> | undefined {
    if (!origin || !this.deps.corsOrigins.has(origin)) return undefined;
    return { "access-control-allow-origin": origin, "access-control-expose-headers": CORS_EXPOSE_HEADERS, vary: "Origin" };
  }

  /**
   * Answers a CORS preflight (OPTIONS on any path): 204, with the allowed methods and
   * headers for a listed origin, without them (the browser then refuses) for others.
   */
  private preflight(res: HttpResponse, cors: Record<string, string> | undefined, requestedMethod: string): void {
    const headers: Record<string, string> = { vary: "Origin" };
    if (cors && requestedMethod) {
      Object.assign(headers, {
        "access-control-allow-origin": cors["access-control-allow-origin"]!,
        "access-control-allow-methods": "GET, POST, PUT, DELETE",
        "access-control-allow-headers": CORS_ALLOW_HEADERS,
        "access-control-max-age": "600",
      });
    }
    this.send(res, new RequestState(), "", { status: 204, headers });
  }

  private serve(compiled: CompiledRoute, res: HttpResponse, req: HttpRequest): void {
    const r = compiled.route;
    const started = performance.now();
    const state = new RequestState();
    res.onAborted(() => state.abort());
    // uWS reuses `req` after this function returns: copy what we need now.
    const params: Record<string, string> = {};
    compiled.params.forEach((param, i) => (params[param.name] = req.getParameter(i) ?? ""));
    const headers: Record<string, string> = {};
    for (const name of r.headers ?? []) headers[name] = req.getHeader(name);
    const query = req.getQuery() ?? "";
    const authorization = req.getHeader("authorization");
    const contentType = req.getHeader("content-type");
    const contentLength = req.getHeader("content-length");
    const incomingId = req.getHeader("x-request-id");
    const cors = this.corsHeaders(req.getHeader("origin"));
    const forwardedFor = this.deps.trustProxy ? req.getHeader("x-forwarded-for") : "";
    const ip = forwardedFor ? forwardedFor.split(",")[0]!.trim() : decoder.decode(res.getRemoteAddressAsText());
    const requestId = requestIdOf(incomingId) ?? randomUUID();
    const baseLog = this.deps.log;
    let log: Logger | undefined;
    const requestLog = () => (log ??= baseLog.child({ request_id: requestId }));
    const body = r.body ? this.readBody(res, contentLength) : undefined;
    // Read from now on, as uWS requires; awaited below only once path and token pass. A
    // failure (413) before then must not become an unhandled rejection.
    body?.catch(() => undefined);

    const run = async (): Promise<Reply> => {
      for (const param of compiled.params) if (param.schema) parseInput(param.schema, params[param.name]);
      const caller = await this.authenticate(r.auth, authorization);
      if (caller && r.auth !== "public") await this.deps.limitUser(caller.userId);
      let parsedBody: unknown;
      if (r.body && body) {
        if (!/^application\/json\s*(;|$)/i.test(contentType)) {
          throw new AppError("unsupported_media_type", "Content-Type must be application/json");
        }
        parsedBody = parseInput(r.body, refuseNul(parseJson(await body), "request body"));
      }
      const parsedQuery = r.query ? parseInput(r.query, refuseNul(queryObject(query), "query")) : {};
      return r.handle({
        requestId,
        get log() {
          return requestLog();
        },
        ip,
        params,
        headers,
        query: parsedQuery,
        body: parsedBody,
        caller,
        get signal() {
          return state.signal;
        },
      } as RouteContext<RouteAuth, unknown, unknown>);
    };

    let status = 0;
    const respond = (span?: Span) =>
      run()
        .catch((error: unknown) => this.failure(error, requestLog()))
        .then((reply) => {
          status = reply.status;
          if (span) {
            span.setAttribute("http.response.status_code", status);
            if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          }
          return this.send(res, state, requestId, cors ? { ...reply, headers: { ...reply.headers, ...cors } } : reply);
        })
        .catch((error: unknown) => requestLog().error({ err: error }, "response failed"))
        .finally(() => {
          let requests = compiled.byStatus.get(status);
          if (!requests) {
            requests = this.requests.labels({ route: r.path, method: r.method, status: String(status) });
            compiled.byStatus.set(status, requests);
          }
          requests.inc();
          const seconds = (performance.now() - started) / 1000;
          compiled.duration.observe(seconds);
          if (this.deps.accessLog) requestLog().info({ method: r.method, route: r.path, status, ms: seconds * 1000 }, "request");
        });
    // A trace starts here: a client's traceparent is not trusted (the edge of the system).
    if (isTracing()) void inSpan(compiled.spanName, SpanKind.SERVER, { "http.request.method": r.method.toUpperCase(), "http.route": r.path, "taskboard.request_id": requestId }, respond);
    else void respond();
  }

  private async authenticate(auth: RouteAuth, header: string): Promise<Caller | undefined> {
    if (auth === "public") {
      // A public route may answer more to a known caller; a bad token is simply no caller.
      const token = bearerToken(header);
      return token ? this.deps.verify(token).then((claims) => ({ ...claims, token }), () => undefined) : undefined;
    }
    const token = bearerToken(header);
    if (!token) throw unauthorized(header ? "malformed Authorization header" : "missing bearer token");
    const claims = await this.deps.verify(token);
    if (auth === "admin" && claims.role !== "admin") throw forbidden("admin only");
    return { ...claims, token };
  }

  /** Reads the body (starting now, as uWS requires), failing with 413 past the limit. */
  private readBody(res: HttpResponse, contentLength: string): Promise<Buffer> {
    const limit = this.deps.maxBodyBytes;
    return new Promise((resolve, reject) => {
      const tooLarge = () => new AppError("payload_too_large", `request body exceeds ${limit} bytes`);
      if (contentLength && Number(contentLength) > limit) {
        reject(tooLarge());
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      res.onData((chunk, isLast) => {
        if (done) return;
        size += chunk.byteLength;
        if (size > limit) {
          done = true;
          reject(tooLarge());
          return;
        }
        chunks.push(Buffer.from(chunk.slice(0)));
        if (isLast) {
          done = true;
          resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
        }
      });
    });
  }

  private failure(error: unknown, log: Logger): Reply {
    const appError = classifyError(error);
    if (appError.code === "internal") log.error({ err: error }, "request failed");
    else if (appError.code === "dependency_unavailable") log.warn({ err: error }, "dependency unavailable");
    const headers: Record<string, string> = {};
    const retryAfter = retryAfterOf(appError);
    if (retryAfter) headers["retry-after"] = retryAfter;
    return { status: appError.httpStatus, json: errorBody(appError.code, appError.message, appError.details), headers };
  }

  private send(res: HttpResponse, state: RequestState, requestId: string, reply: Reply): Promise<void> | void {
    if (state.aborted) return;
    if ("stream" in reply) return streamReply(res, state, requestId, reply);
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      if (requestId) res.writeHeader("x-request-id", requestId);
      writeSecurityHeaders(res);
      for (const [name, value] of Object.entries(reply.headers ?? {})) res.writeHeader(name, value);
      if ("json" in reply) {
        res.writeHeader("content-type", "application/json; charset=utf-8");
        res.writeHeader("cache-control", "no-store");
        res.end(JSON.stringify(reply.json));
      } else if ("raw" in reply) {
        res.writeHeader("content-type", reply.contentType);
        res.end(reply.raw);
      } else {
        res.endWithoutBody();
      }
    });
  }
}

interface CompiledRoute {
  route: Route;
  params: { name: string; schema: z.ZodType | undefined }[];
  duration: ReturnType<Histogram<"route" | "method">["labels"]>;
  byStatus: Map<number, ReturnType<Counter<"route" | "method" | "status">["labels"]>>;
  /** "POST /workspaces/{workspace_id}/tasks": the route's server span. */
  spanName: string;
}

/** Whether the client went away; the abort signal is made only for routes that ask for it. */
class RequestState {
  aborted = false;
  private controller: AbortController | undefined;

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.aborted) this.controller.abort();
    return this.controller.signal;
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ""}`;
}

/** How deep JSON may nest: no field of the API goes near it. */
const MAX_DEPTH = 32;

/**
 * Refuses NUL characters anywhere in a value (strings and keys, at any depth):
 * Postgres text cannot hold them, and no field of the API needs one; and
 * refuses values nested deeper than MAX_DEPTH (walked without recursion, so a
 * hostile body cannot exhaust the stack).
 */
function refuseNul<T>(value: T, where: string): T {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [v, depth] = pending.pop()!;
    if (typeof v === "string") {
      if (v.includes("\u0000")) throw new AppError("validation_failed", `${where} contains a NUL character`);
    } else if (typeof v === "object" && v !== null) {
      if (depth >= MAX_DEPTH) throw new AppError("validation_failed", `${where} is nested more than ${MAX_DEPTH} levels deep`);
      if (Array.isArray(v)) {
        for (const item of v) pending.push([item, depth + 1]);
      } else {
        for (const [key, item] of Object.entries(v)) pending.push([key, depth + 1], [item, depth + 1]);
      }
    }
  }
  return value;
}

/** A query string as an object: a name given once is a string, given more often an array of its values. */
export function queryObject(query: string): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = Object.create(null); // "__proto__" is a name like any other
  for (const [name, value] of new URLSearchParams(query)) {
    const seen = result[name];
    if (seen === undefined) result[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else result[name] = [seen, value];
  }
  return result;
}

function parseJson(raw: Buffer | undefined): unknown {
  if (!raw || raw.length === 0) throw new AppError("invalid_json", "request body is empty; expected a JSON object");
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new AppError("invalid_json", "request body is not valid JSON");
  }
}

/** Writes a chunked body with backpressure: waits for onWritable when uWS buffers. */
async function streamReply(
  res: HttpResponse,
  state: RequestState,
  requestId: string,
  reply: Extract<Reply, { stream: AsyncIterable<Buffer> }>,
): Promise<void> {
  const signal = state.signal;
  res.cork(() => {
    res.writeStatus(statusLine(reply.status));
    res.writeHeader("x-request-id", requestId);
    res.writeHeader("content-type", reply.contentType);
    writeSecurityHeaders(res);
    for (const [name, value] of Object.entries(reply.headers ?? {})) res.writeHeader(name, value);
  });
  let writable: (() => void) | undefined;
  res.onWritable(() => {
    writable?.();
    return true;
  });
  try {
    for await (const chunk of reply.stream) {
      if (state.aborted || signal?.aborted) return;
      let ok = false;
      res.cork(() => (ok = res.write(chunk)));
      if (!ok) {
        await new Promise<void>((resolve) => {
          writable = resolve;
          signal?.addEventListener("abort", () => resolve(), { once: true });
        });
        writable = undefined;
      }
    }
  } catch (error) {
    // The status line is out: cut the connection, so the client sees a broken transfer, not a short file.
    if (!state.aborted) {
      state.aborted = true;
      res.close();
    }
    throw error;
  }
  if (!state.aborted) res.cork(() => res.end());
}
