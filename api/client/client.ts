import { errorFromResponse, TaskboardError } from "./errors.js";
import {
  operations,
  Operations,
  type CallOptions,
  type OperationId,
  type OperationInput,
  type OperationResult,
} from "./operations.gen.js";
import { RealtimeSubscription, type RealtimeHost, type RealtimeOptions, type WebSocketConstructor } from "./realtime.js";
import { refreshDueAt, tokenTimes, type Tokens } from "./tokens.js";
import { expandPath, joinUrl, queryString } from "./url.js";

export interface TaskboardClientOptions {
  /** The gateway's address, e.g. "https://taskboard.example.com"; relative ("" or "/api") in a browser. Default "". */
  baseUrl?: string;
  /** Tokens to start with (e.g. persisted from an earlier session). */
  tokens?: Tokens;
  /** Called with every new token pair (login, refresh), and with undefined once they are gone (logout, refresh refused). */
  onTokens?: (tokens: Tokens | undefined) => void;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** The WebSocket constructor for realtime (default: the global one; Node 20 has none: pass `ws`'s, or SSE is used). */
  WebSocket?: WebSocketConstructor;
  /** Refresh the access token at most this many seconds before it expires (default 30; a fifth of its lifetime when shorter). */
  refreshLeadSeconds?: number;
}

/** A low-level request: any method and path of the API, with the client's authentication. */
export interface RequestOptions {
  query?: Record<string, unknown>;
  body?: unknown;
  /** Send the access token (default true); refreshed before expiry and once after a 401. */
  auth?: boolean;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/**
 * The Taskboard API client: one typed method per REST operation (generated from the
 * gateway's routes and the contracts), token handling, and `realtime()` subscriptions.
 */
export class TaskboardClient extends Operations implements RealtimeHost {
  readonly baseUrl: string;
  readonly WebSocket: WebSocketConstructor | undefined;
  private current: Tokens | undefined;
  private refreshing: Promise<Tokens> | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly onTokens: ((tokens: Tokens | undefined) => void) | undefined;
  private readonly refreshLeadSeconds: number;

  constructor(options: TaskboardClientOptions = {}) {
    super();
    this.baseUrl = options.baseUrl ?? "";
    this.current = options.tokens ? { ...options.tokens } : undefined;
    this.onTokens = options.onTokens;
    const fetchImpl = options.fetch ?? (typeof fetch === "function" ? fetch : undefined);
    if (!fetchImpl) throw new TypeError("TaskboardClient needs a fetch implementation (options.fetch)");
    // Called unbound, `window.fetch` throws "Illegal invocation" in browsers.
    this.fetchImpl = options.fetch ? options.fetch : (input, init) => fetchImpl(input, init);
    this.WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.refreshLeadSeconds = options.refreshLeadSeconds ?? 30;
  }

  /** The tokens held now (undefined when logged out). */
  get tokens(): Tokens | undefined {
    return this.current ? { ...this.current } : undefined;
  }

  /** Replaces the tokens (e.g. after a login elsewhere); undefined forgets them. Calls onTokens. */
  setTokens(tokens: Tokens | undefined): void {
    this.current = tokens ? { access_token: tokens.access_token, refresh_token: tokens.refresh_token } : undefined;
    this.onTokens?.(this.tokens);
  }

  /** Calls an operation by its operationId. Login and refresh keep the new tokens; logout forgets them. */
  async call<K extends OperationId>(operationId: K, input: OperationInput<K> = {}, options: CallOptions = {}): Promise<OperationResult<K>> {
    const op = operations[operationId];
    if (!op) throw new TypeError(`unknown operation ${String(operationId)}`);
    const path = expandPath(op.path, input.params as Record<string, string> | undefined);
    const response = await this.request(op.method, path, {
      query: input.query as Record<string, unknown> | undefined,
      body: "body" in op ? input.body : undefined,
      auth: op.auth !== "public",
      signal: options.signal,
      headers: options.headers,
    });
    let result: unknown;
    switch (op.answer as "json" | "none" | "text" | "blob" | "stream") {
      case "json":
        result = await response.json();
        break;
      case "text":
        result = await response.text();
        break;
      case "blob":
        result = await response.blob();
        break;
      case "stream":
        result = response.body;
        break;
      default:
        await response.body?.cancel();
        result = undefined;
    }
    if (operationId === "login" || operationId === "refreshTokens") {
      const pair = result as Tokens;
      this.setTokens({ access_token: pair.access_token, refresh_token: pair.refresh_token });
    } else if (operationId === "logout") {
      this.setTokens(undefined);
    }
    return result as OperationResult<K>;
  }

  /**
   * Sends one request and answers its Response when ok (2xx/3xx); otherwise throws a
   * TaskboardError. With `auth` (default), an access token due for refresh is refreshed
   * first, and a 401 is retried once after a refresh.
   */
  async request(method: string, pathAndQuery: string, init: RequestOptions = {}): Promise<Response> {
    const auth = init.auth ?? true;
    const url = joinUrl(this.baseUrl, pathAndQuery + queryString(init.query));
    const send = (token: string | undefined) => {
      const headers: Record<string, string> = { accept: "application/json", ...init.headers };
      if (token) headers["authorization"] = `Bearer ${token}`;
      let body: string | undefined;
      if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        headers["content-type"] = "application/json";
      }
      return this.send(url, { method, headers, body, signal: init.signal });
    };
    const token = auth ? await this.accessToken() : undefined;
    let response = await send(token);
    if (response.status === 401 && auth && token && this.current?.refresh_token) {
      await response.body?.cancel();
      const fresh = await this.refreshAfterRejection(token);
      response = await send(fresh.access_token);
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  /** The access token, refreshed first when it is about to expire; undefined when logged out. */
  async accessToken(): Promise<string | undefined> {
    const tokens = this.current;
    if (!tokens) return undefined;
    const due = refreshDueAt(tokens.access_token, this.refreshLeadSeconds);
    if (due === undefined || Date.now() < due || !tokens.refresh_token) return tokens.access_token;
    try {
      return (await this.refresh()).access_token;
    } catch (error) {
      // The refresh is early on purpose: while the token still holds, a refresh that got no
      // answer (network, 503) does not fail the call; the next call tries again.
      const { exp } = tokenTimes(tokens.access_token);
      const transient = error instanceof TaskboardError && error.status !== 401 && error.status !== 400;
      if (transient && exp !== undefined && Date.now() < exp * 1000 - 1_000) return tokens.access_token;
      throw error;
    }
  }

  /** Milliseconds until the access token should be refreshed (0 if due now); undefined if unknown or logged out. */
  accessTokenRefreshIn(): number | undefined {
    if (!this.current?.refresh_token) return undefined;
    const due = refreshDueAt(this.current.access_token, this.refreshLeadSeconds);
    return due === undefined ? undefined : Math.max(0, due - Date.now());
  }

  /**
   * Exchanges the refresh token for a new pair (one exchange at a time: concurrent callers
   * share it). A refused refresh (401: spent or revoked) forgets the tokens.
   */
  refresh(): Promise<Tokens> {
    this.refreshing ??= this.exchange().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Creates a realtime subscription to a workspace's events (WebSocket, or SSE as fallback). */
  realtime(workspaceId: string, options: RealtimeOptions = {}): RealtimeSubscription {
    return new RealtimeSubscription(this, workspaceId, options);
  }

  /** fetch, with a failure to get any answer as a TaskboardError (status 0, `network_error`); aborts stay AbortErrors. */
  async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(url, init);
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new TaskboardError(`no answer from ${url}: ${error instanceof Error ? error.message : String(error)}`, {
        status: 0,
        code: "network_error",
        cause: error,
      });
    }
  }

  /** A refresh after a 401 with `rejected`: unless another call already refreshed since. */
  private async refreshAfterRejection(rejected: string): Promise<Tokens> {
    if (this.refreshing) return this.refreshing;
    if (this.current && this.current.access_token !== rejected) return this.current;
    return this.refresh();
  }

  private async exchange(): Promise<Tokens> {
    const refreshToken = this.current?.refresh_token;
    if (!refreshToken) throw new TaskboardError("no refresh token to refresh the session with", { status: 401, code: "unauthorized" });
    const op = operations.refreshTokens;
    const response = await this.send(joinUrl(this.baseUrl, op.path), {
      method: op.method,
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    if (!response.ok) {
      const error = await errorFromResponse(response);
      // Refused for good (spent or revoked), unless the tokens were replaced meanwhile.
      if (error.status === 401 && this.current?.refresh_token === refreshToken) this.setTokens(undefined);
      throw error;
    }
    const pair = (await response.json()) as OperationResult<"refreshTokens">;
    const tokens = { access_token: pair.access_token, refresh_token: pair.refresh_token };
    this.setTokens(tokens);
    return tokens;
  }
}
