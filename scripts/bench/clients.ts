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
  | { cmd: "close" }
  // Reconnect storm (--storm-resume): open live, drop, then resume all at once with since/epoch.
  | { cmd: "resume-open"; urls: string[] }
  | { cmd: "resume-live"; seq: number }
  | { cmd: "resume-drop" }
  | { cmd: "resume-wave"; expected: number[]; timeoutMs: number; lingerMs: number };

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

// --- reconnect storm -------------------------------------------------------------

/** One client of the storm: its position and epoch from its first life, and what its resumed life received. */
interface Resumer {
  url: string;
  socket?: WebSocket;
  /** The last seq this client had (the connected frame's, then each event's). */
  position: number;
  epoch?: string;
  // The resumed life, checked frame by frame against `expected` (the missed events, in stream order).
  connected: boolean;
  recovered?: boolean;
  /** Index into `expected` of the next missed event this client must get. */
  next: number;
  last: number;
  /** When the resumed `connected` frame and the first event after its position arrived (epoch ms; 0 if not). */
  connectedAt: number;
  firstAt: number;
  doneAt: number;
  gaps: number;
  duplicates: number;
  reorders: number;
  /** Missed events that were skipped (a gap), so that one arriving late counts as a reordering. */
  skipped?: Set<number>;
  closed: boolean;
  refused?: string;
  /** Counted as finished in this wave (caught up, closed or refused), once. */
  settled: boolean;
}

const resumers: Resumer[] = [];
let expected: number[] = [];
let waveOpen = false;
let onResumerSettled: () => void = () => undefined;
function settle(r: Resumer): void {
  if (r.settled) return;
  r.settled = true;
  onResumerSettled();
}

const CLOSE_BRACE = 0x7d;
const COLON = 0x3a;
const SEQ_KEY = Buffer.from('"seq"');

/**
 * The `seq` of an event frame, read from the frame's last bytes (`…,"seq":123}`:
 * the gateway splices it in last) without decoding or parsing the frame; -1 for
 * any other frame (`connected`, errors).
 */
export function trailingSeq(frame: Buffer): number {
  let i = frame.length - 1;
  if (i < 8 || frame[i] !== CLOSE_BRACE) return -1;
  let seq = 0;
  let scale = 1;
  for (i--; i >= 0; i--) {
    const digit = frame[i]! - 0x30;
    if (digit < 0 || digit > 9) break;
    seq += digit * scale;
    scale *= 10;
  }
  // `"seq":` before the digits (not `"first_seq":`), compared byte by byte.
  if (scale === 1 || frame[i] !== COLON) return -1;
  for (let k = 0; k < SEQ_KEY.length; k++) if (frame[i - SEQ_KEY.length + k] !== SEQ_KEY[k]) return -1;
  return seq;
}

/** The `connected` frame, parsed; undefined for any other. */
function connectedFrame(data: Buffer): { seq: number; epoch?: string; recovered?: boolean } | undefined {
  return data.toString("latin1", 0, 20) === '{"type":"connected",' ? JSON.parse(data.toString()) : undefined;
}

/** First life: the connected frame gives the position and epoch; each event moves the position on. */
function onLiveFrame(r: Resumer, data: Buffer): void {
  if (!r.connected) {
    const frame = connectedFrame(data);
    if (!frame) return;
    r.connected = true;
    r.position = frame.seq;
    r.epoch = frame.epoch;
    return;
  }
  const seq = trailingSeq(data);
  if (seq > r.position) r.position = seq;
}

/** Resumed life: every frame is checked against the missed events, in order, once, none missing. */
function onResumedFrame(r: Resumer, data: Buffer): void {
  if (!r.connected) {
    const frame = connectedFrame(data);
    if (!frame) return;
    r.connected = true;
    r.connectedAt = nowMs();
    r.recovered = frame.recovered;
    return;
  }
  const seq = trailingSeq(data);
  if (seq < 0) return;
  if (seq <= r.last) {
    if (seq <= r.position) r.duplicates++; // the client had it before it resumed
    else if (r.skipped?.delete(seq)) {
      r.gaps--;
      r.reorders++;
    } else if (seq === r.last || expected.includes(seq)) r.duplicates++;
    else r.reorders++;
    return;
  }
  r.last = seq;
  if (r.doneAt !== 0) return;
  if (r.firstAt === 0) r.firstAt = nowMs();
  while (r.next < expected.length && expected[r.next]! < seq) {
    (r.skipped ??= new Set()).add(expected[r.next++]!);
    r.gaps++;
  }
  if (expected[r.next] === seq) r.next++;
  if (r.next === expected.length) {
    r.doneAt = nowMs();
    settle(r);
  }
}

function openResumer(r: Resumer, url: string, resumed: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    r.socket = socket;
    let settled = false;
    socket.on("message", (data: Buffer) => {
      if (resumed) onResumedFrame(r, data);
      else onLiveFrame(r, data);
      if (!settled && r.connected) {
        settled = true;
        resolve();
      }
    });
    socket.on("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    socket.on("error", (error) => {
      if (!settled) reject(error);
    });
    socket.on("close", (code) => {
      if (!settled) reject(new Error(`closed ${code} before connected`));
      if (r.socket === socket && waveOpen && resumed) {
        r.closed = true;
        settle(r);
      }
    });
  });
}

const newResumer = (url: string): Resumer => ({ url, position: 0, connected: false, next: 0, last: 0, connectedAt: 0, firstAt: 0, doneAt: 0, gaps: 0, duplicates: 0, reorders: 0, closed: false, settled: false });

async function resumeOpen(urls: string[]) {
  const started = performance.now();
  const opened = await Promise.allSettled(urls.map((url) => {
    const r = newResumer(url);
    resumers.push(r);
    return openResumer(r, url, false);
  }));
  const errors = new Map<string, number>();
  for (const o of opened) {
    if (o.status === "rejected") {
      const message = String((o.reason as Error)?.message ?? o.reason);
      errors.set(message, (errors.get(message) ?? 0) + 1);
    }
  }
  const ok = opened.filter((o) => o.status === "fulfilled").length;
  return { event: "resume-opened", ok, failed: opened.length - ok, ms: performance.now() - started, errors: [...errors] };
}

export type WaveReply = Awaited<ReturnType<typeof resumeWave>>;

/** Reconnects every client at once with its since and epoch; resolves when each has every missed event, closed, was refused, or the time is up. */
async function resumeWave(command: Extract<Command, { cmd: "resume-wave" }>) {
  expected = command.expected;
  waveOpen = true;
  let pending = resumers.length;
  const allSettled = new Promise<void>((resolve) => {
    onResumerSettled = () => {
      if (--pending === 0) resolve();
    };
    if (pending === 0) resolve();
  });
  for (const r of resumers) {
    // Each client's own missed events start after its position.
    let from = 0;
    while (from < expected.length && expected[from]! <= r.position) from++;
    Object.assign(r, { connected: false, recovered: undefined, next: from, last: r.position, connectedAt: 0, firstAt: 0, doneAt: 0, closed: false, settled: false });
    const resume = `&since=${r.position}${r.epoch === undefined ? "" : `&epoch=${encodeURIComponent(r.epoch)}`}`;
    if (from === expected.length) r.doneAt = nowMs();
    openResumer(r, r.url + resume, true).catch((error: unknown) => {
      if (r.closed) return; // already counted as a close
      r.refused = String((error as Error)?.message ?? error);
      settle(r);
    });
    if (from === expected.length) settle(r);
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([allSettled, new Promise((resolve) => (timer = setTimeout(resolve, command.timeoutMs)))]);
  clearTimeout(timer);
  // Late frames (duplicates after the last missed event, closes) still count.
  await new Promise((resolve) => setTimeout(resolve, command.lingerMs));
  waveOpen = false;
  const refused = new Map<string, number>();
  for (const r of resumers) if (r.refused) refused.set(r.refused, (refused.get(r.refused) ?? 0) + 1);
  return {
    event: "resume-waved",
    doneAt: resumers.filter((r) => r.doneAt !== 0 && r.gaps === 0).map((r) => r.doneAt),
    connectedAt: resumers.filter((r) => r.connectedAt !== 0).map((r) => r.connectedAt),
    firstAt: resumers.filter((r) => r.firstAt !== 0).map((r) => r.firstAt),
    clients: resumers.length,
    notRecovered: resumers.filter((r) => r.connected && r.recovered === false).length,
    recoveredAbsent: resumers.filter((r) => r.connected && r.recovered === undefined).length,
    incomplete: resumers.filter((r) => !r.refused && r.doneAt === 0).length,
    /** Of those, how many never got their `connected` frame. */
    incompleteUnconnected: resumers.filter((r) => !r.refused && r.doneAt === 0 && !r.connected).length,
    // Missed events skipped (a later one came first and this one never), and those still due from clients that did not finish.
    gaps: resumers.reduce((n, r) => n + r.gaps, 0),
    clientsWithGaps: resumers.filter((r) => r.gaps > 0).length,
    missing: resumers.reduce((n, r) => n + (r.doneAt === 0 && !r.refused ? expected.length - r.next : 0), 0),
    duplicates: resumers.reduce((n, r) => n + r.duplicates, 0),
    reorders: resumers.reduce((n, r) => n + r.reorders, 0),
    closed: resumers.filter((r) => r.closed).length,
    refused: resumers.filter((r) => r.refused).length,
    refusedErrors: [...refused],
  };
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
    case "resume-open":
      void resumeOpen(command.urls).then(reply);
      return;
    case "resume-live":
      reply({ event: "resume-live", live: resumers.filter((r) => r.position >= command.seq).length, minPosition: Math.min(...resumers.map((r) => r.position)), withEpoch: resumers.filter((r) => r.epoch !== undefined).length });
      return;
    case "resume-drop":
      for (const r of resumers) r.socket?.terminate();
      reply({ event: "resume-dropped" });
      return;
    case "resume-wave":
      void resumeWave(command).then(reply);
      return;
    case "close":
      for (const conn of conns) conn.close();
      for (const r of resumers) r.socket?.terminate();
      setTimeout(() => process.exit(0), 200);
  }
});
process.send!({ event: "ready" });
