import type { SignedUp } from "./http.js";
import { RoomClient } from "./ws.js";

/**
 * Load for the fault tests: writers that keep changing tasks through any
 * gateway still up, and WebSocket clients that reconnect with `since` the way
 * a browser does. Both record everything a user could check afterwards.
 */

export interface Writer {
  user: SignedUp;
  workspaceId: string;
}

/** One change a writer made, in the order it made them (each waits for the previous). */
export interface Change {
  kind: "created" | "updated" | "commented";
  taskId: string;
  title: string;
  status: number;
  at: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writers that create, update and comment on tasks in a loop until stopped. */
export class WriteLoad {
  /** Responses by HTTP status; 0 counts requests that got no HTTP answer (connection refused or reset). */
  readonly statuses = new Map<number, number>();
  /** Per writer, its successful changes in commit order. */
  readonly changes = new Map<Writer, Change[]>();
  /** The slowest answer (ms), and the answers slower than 2 s. */
  slowestMs = 0;
  slowAnswers = 0;
  /** Every change attempted (whatever the answer), by task id. */
  readonly attempted = new Map<string, { created: boolean; updates: number; comments: number }>();
  private running = false;
  private loops: Promise<void>[] = [];
  private counter = 0;

  constructor(
    private readonly writers: Writer[],
    /** The gateways' base URLs; a writer moves on to the next when one does not answer. */
    private readonly gateways: () => string[],
    private readonly label: string,
  ) {
    for (const writer of writers) this.changes.set(writer, []);
  }

  get requests(): number {
    let total = 0;
    for (const count of this.statuses.values()) total += count;
    return total;
  }

  count(predicate: (status: number) => boolean): number {
    let total = 0;
    for (const [status, count] of this.statuses) if (predicate(status)) total += count;
    return total;
  }

  /** The time of the first successful change at or after `time`. */
  firstSuccessAfter(time: number): number | undefined {
    let first: number | undefined;
    for (const changes of this.changes.values()) {
      for (const change of changes) if (change.at >= time && (first === undefined || change.at < first)) first = change.at;
    }
    return first;
  }

  start(): void {
    this.running = true;
    this.loops = this.writers.map((writer, i) => this.write(writer, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async write(writer: Writer, index: number): Promise<void> {
    let gateway = index;
    const request = async (method: string, path: string, body: unknown): Promise<{ status: number; json: any }> => {
      const urls = this.gateways();
      const url = urls[gateway % urls.length]!;
      const sent = Date.now();
      const timed = () => {
        const ms = Date.now() - sent;
        this.slowestMs = Math.max(this.slowestMs, ms);
        if (ms > 2_000) this.slowAnswers++;
      };
      try {
        const res = await fetch(`${url}${path}`, {
          method,
          headers: { "content-type": "application/json", authorization: `Bearer ${writer.user.accessToken}` },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        timed();
        this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
        return { status: res.status, json: text.startsWith("{") ? JSON.parse(text) : undefined };
      } catch {
        // No HTTP answer: the gateway is down (or the connection broke); try another next time.
        timed();
        this.statuses.set(0, (this.statuses.get(0) ?? 0) + 1);
        gateway++;
        return { status: 0, json: undefined };
      }
    };
    const log = this.changes.get(writer)!;
    while (this.running) {
      const title = `${this.label} ${index}-${this.counter++}`;
      const created = await request("POST", `/workspaces/${writer.workspaceId}/tasks`, { title });
      if (created.status !== 201) {
        await sleep(50);
        continue;
      }
      const taskId = created.json.id as string;
      this.attempted.set(taskId, { created: true, updates: 0, comments: 0 });
      log.push({ kind: "created", taskId, title, status: 201, at: Date.now() });
      if (!this.running) break;
      this.attempted.get(taskId)!.updates++;
      const updated = await request("PUT", `/tasks/${taskId}`, { status: "in_progress" });
      if (updated.status === 200) log.push({ kind: "updated", taskId, title, status: 200, at: Date.now() });
      if (!this.running || this.counter % 3 !== 0) continue;
      this.attempted.get(taskId)!.comments++;
      const commented = await request("POST", `/workspaces/${writer.workspaceId}/comments`, { task_id: taskId, content: `on ${title}` });
      if (commented.status === 201) log.push({ kind: "commented", taskId, title, status: 201, at: Date.now() });
    }
  }
}

/**
 * A WebSocket client that comes back like a browser: when its socket closes
 * (a replica killed, 1012, 1013), it reconnects with `since` and `epoch` to
 * the first gateway that takes it. Its sessions' events, end to end, are what
 * a user saw.
 */
export class ResilientClient {
  readonly sessions: RoomClient[] = [];
  /** Close codes it saw (1006 when the connection just broke). */
  readonly closes: number[] = [];
  /** Reconnects told `recovered: false` (a gap it was warned of). */
  notRecovered = 0;
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly gateways: () => string[],
    readonly workspaceId: string,
    private readonly token: string,
  ) {}

  /** The sequence the first session started after. */
  get start(): number {
    return this.sessions[0]?.connected.seq ?? 0;
  }

  /** Every event seq it received, across sessions, in arrival order. */
  get seqs(): number[] {
    return this.sessions.flatMap((s) => s.events.map((e) => e.seq!));
  }

  get last(): number {
    for (let i = this.sessions.length - 1; i >= 0; i--) {
      const session = this.sessions[i]!;
      const seq = session.events.at(-1)?.seq;
      if (seq !== undefined) return seq;
      if (i === 0) return session.connected.seq!;
    }
    return 0;
  }

  async open(): Promise<void> {
    this.sessions.push(await RoomClient.open(this.gateways()[0]!, this.workspaceId, this.token));
    this.loop = this.watch();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const session of this.sessions) session.terminate();
    await this.loop;
  }

  private async watch(): Promise<void> {
    while (this.running) {
      const current = this.sessions.at(-1)!;
      while (this.running && !current.closed) await sleep(20);
      if (!this.running) return;
      this.closes.push(current.closed!.code);
      for (let attempt = 0; this.running; attempt++) {
        const urls = this.gateways();
        try {
          const epoch = this.sessions[0]!.connected.epoch as string | undefined;
          const next = await RoomClient.open(urls[attempt % urls.length]!, this.workspaceId, this.token, this.last, epoch);
          if (next.connected.recovered === false) this.notRecovered++;
          this.sessions.push(next);
          break;
        } catch {
          await sleep(Math.min(100 * 2 ** attempt, 1_000)); // the gateway is down or its room not ready yet
        }
      }
    }
  }
}
