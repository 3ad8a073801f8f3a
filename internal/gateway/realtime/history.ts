/** One event of a room as clients receive it: its sequence and its frame (the envelope with `seq`). */
export interface HistoryEntry {
  seq: number;
  frame: Buffer;
  /** The same event as an SSE message, made when an SSE client first needs it (sse.ts). */
  sse?: Buffer;
  /** A group message's audience: the users it may reach (rooms.ts); everyone's when absent. */
  audience?: ReadonlySet<string> | undefined;
}

export interface HistoryLimits {
  /** Events kept at most. */
  maxEvents: number;
  /** Frame bytes kept at most. */
  maxBytes: number;
}

/**
 * A room's recent events in memory, in stream order: every event of the room
 * with a sequence in (floor, head] is here, so a client whose position is at
 * or above `floor` catches up without a JetStream call. Bounded by count and
 * bytes; what falls out raises the floor.
 */
export class RoomHistory {
  private entries: HistoryEntry[] = [];
  /** Index of the oldest kept entry in `entries` (evicted ones are cut off in bulk). */
  private start = 0;
  private bytes = 0;

  constructor(
    private readonly limits: HistoryLimits,
    /** Everything of the room up to here is older than this history. */
    public floor: number,
  ) {}

  /** The sequence of the newest event held, or the floor when none is. */
  get head(): number {
    return this.size > 0 ? this.entries[this.entries.length - 1]!.seq : this.floor;
  }

  get size(): number {
    return this.entries.length - this.start;
  }

  /** Adds the next event of the room (its sequence is above every held one). */
  append(entry: HistoryEntry): void {
    this.entries.push(entry);
    this.bytes += entry.frame.length;
    while (this.size > 0 && (this.size > this.limits.maxEvents || this.bytes > this.limits.maxBytes)) {
      const evicted = this.entries[this.start++]!;
      this.bytes -= evicted.frame.length;
      this.floor = evicted.seq;
    }
    // Cut off evicted entries once they are as many as the kept ones (amortised O(1)).
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
  }

  /** Up to `max` held entries after `position`, in order; none when `position` is below the floor. */
  after(position: number, max: number): HistoryEntry[] {
    if (position < this.floor) return [];
    const from = indexAfter(this.entries, position, this.start);
    return this.entries.slice(from, from + max);
  }
}

/**
 * Events of a room below its history, read once from JetStream and shared by
 * every client that needs them at the same time (a reconnect storm): the
 * events of the room in (from, end], in order. A segment holds at most
 * `maxEvents`; a longer range ends early (its `end` moves down to what it
 * read), and the clients go on with another segment.
 */
export class HistorySegment {
  readonly events: HistoryEntry[] = [];
  /** Every event of the room in (from, end] is in `events` once `done`. */
  end: number;
  done = false;
  error: Error | undefined;
  /** Clients reading this segment now. */
  readers = 0;
  private waiters: (() => void)[] = [];

  constructor(
    readonly from: number,
    end: number,
  ) {
    this.end = end;
  }

  /** Whether a client at `position` can continue from this segment. */
  covers(position: number): boolean {
    return !this.error && position >= this.from && position < this.end;
  }

  add(entry: HistoryEntry): void {
    this.events.push(entry);
    this.wake();
  }

  finish(end: number, error?: Error): void {
    this.end = error ? this.end : end;
    this.error = error;
    this.done = true;
    this.wake();
  }

  /** Resolves when more events arrived or the segment is done. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Index of the first event after `position`. */
  indexAfter(position: number): number {
    return indexAfter(this.events, position, 0);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Index of the first entry after `position` in `entries[from..]` (sorted by seq). */
function indexAfter(entries: HistoryEntry[], position: number, from: number): number {
  let low = from;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (entries[mid]!.seq <= position) low = mid + 1;
    else high = mid;
  }
  return low;
}
