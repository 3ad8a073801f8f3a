import WebSocket from "ws";
import { io, type Socket } from "socket.io-client";
import { LatencyHistogram, nowMs } from "./measure.js";

/**
 * A bench client process (forked by bench-ws): holds a share of the
 * connections, counts the bench events each receives and records their
 * publish-to-receive latency. Controlled over IPC.
 */

export type ClientKind = "ws" | "socketio";
export interface Target {
  /** ws: full ws:// URL; socketio: http base URL. */
  url: string;
  room: string;
}
export type Command =
  | { cmd: "open"; kind: ClientKind; targets: Target[]; runId: string; waitForConnected: boolean }
  | { cmd: "measure" }
  | { cmd: "progress" }
  | { cmd: "report" }
  | { cmd: "close" };

interface Conn {
  room: string;
  received: number;
  close(): void;
  closedCode?: number;
}

const conns: Conn[] = [];
let runId = "";
let histogram = new LatencyHistogram();
let measuring = false;

/**
 * Counts one frame if it is a bench event of this run, reading its send time
 * without parsing the whole JSON: `"t":<ms>` in an event's data (published
 * through NATS), or `t=<ms>` in a broadcast's content (sent through REST).
 */
function onFrame(conn: Conn, text: string): void {
  if (!measuring) return;
  const run = text.indexOf(runId);
  if (run === -1) return;
  let at = text.indexOf('"t":', run);
  let start = at + 4;
  if (at === -1) {
    at = text.indexOf(" t=", run);
    start = at + 3;
  }
  if (at === -1) return;
  let end = start;
  while (end < text.length && text[end] !== "," && text[end] !== "}" && text[end] !== '"') end++;
  const sentAt = Number(text.slice(start, end));
  conn.received++;
  histogram.record(nowMs() - sentAt);
}

function openWs(target: Target, waitForConnected: boolean): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target.url, { perMessageDeflate: false });
    const conn: Conn = { room: target.room, received: 0, close: () => socket.terminate() };
    let settled = false;
    socket.on("message", (data) => {
      const text = data.toString();
      if (!settled && (!waitForConnected || text.startsWith('{"type":"connected"'))) {
        settled = true;
        resolve(conn);
      }
      onFrame(conn, text);
    });
    socket.on("open", () => {
      if (!waitForConnected && !settled) {
        settled = true;
        resolve(conn);
      }
    });
    socket.on("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    socket.on("error", (error) => {
      if (!settled) reject(error);
    });
    socket.on("close", (code) => {
      conn.closedCode = code;
      if (!settled) reject(new Error(`closed ${code} before ready`));
    });
  });
}

function openSocketIo(target: Target): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket: Socket = io(target.url, { transports: ["websocket"], query: { room: target.room }, reconnection: false, forceNew: true });
    const conn: Conn = { room: target.room, received: 0, close: () => socket.disconnect() };
    socket.on("e", (text: string) => onFrame(conn, text));
    socket.on("joined", () => resolve(conn));
    socket.on("connect_error", reject);
    socket.on("disconnect", () => (conn.closedCode = 1006));
  });
}

async function open(command: Extract<Command, { cmd: "open" }>) {
  runId = command.runId;
  const started = performance.now();
  const results = await Promise.allSettled(
    command.targets.map((t) => (command.kind === "ws" ? openWs(t, command.waitForConnected) : openSocketIo(t))),
  );
  const errors = new Map<string, number>();
  for (const result of results) {
    if (result.status === "fulfilled") conns.push(result.value);
    else {
      const message = String((result.reason as Error)?.message ?? result.reason);
      errors.set(message, (errors.get(message) ?? 0) + 1);
    }
  }
  return { event: "opened", ok: conns.length, failed: results.length - conns.length, ms: performance.now() - started, errors: [...errors] };
}

process.on("message", (command: Command) => {
  const reply = (message: object) => process.send!(message);
  switch (command.cmd) {
    case "open":
      void open(command).then(reply);
      return;
    case "measure":
      histogram = new LatencyHistogram();
      for (const conn of conns) conn.received = 0;
      measuring = true;
      reply({ event: "measuring" });
      return;
    case "progress":
      reply({ event: "progress", received: conns.reduce((n, c) => n + c.received, 0) });
      return;
    case "report": {
      measuring = false;
      const perRoom: Record<string, { connections: number; received: number }> = {};
      for (const conn of conns) {
        const room = (perRoom[conn.room] ??= { connections: 0, received: 0 });
        room.connections++;
        room.received += conn.received;
      }
      reply({
        event: "report",
        perRoom,
        closed: conns.filter((c) => c.closedCode !== undefined).length,
        histogram: histogram.sparse(),
        max: histogram.max,
      });
      return;
    }
    case "close":
      for (const conn of conns) conn.close();
      setTimeout(() => process.exit(0), 200);
  }
});
process.send!({ event: "ready" });
