import { CloseCode } from "./frames.js";

export type Transport = "websocket" | "sse";

/**
 * What a room needs of a client's transport: a uWS WebSocket, or an SSE
 * stream (sse.ts) that behaves like one.
 */
export interface ClientSocket {
  /** Queues a message; 2 when it was dropped (the client has a gap then and must go). */
  send(message: string | Buffer): number;
  /** Bytes queued for the client and not yet taken by the network. */
  getBufferedAmount(): number;
  /** Joins a room's live topic: from now on its events arrive without the room sending them one by one. */
  subscribe(topic: string): unknown;
  /** Ends the connection with a WebSocket close code and reason. */
  end(code: number, reason: string): void;
  /** Runs `send`s as one write. */
  cork(callback: () => void): unknown;
}

/**
 * One client socket (the uWS user data). `position` is the sequence of the last
 * event the client has; `phase` tracks its way to the live topic:
 * opening → catching-up (reading the stream) → waiting (ahead of the room) → live.
 */
export interface Connection {
  readonly id: string;
  readonly transport: Transport;
  readonly workspaceId: string;
  readonly userId: string;
  readonly name: string;
  readonly since: number | undefined;
  /** The history `since` belongs to, as the client last saw it in `connected`. */
  readonly epoch: string | undefined;
  /** Access token expiry (epoch ms); a fresh token via {"type":"auth"} moves it. */
  expiresAt: number;
  position: number;
  phase: "opening" | "catching-up" | "waiting" | "live" | "closed";
  socket: ClientSocket | undefined;
  connectedAt: number;
  /** Flood control: tokens left, last refill, consecutive refusals. */
  tokens: number;
  refilledAt: number;
  refusals: number;
  /** Resolves a catch-up waiting for the socket to drain. */
  onDrain: (() => void) | undefined;
}

export function newConnection(fields: {
  id: string;
  transport: Transport;
  workspaceId: string;
  userId: string;
  name: string;
  since: number | undefined;
  epoch: string | undefined;
  expiresAt: number;
  burst: number;
}): Connection {
  return {
    ...fields,
    position: 0,
    phase: "opening",
    socket: undefined,
    connectedAt: Date.now(),
    tokens: fields.burst,
    refilledAt: Date.now(),
    refusals: 0,
    onDrain: undefined,
  };
}

/** Ends a socket with a close code, once; safe after it closed. */
export function endConnection(conn: Connection, code: number, reason: string): void {
  if (conn.phase === "closed" || !conn.socket) return;
  const socket = conn.socket;
  conn.phase = "closed";
  socket.end(code, reason);
}

/**
 * Closes a client that cannot keep up with 1013. `deferred` when called from
 * inside a uWS callback (the dropped handler): ending a socket there, even in a
 * microtask, corrupts uWS's topic iteration, so it waits for a timer.
 */
export function endSlowConnection(conn: Connection, deferred: boolean): boolean {
  const socket = conn.socket;
  if (conn.phase === "closed" || !socket) return false;
  conn.phase = "closed";
  const end = () => {
    if (conn.socket === socket) socket.end(CloseCode.slowConsumer, "slow consumer");
  };
  if (deferred) setTimeout(end, 0);
  else end();
  return true;
}
