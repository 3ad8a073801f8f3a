import { afterEach, describe, expect, test } from "vitest";
import { waitFor } from "../../test/support/wait.js";
import { TaskboardClient } from "./client.js";
import type { RealtimeStatus } from "./realtime.js";

/** A WHATWG-shaped WebSocket the test drives by hand. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  readonly sent: unknown[] = [];
  closedByClient: number | undefined;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  get query() {
    return new URL(this.url).searchParams;
  }
  open(connected: Record<string, unknown>) {
    this.readyState = 1;
    this.onopen?.({});
    this.frame({ type: "connected", workspace_id: "w1", connection_id: "c", first_seq: 1, ...connected });
  }
  frame(value: unknown) {
    this.onmessage?.({ data: JSON.stringify(value) });
  }
  serverClose(code: number, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  failToOpen() {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: "" });
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number) {
    this.closedByClient = code ?? 1005;
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code: code ?? 1005, reason: "" }));
  }
}

const event = (seq: number, type = "task.created") => ({
  id: `e${seq}`,
  type,
  workspace_id: "w1",
  user_id: "u1",
  aggregate_id: "a1",
  data: { id: "a1", title: `t${seq}` },
  timestamp: 1,
  seq,
});

const jwt = (lifetimeSeconds: number) => {
  const now = Math.floor(Date.now() / 1000);
  return `e30.${Buffer.from(JSON.stringify({ sub: "u1", iat: now, exp: now + lifetimeSeconds })).toString("base64url")}.sig`;
};

/** A fetch answering tickets and refreshes; SSE streams come from `streams` in order. */
function fakeApi() {
  const calls: string[] = [];
  const streams: ReadableStreamDefaultController<Uint8Array>[] = [];
  const streamUrls: string[] = [];
  let tickets = 0;
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    calls.push(`${init?.method ?? "GET"} ${url.pathname}`);
    if (url.pathname === "/realtime/tickets") {
      expect(JSON.parse(String(init?.body))).toEqual({ workspace_id: "w1" });
      return Response.json({ ticket: `t${++tickets}`, expires_in: 30 }, { status: 201 });
    }
    if (url.pathname === "/auth/refresh") return Response.json({ access_token: jwt(900), refresh_token: "r2", expires_in: 900, token_type: "Bearer" });
    if (url.pathname === "/workspaces/w1/stream") {
      streamUrls.push(url.href);
      const body = new ReadableStream<Uint8Array>({ start: (c) => void streams.push(c) });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    return Response.json({ error: { code: "not_found", message: "no route" } }, { status: 404 });
  };
  return { fetch: fetch as typeof globalThis.fetch, calls, streams, streamUrls };
}

const encoder = new TextEncoder();
const fast = { baseMs: 2, capMs: 10, stableMs: 10_000 };
const subscriptions: { close(): unknown }[] = [];

afterEach(async () => {
  for (const s of subscriptions.splice(0)) await s.close();
  FakeSocket.all = [];
});

function subscribe(api: ReturnType<typeof fakeApi>, options: Parameters<TaskboardClient["realtime"]>[1] = {}, access = jwt(900)) {
  const client = new TaskboardClient({ baseUrl: "http://gw.test", fetch: api.fetch, tokens: { access_token: access, refresh_token: "r1" }, WebSocket: FakeSocket });
  const sub = client.realtime("w1", { backoff: fast, ...options });
  subscriptions.push(sub);
  const seen = { events: [] as number[], resets: [] as unknown[], statuses: [] as RealtimeStatus[], errors: [] as Error[] };
  sub.on("event", (e) => seen.events.push(e.seq));
  sub.on("reset", (r) => seen.resets.push(r));
  sub.on("status", (s) => seen.statuses.push(s));
  sub.on("error", (e) => seen.errors.push(e));
  return { client, sub, seen };
}

const socket = (n: number) => waitFor(`socket ${n}`, () => FakeSocket.all[n]);

describe("realtime subscription", () => {
  test("realtime: a fresh ticket before every connect; reconnects after 1012 with since = last seq and the epoch", async () => {
    const api = fakeApi();
    const { seen } = subscribe(api);
    const first = await socket(0);
    expect(first.url).toBe("ws://gw.test/ws/w1?ticket=t1");
    first.open({ seq: 7, epoch: "E1" });
    first.frame(event(8));
    first.frame(event(9));
    first.serverClose(1012, "server restarting");
    const second = await socket(1);
    expect(Object.fromEntries(second.query)).toEqual({ ticket: "t2", since: "9", epoch: "E1" });
    second.open({ seq: 10, epoch: "E1", recovered: true });
    second.frame(event(9)); // already seen: dropped
    second.frame(event(10));
    expect(seen.events).toEqual([8, 9, 10]);
    expect(seen.resets).toEqual([]);
    expect(api.calls.filter((c) => c === "POST /realtime/tickets")).toHaveLength(2);
    expect(seen.statuses.map((s) => s.state)).toEqual(["connecting", "open", "reconnecting", "connecting", "open"]);
    expect(seen.statuses[2]).toMatchObject({ state: "reconnecting", code: 1012, reason: "server restarting" });
  });

  test("realtime: recovered:false is reported as reset, and the stream continues from the frame's seq", async () => {
    const api = fakeApi();
    const { sub, seen } = subscribe(api, { since: 3, epoch: "old" });
    const first = await socket(0);
    expect(Object.fromEntries(first.query)).toEqual({ ticket: "t1", since: "3", epoch: "old" });
    first.open({ seq: 50, epoch: "new", recovered: false });
    expect(seen.resets).toEqual([{ connected: expect.objectContaining({ seq: 50, recovered: false }), since: 3, epoch: "old" }]);
    first.frame(event(51));
    expect(sub.position).toEqual({ since: 51, epoch: "new" });
  });

  test("realtime: typed listeners per event type", async () => {
    const api = fakeApi();
    const { sub } = subscribe(api);
    const titles: string[] = [];
    sub.on("task.created", (e) => titles.push(e.data.title));
    const first = await socket(0);
    first.open({ seq: 0, epoch: "E" });
    first.frame(event(1, "task.created"));
    first.frame(event(2, "task.updated"));
    expect(titles).toEqual(["t1"]);
  });

  test("realtime: 4003, 4004 and 1008 stop the subscription and report it", async () => {
    for (const code of [4003, 4004, 1008]) {
      const api = fakeApi();
      const { sub, seen } = subscribe(api);
      const first = await socket(FakeSocket.all.length);
      first.open({ seq: 1, epoch: "E" });
      first.serverClose(code, "bye");
      const end = await sub.closed;
      expect(end.code).toBe(code);
      expect(seen.statuses.at(-1)).toMatchObject({ state: "closed", code });
      expect(seen.errors.at(-1)?.name).toBe("RealtimeClosedError");
      await new Promise((r) => setTimeout(r, 30));
      expect(api.calls.filter((c) => c === "POST /realtime/tickets")).toHaveLength(1);
    }
  });

  test("realtime: 4001 refreshes the access token, then reconnects", async () => {
    const api = fakeApi();
    const { client } = subscribe(api);
    const first = await socket(0);
    first.open({ seq: 1, epoch: "E" });
    first.serverClose(4001, "token expired");
    const second = await socket(1);
    expect(api.calls).toEqual(["POST /realtime/tickets", "POST /auth/refresh", "POST /realtime/tickets"]);
    expect(client.tokens?.refresh_token).toBe("r2");
    expect(second.query.get("since")).toBe("1");
  });

  test("realtime: before the access token expires, a fresh one is sent on the open socket", async () => {
    const api = fakeApi();
    subscribe(api, {}, jwt(5)); // refreshed 1 s before expiry
    const first = await socket(0);
    first.open({ seq: 1, epoch: "E" });
    const auth = await waitFor("the auth frame", () => first.sent.find((f) => (f as { type: string }).type === "auth"), 10_000);
    expect(auth).toEqual({ type: "auth", token: expect.any(String) });
    expect(api.calls).toContain("POST /auth/refresh");
  });

  test("realtime: auto falls back to SSE after two failures to open; SSE resumes with since and epoch", async () => {
    const api = fakeApi();
    const { sub, seen } = subscribe(api);
    (await socket(0)).failToOpen();
    (await socket(1)).failToOpen();
    const stream = await waitFor("the SSE stream", () => api.streams[0]);
    expect(sub.transport).toBe("sse");
    expect(api.streamUrls[0]).toBe("http://gw.test/workspaces/w1/stream?ticket=t3");
    const text = `event: connected\ndata: {"type":"connected","workspace_id":"w1","connection_id":"c","seq":4,"epoch":"E","first_seq":1}\n\n: ping\n\nid: 5\nevent: task.created\ndata: ${JSON.stringify(event(5))}\n\nevent: close\ndata: {"code":1012,"reason":"server restarting"}\n\n`;
    for (let i = 0; i < text.length; i += 7) stream.enqueue(encoder.encode(text.slice(i, i + 7)));
    stream.close();
    await waitFor("the second stream", () => api.streams[1]);
    expect(new URL(api.streamUrls[1]!).searchParams.get("since")).toBe("5");
    expect(new URL(api.streamUrls[1]!).searchParams.get("epoch")).toBe("E");
    expect(seen.events).toEqual([5]);
    expect(FakeSocket.all).toHaveLength(2);
    expect(() => sub.send({ a: 1 })).toThrow(/SSE/);
  });

  test("realtime: an API that does not answer (a restarting gateway) is retried with backoff and does not count toward the SSE fallback", async () => {
    const api = fakeApi();
    let down = 3;
    const flaky: typeof globalThis.fetch = async (input, init) => {
      if (down > 0) {
        down--;
        throw new TypeError("fetch failed");
      }
      return api.fetch(input, init);
    };
    const client = new TaskboardClient({ baseUrl: "http://gw.test", fetch: flaky, tokens: { access_token: jwt(900) }, WebSocket: FakeSocket });
    const sub = client.realtime("w1", { backoff: fast });
    subscriptions.push(sub);
    const statuses: RealtimeStatus[] = [];
    sub.on("status", (s) => statuses.push(s));
    const first = await socket(0);
    expect(sub.transport).toBe("websocket");
    expect(statuses.filter((s) => s.state === "reconnecting").map((s) => s.error?.name)).toEqual(["TaskboardError", "TaskboardError", "TaskboardError"]);
    first.open({ seq: 1, epoch: "E" });
    expect(statuses.at(-1)).toMatchObject({ state: "open", attempt: 3 });
  });

  test("realtime: a socket that opened and closed is not a failure to open (no fallback)", async () => {
    const api = fakeApi();
    const { sub } = subscribe(api);
    for (let i = 0; i < 3; i++) {
      const s = await socket(i);
      s.open({ seq: 1, epoch: "E" });
      s.serverClose(1013, "slow consumer");
    }
    await socket(3);
    expect(sub.transport).toBe("websocket");
  });

  test("realtime: send() writes custom.message frames; close() ends it with 1000 and no reconnect", async () => {
    const api = fakeApi();
    const { sub, seen } = subscribe(api);
    const first = await socket(0);
    first.open({ seq: 1, epoch: "E" });
    sub.send({ hello: "room" });
    sub.send({ hi: "group" }, { groupId: "g1" });
    expect(first.sent).toEqual([
      { type: "custom.message", data: { hello: "room" } },
      { type: "custom.message", group_id: "g1", data: { hi: "group" } },
    ]);
    const end = await sub.close();
    expect(end).toEqual({ code: 1000, reason: "closed by the application" });
    expect(first.closedByClient).toBe(1000);
    expect(seen.statuses.at(-1)?.state).toBe("closed");
    await new Promise((r) => setTimeout(r, 30));
    expect(FakeSocket.all).toHaveLength(1);
  });

  test("realtime: ping() sends a ping frame and the pong comes to the pong listeners", async () => {
    const api = fakeApi();
    const { sub } = subscribe(api);
    expect(() => sub.ping()).toThrow(/not open/);
    const first = await socket(0);
    first.open({ seq: 1, epoch: "E" });
    const pongs: number[] = [];
    sub.on("pong", (pong) => pongs.push(pong.receivedAt));
    sub.ping();
    expect(first.sent).toEqual([{ type: "ping" }]);
    first.frame({ type: "pong" });
    expect(pongs).toHaveLength(1);
  });

  test("realtime: close() while the ticket request is in flight aborts it and never connects", async () => {
    let aborted = false;
    const hanging: typeof globalThis.fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => {
          aborted = true;
          reject(new DOMException("aborted", "AbortError"));
        });
      });
    const client = new TaskboardClient({ baseUrl: "http://gw.test", fetch: hanging, tokens: { access_token: jwt(900) }, WebSocket: FakeSocket });
    const sub = client.realtime("w1");
    const statuses: RealtimeStatus[] = [];
    sub.on("status", (s) => statuses.push(s));
    await waitFor("the ticket request", () => statuses.length > 0);
    expect(await sub.close()).toEqual({ code: 1000, reason: "closed by the application" });
    expect(aborted).toBe(true);
    await new Promise((r) => setTimeout(r, 30));
    expect(FakeSocket.all).toEqual([]);
    expect(statuses.map((s) => s.state)).toEqual(["connecting", "closed"]);
  });

  test("realtime: a refused ticket (not a member) stops with the TaskboardError", async () => {
    const api = fakeApi();
    const fetch404: typeof globalThis.fetch = async () => Response.json({ error: { code: "not_found", message: "workspace not found" } }, { status: 404 });
    const client = new TaskboardClient({ baseUrl: "http://gw.test", fetch: fetch404, tokens: { access_token: jwt(900) }, WebSocket: FakeSocket });
    const sub = client.realtime("w1");
    const end = await sub.closed;
    expect(end.error).toMatchObject({ name: "TaskboardError", status: 404, code: "not_found" });
    expect(api.calls).toEqual([]);
  });
});
