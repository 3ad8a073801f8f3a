import type { IncomingHttpHeaders } from "node:http";
import WebSocket from "ws";
import { waitFor } from "./wait.js";

export interface Frame {
  type: string;
  seq?: number;
  [key: string]: any;
}

/** A WebSocket client of a workspace room, recording every frame. */
export class RoomClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  error: Error | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => this.frames.push(JSON.parse(data.toString()) as Frame));
    socket.on("close", (code, reason) => (this.closed = { code, reason: reason.toString() }));
    socket.on("error", (error) => (this.error = error));
  }

  /** Opens `/ws/<workspace>` on a gateway (with an access token, or a ticket) and waits for the `connected` frame. */
  static async open(baseUrl: string, workspaceId: string, credential: string | { ticket: string }, since?: number, epoch?: string): Promise<RoomClient> {
    const resume = `${since === undefined ? "" : `&since=${since}`}${epoch === undefined ? "" : `&epoch=${encodeURIComponent(epoch)}`}`;
    const auth = typeof credential === "string" ? `token=${encodeURIComponent(credential)}` : `ticket=${encodeURIComponent(credential.ticket)}`;
    const url = `${baseUrl.replace(/^http/, "ws")}/ws/${workspaceId}?${auth}${resume}`;
    const client = new RoomClient(new WebSocket(url));
    await new Promise<void>((resolve, reject) => {
      client.socket.once("open", () => resolve());
      client.socket.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
      client.socket.once("error", reject);
    });
    await waitFor("the connected frame", () => {
      if (client.closed) {
        throw new Error(`socket closed with ${client.closed.code} ${client.closed.reason} before it was connected${client.error ? ` (${client.error.message})` : ""}`);
      }
      return client.frames.find((f) => f.type === "connected");
    });
    return client;
  }

  /** The HTTP status a refused upgrade answers with. */
  static async refusal(baseUrl: string, path: string): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}${path}`);
    return new Promise((resolve, reject) => {
      socket.once("open", () => {
        socket.close();
        reject(new Error(`upgrade to ${path} was accepted`));
      });
      socket.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      });
      socket.once("error", () => undefined);
    });
  }

  get connected(): Frame {
    return this.frames.find((f) => f.type === "connected")!;
  }

  /** Event frames (those with a seq), in arrival order. */
  get events(): Frame[] {
    return this.frames.filter((f) => f.seq !== undefined && f.type !== "connected");
  }

  waitFor(what: string, predicate: (frame: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    return waitFor(what, () => this.frames.find(predicate), timeoutMs);
  }

  /** Waits until `count` event frames matching `predicate` arrived. */
  async waitForEvents(what: string, count: number, predicate: (frame: Frame) => boolean = () => true, timeoutMs = 15_000) {
    await waitFor(`${count} × ${what} (have ${this.events.filter(predicate).length})`, () => this.events.filter(predicate).length >= count, timeoutMs);
    return this.events.filter(predicate);
  }

  waitForClose(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return waitFor("the socket to close", () => this.closed, timeoutMs);
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Stops reading from the TCP socket: the server's buffers fill up (a slow client). */
  pauseReading(): void {
    (this.socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  close(): void {
    this.socket.close();
  }

  /** Drops the connection without a close handshake (a network failure). */
  terminate(): void {
    this.socket.terminate();
  }
}
