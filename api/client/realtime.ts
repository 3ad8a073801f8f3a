import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from "./backoff.js";
import { errorFromResponse, RealtimeClosedError, TaskboardError } from "./errors.js";
import type { ConnectedFrame, EventOf, KnownEventType, RealtimeEvent } from "./events.js";
import type { CallOptions, OperationId, OperationInput, OperationResult } from "./operations.gen.js";
import { SseParser } from "./sse.js";
import type { Tokens } from "./tokens.js";
import { joinUrl, queryString, websocketUrl } from "./url.js";

/** Any WebSocket class of the WHATWG shape: the browser's, Node 22's global one, or the `ws` package's. */
export type WebSocketConstructor = new (url: string) => unknown;

/** What the client uses of a socket (the WHATWG WebSocket interface). */
interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;

/** What a subscription needs of its client. */
export interface RealtimeHost {
  readonly baseUrl: string;
  readonly WebSocket: WebSocketConstructor | undefined;
  call<K extends OperationId>(operationId: K, input: OperationInput<K>, options?: CallOptions): Promise<OperationResult<K>>;
  send(url: string, init: RequestInit): Promise<Response>;
  accessToken(): Promise<string | undefined>;
  accessTokenRefreshIn(): number | undefined;
  refresh(): Promise<Tokens>;
}

export type TransportChoice = "auto" | "websocket" | "sse";
export type Transport = "websocket" | "sse";

export interface RealtimeOptions {
  /** Resume after this event seq (the last one the application has seen). */
  since?: number;
  /** The epoch of the `connected` frame that `since` belongs to. */
  epoch?: string;
  /** "auto" (default): WebSocket when a constructor is available and the socket opens; SSE after two failures to open. */
  transport?: TransportChoice;
  /** The WebSocket constructor for this subscription (default: the client's, else the global one). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect policy (defaults: base 250 ms, cap 10 s, reset after 5 s open). */
  backoff?: Partial<BackoffPolicy>;
  /** A socket not open after this long counts as a failure to open (default 15 000 ms). */
  openTimeoutMs?: number;
  /** An SSE stream silent this long (pings come every 15 s) is dropped and reopened (default 45 000 ms). */
  idleTimeoutMs?: number;
}

export type RealtimeState = "connecting" | "open" | "reconnecting" | "closed";

export interface RealtimeStatus {
  state: RealtimeState;
  transport: Transport;
  /** Reconnect attempts since the last stable connection. */
  attempt: number;
  /** `reconnecting`: how long until the next attempt. */
  delayMs?: number;
  /** The close code of the connection that ended (or of the final close). */
  code?: number;
  reason?: string;
  /** What made the connection fail or end, when known. */
  error?: Error;
}

/** `reset`: the events after `since` could not all be delivered; reload state over REST. The stream continues live from `connected.seq`. */
export interface ResetInfo {
  connected: ConnectedFrame;
  /** The since and epoch that were sent. */
  since: number;
  epoch: string | undefined;
}

/** A frame `{"type":"error"}` the server sent in answer to a bad client frame. */
export class RealtimeFrameError extends Error {
  override readonly name = "RealtimeFrameError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RealtimeListeners {
  connected: ConnectedFrame;
  event: RealtimeEvent;
  reset: ResetInfo;
  status: RealtimeStatus;
  error: Error;
  /** The server's answer to ping(). */
  pong: { receivedAt: number };
}

/** How the subscription ended: the final close code and reason (1000 when the application closed it). */
export interface RealtimeEnd {
  code: number | undefined;
  reason: string;
  error?: Error;
}

/** Close codes after which reconnecting cannot help: removed from the workspace, workspace deleted, flooding. */
const FINAL_CODES = new Set([4003, 4004, 1008]);
const TOKEN_EXPIRED = 4001;
/** REST answers to a ticket request that another attempt will not change. */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 422]);

interface Ended {
  opened: boolean;
  /** How long it stayed open, ms. */
  openMs: number;
  code: number | undefined;
  reason: string;
  error?: Error;
  retryAfterMs?: number;
}

type Listener = (value: never) => void;

/**
 * A live subscription to a workspace's events. Before every connect it takes a fresh
 * single-use ticket (`POST /realtime/tickets`), opens `/ws/<workspace>` (or the SSE
 * stream) with `since` = the last seq seen and the last epoch, and reconnects with
 * exponential backoff and full jitter until closed or told to stop (4003, 4004, 1008).
 */
export class RealtimeSubscription {
  /** Resolves once the subscription has ended for good. */
  readonly closed: Promise<RealtimeEnd>;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly policy: BackoffPolicy;
  private readonly choice: TransportChoice;
  private readonly WebSocket: WebSocketConstructor | undefined;
  private current: Transport;
  private lastSeq: number | undefined;
  private lastEpoch: string | undefined;
  /** The since and epoch the current connection sent. */
  private sent: { since: number | undefined; epoch: string | undefined } = { since: undefined, epoch: undefined };
  private attempt = 0;
  private stopped = false;
  private socket: SocketLike | undefined;
  private stream: AbortController | undefined;
  private authTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  /** Aborted by close(): cancels a ticket request in flight. */
  private readonly lifetime = new AbortController();
  private resolveClosed!: (end: RealtimeEnd) => void;

  constructor(
    private readonly host: RealtimeHost,
    readonly workspaceId: string,
    private readonly options: RealtimeOptions = {},
  ) {
    this.policy = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.choice = options.transport ?? "auto";
    this.WebSocket = options.WebSocket ?? host.WebSocket;
    if (this.choice === "websocket" && !this.WebSocket) {
      throw new TypeError("transport websocket needs a WebSocket constructor (options.WebSocket; Node 20 has no global one: use the ws package)");
    }
    this.current = this.choice === "sse" || !this.WebSocket ? "sse" : "websocket";
    this.lastSeq = options.since;
    this.lastEpoch = options.epoch;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    // Started after the caller's synchronous code, so listeners added right after realtime() see everything.
    void Promise.resolve().then(() => this.run());
  }

  /** The transport in use (or about to be). */
  get transport(): Transport {
    return this.current;
  }

  /** Where a later subscription could resume: the last seq seen and its epoch. */
  get position(): { since: number | undefined; epoch: string | undefined } {
    return { since: this.lastSeq, epoch: this.lastEpoch };
  }

  /** Listens to `connected`, `event`, `reset`, `status`, `error`, or to events of one type (e.g. "task.created"). Returns the unsubscribe. */
  on<K extends keyof RealtimeListeners>(name: K, listener: (value: RealtimeListeners[K]) => void): () => void;
  on<T extends KnownEventType>(type: T, listener: (event: EventOf<T>) => void): () => void;
  on(name: string, listener: (value: never) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Sends `{"type":"custom.message","data":…}` (to the room, or to a group's members with `groupId`); WebSocket only. */
  send(data: Record<string, unknown>, options: { groupId?: string } = {}): void {
    const socket = this.socket;
    if (this.current !== "websocket" || !socket || socket.readyState !== OPEN) {
      throw new Error(`cannot send: ${this.current === "sse" ? "SSE is receive-only" : "the WebSocket is not open"}`);
    }
    socket.send(JSON.stringify({ type: "custom.message", ...(options.groupId ? { group_id: options.groupId } : {}), data }));
  }

  /** Sends `{"type":"ping"}`; the server's `{"type":"pong"}` comes to the `pong` listeners (a round trip to the room). WebSocket only. */
  ping(): void {
    const socket = this.socket;
    if (this.current !== "websocket" || !socket || socket.readyState !== OPEN) {
      throw new Error(`cannot ping: ${this.current === "sse" ? "SSE is receive-only" : "the WebSocket is not open"}`);
    }
    socket.send(JSON.stringify({ type: "ping" }));
  }

  /** Ends the subscription (safe to call twice); resolves when it has ended. */
  close(): Promise<RealtimeEnd> {
    if (!this.stopped) this.finish({ code: 1000, reason: "closed by the application" });
    return this.closed;
  }

  private async run(): Promise<void> {
    let failuresToOpen = 0;
    try {
      while (!this.stopped) {
        this.status({ state: "connecting", transport: this.current, attempt: this.attempt });
        let ended: Ended;
        // Only a socket that will not open while the API answers says "no WebSocket here"; an API that does
        // not answer (a restarting gateway) says nothing about the transport.
        let ticketed = false;
        try {
          const ticket = await this.ticket();
          ticketed = true;
          if (this.stopped) return;
          ended = this.current === "websocket" ? await this.openWebSocket(ticket) : await this.openStream(ticket);
        } catch (error) {
          if (this.stopped) return;
          if (error instanceof TaskboardError && FINAL_STATUSES.has(error.status)) {
            this.finish({ code: undefined, reason: `refused: ${error.message}`, error });
            return;
          }
          ended = { opened: false, openMs: 0, code: undefined, reason: "failed", error: asError(error), retryAfterMs: retryAfterMs(error) };
        }
        if (this.stopped) return;
        if (ended.opened) {
          failuresToOpen = 0;
          if (ended.openMs >= this.policy.stableMs) this.attempt = 0;
          if (ended.code !== undefined && FINAL_CODES.has(ended.code)) {
            this.finish({ code: ended.code, reason: ended.reason, error: new RealtimeClosedError(`closed by the server: ${ended.code} ${ended.reason}`, ended.code, ended.reason) });
            return;
          }
          if (ended.code === TOKEN_EXPIRED) {
            try {
              await this.host.refresh();
            } catch (error) {
              if (error instanceof TaskboardError && error.status === 401) {
                this.finish({ code: ended.code, reason: "the session expired and could not be refreshed", error });
                return;
              }
              this.emit("error", asError(error)); // a transient failure: the next ticket request tries again
            }
          }
        } else if (ticketed && this.current === "websocket" && this.choice === "auto" && ++failuresToOpen >= 2) {
          this.current = "sse";
          failuresToOpen = 0;
        }
        if (this.stopped) return;
        const delayMs = Math.max(backoffDelay(this.attempt, this.policy), ended.retryAfterMs ?? 0);
        this.attempt++;
        this.status({
          state: "reconnecting",
          transport: this.current,
          attempt: this.attempt,
          delayMs,
          ...(ended.code === undefined ? {} : { code: ended.code }),
          reason: ended.reason,
          ...(ended.error ? { error: ended.error } : {}),
        });
        await this.sleep(delayMs);
      }
    } catch (error) {
      // A bug of ours (or a listener's): end cleanly and say why rather than leave a silent, dead subscription.
      if (!this.stopped) this.finish({ code: undefined, reason: "internal error", error: asError(error) });
    }
  }

  /** A fresh single-use ticket for the next connect (API.md: 30 s, bound to the user and the workspace). */
  private async ticket(): Promise<string> {
    const { ticket } = await this.host.call("createRealtimeTicket", { body: { workspace_id: this.workspaceId } }, { signal: this.lifetime.signal });
    if (typeof ticket !== "string" || ticket === "") throw new TaskboardError("the ticket answer has no ticket", { status: 201, code: "invalid_response" });
    return ticket;
  }

  /** The resume parameters of the next connect, remembered for reading its `connected` frame. */
  private resume(ticket: string): string {
    this.sent = { since: this.lastSeq, epoch: this.lastSeq === undefined ? undefined : this.lastEpoch };
    return queryString({ ticket, since: this.sent.since, epoch: this.sent.epoch });
  }

  private openWebSocket(ticket: string): Promise<Ended> {
    const location = (globalThis as { location?: { href: string } }).location;
    const url = websocketUrl(this.host.baseUrl, `/ws/${encodeURIComponent(this.workspaceId)}${this.resume(ticket)}`, location);
    return new Promise<Ended>((resolve) => {
      let socket: SocketLike;
      try {
        socket = new this.WebSocket!(url) as SocketLike;
      } catch (error) {
        resolve({ opened: false, openMs: 0, code: undefined, reason: "the WebSocket could not be created", error: asError(error) });
        return;
      }
      this.socket = socket;
      let openedAt: number | undefined;
      const openTimer = setTimeout(() => {
        if (openedAt === undefined) socket.close();
      }, this.options.openTimeoutMs ?? 15_000);
      socket.onopen = () => {
        openedAt = Date.now();
        clearTimeout(openTimer);
        this.scheduleAuth(socket);
      };
      socket.onmessage = (message) => {
        const text = textOf(message.data);
        if (text === undefined) return;
        this.frame(parseJson(text), (error) => this.emit("error", error));
      };
      socket.onerror = () => undefined; // the close that follows says what happened
      socket.onclose = (event) => {
        clearTimeout(openTimer);
        clearTimeout(this.authTimer);
        if (this.socket === socket) this.socket = undefined;
        resolve({
          opened: openedAt !== undefined,
          openMs: openedAt === undefined ? 0 : Date.now() - openedAt,
          code: event.code,
          reason: event.reason || (openedAt === undefined ? "the WebSocket did not open" : "closed"),
        });
      };
    });
  }

  /** Before the access token expires, sends a fresh one on the open socket (`{"type":"auth"}`), so the server does not close it with 4001. */
  private scheduleAuth(socket: SocketLike): void {
    clearTimeout(this.authTimer);
    const inMs = this.host.accessTokenRefreshIn();
    if (inMs === undefined) return;
    this.authTimer = setTimeout(() => {
      this.host.accessToken().then(
        (token) => {
          if (!token || this.socket !== socket || socket.readyState !== OPEN) return;
          socket.send(JSON.stringify({ type: "auth", token }));
          this.scheduleAuth(socket);
        },
        (error: unknown) => this.emit("error", asError(error)), // the server closes with 4001, and the reconnect refreshes
      );
    }, Math.max(inMs, 1_000));
  }

  /** The SSE fallback, read with fetch streaming (EventSource could not send since and epoch on its reconnects). */
  private async openStream(ticket: string): Promise<Ended> {
    const controller = new AbortController();
    this.stream = controller;
    const url = joinUrl(this.host.baseUrl, `/workspaces/${encodeURIComponent(this.workspaceId)}/stream${this.resume(ticket)}`);
    let response: Response;
    try {
      response = await this.host.send(url, { headers: { accept: "text/event-stream" }, signal: controller.signal });
    } catch (error) {
      return { opened: false, openMs: 0, code: undefined, reason: "the stream could not be opened", error: asError(error) };
    }
    if (!response.ok || !response.body) {
      const error = await errorFromResponse(response);
      if (error.status === 403 || error.status === 404 || error.status === 400) throw error;
      return { opened: false, openMs: 0, code: undefined, reason: `the stream was refused: ${error.status}`, error, retryAfterMs: retryAfterMs(error) };
    }
    const openedAt = Date.now();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    let closeFrame: { code?: unknown; reason?: unknown } | undefined;
    let failure: Error | undefined;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const idleMs = this.options.idleTimeoutMs ?? 45_000;
    const watch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), idleMs);
    };
    watch();
    try {
      while (closeFrame === undefined) {
        const { done, value } = await reader.read();
        if (done) break;
        watch();
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          const data = parseJson(message.data);
          if (message.event === "close") closeFrame = (data ?? {}) as { code?: unknown; reason?: unknown };
          else this.frame(data, (error) => this.emit("error", error));
        }
      }
    } catch (error) {
      if (!this.stopped) failure = asError(error); // cut off (or silent too long): reconnect
    } finally {
      clearTimeout(idle);
      if (this.stream === controller) this.stream = undefined;
      controller.abort();
    }
    return {
      opened: true,
      openMs: Date.now() - openedAt,
      code: typeof closeFrame?.code === "number" ? closeFrame.code : 1006,
      reason: typeof closeFrame?.reason === "string" ? closeFrame.reason : failure ? failure.message : "the stream ended",
      ...(failure ? { error: failure } : {}),
    };
  }

  /** One server frame (WebSocket) or message (SSE). */
  private frame(value: unknown, fail: (error: Error) => void): void {
    if (this.stopped) return;
    if (typeof value !== "object" || value === null) return fail(new RealtimeFrameError("invalid_frame", "the server sent a frame that is not a JSON object"));
    const frame = value as { type?: unknown; seq?: unknown; code?: unknown; message?: unknown };
    if (frame.type === "connected") return this.connected(value as ConnectedFrame);
    if (frame.type === "pong") return this.emit("pong", { receivedAt: Date.now() });
    if (frame.type === "error") {
      return fail(new RealtimeFrameError(String(frame.code ?? "error"), String(frame.message ?? "the server refused a frame")));
    }
    if (typeof frame.type !== "string" || typeof frame.seq !== "number") return;
    // After a resume, an event at or before the last seq seen is one the application already has.
    if (this.lastSeq !== undefined && frame.seq <= this.lastSeq) return;
    this.lastSeq = frame.seq;
    const event = value as RealtimeEvent;
    this.emit("event", event);
    this.emit(event.type, event);
  }

  private connected(frame: ConnectedFrame): void {
    const { since, epoch } = this.sent;
    const resumed = since !== undefined;
    if (typeof frame.epoch === "string") this.lastEpoch = frame.epoch;
    // Without a resume, or when it failed, the stream goes on live from the frame's seq.
    if (!resumed || frame.recovered === false) this.lastSeq = frame.seq;
    this.status({ state: "open", transport: this.current, attempt: this.attempt });
    this.emit("connected", frame);
    if (resumed && frame.recovered === false) this.emit("reset", { connected: frame, since, epoch });
  }

  private finish(end: RealtimeEnd): void {
    this.stopped = true;
    clearTimeout(this.authTimer);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      try {
        socket.close(1000, "client closed");
      } catch (error) {
        this.emit("error", asError(error));
      }
    }
    this.stream?.abort();
    this.lifetime.abort();
    this.wake?.();
    this.status({
      state: "closed",
      transport: this.current,
      attempt: this.attempt,
      ...(end.code === undefined ? {} : { code: end.code }),
      reason: end.reason,
      ...(end.error ? { error: end.error } : {}),
    });
    if (end.error) this.emit("error", end.error);
    this.resolveClosed(end);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private status(status: RealtimeStatus): void {
    this.emit("status", status);
  }

  private emit(name: string, value: unknown): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (value: unknown) => void)(value);
      } catch (error) {
        // A listener's own failure must not break the connection; an error listener's failure is rethrown outside.
        if (name === "error") setTimeout(() => { throw error; });
        else this.emit("error", asError(error));
      }
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // reported by frame() as not a JSON object
  }
}

function textOf(data: unknown): string | undefined {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data as ArrayBuffer);
  return undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function retryAfterMs(error: unknown): number | undefined {
  return error instanceof TaskboardError && error.retryAfter !== undefined ? error.retryAfter * 1000 : undefined;
}
