import { describe, expect, it } from "vitest";
import { HistorySegment, RoomHistory } from "./history.js";

const entry = (seq: number, bytes = 10) => ({ seq, frame: Buffer.alloc(bytes) });

describe("room history", () => {
  it("room history: holds every event above its floor, in order, and hands out batches after a position", () => {
    const history = new RoomHistory({ maxEvents: 10, maxBytes: 1_000 }, 100);
    for (const seq of [103, 107, 110]) history.append(entry(seq));
    const seqs = (position: number, max = 10) => history.after(position, max).map((e) => e.seq);
    expect(history.head).toBe(110);
    expect(seqs(100)).toEqual([103, 107, 110]);
    expect(seqs(100, 2)).toEqual([103, 107]);
    expect(seqs(103)).toEqual([107, 110]);
    expect(seqs(105)).toEqual([107, 110]);
    expect(seqs(110)).toEqual([]);
    // Below the floor the history cannot tell what is missing: nothing, not the first entry.
    expect(seqs(99)).toEqual([]);
  });

  it("room history: an empty history's head is its floor", () => {
    expect(new RoomHistory({ maxEvents: 10, maxBytes: 1_000 }, 42).head).toBe(42);
  });

  it("room history: evicts the oldest beyond its count, raising the floor to the last evicted", () => {
    const history = new RoomHistory({ maxEvents: 3, maxBytes: 1_000 }, 0);
    for (let seq = 1; seq <= 5; seq++) history.append(entry(seq * 2));
    expect(history.size).toBe(3);
    expect(history.floor).toBe(4);
    expect(history.after(4, 1).map((e) => e.seq)).toEqual([6]);
    expect(history.after(3, 1)).toEqual([]);
  });

  it("room history: evicts by bytes too, whichever bound comes first", () => {
    const history = new RoomHistory({ maxEvents: 100, maxBytes: 25 }, 0);
    history.append(entry(1, 10));
    history.append(entry(2, 10));
    history.append(entry(3, 10));
    expect(history.size).toBe(2);
    expect(history.floor).toBe(1);
  });

  it("room history: stays correct across many evictions (entries are compacted in bulk)", () => {
    const history = new RoomHistory({ maxEvents: 50, maxBytes: 1_000_000 }, 0);
    for (let seq = 1; seq <= 5_000; seq++) history.append(entry(seq));
    expect(history.size).toBe(50);
    expect(history.floor).toBe(4_950);
    const seen: number[] = [];
    for (let batch = history.after(history.floor, 7); batch.length > 0; batch = history.after(batch.at(-1)!.seq, 7)) seen.push(...batch.map((e) => e.seq));
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => 4_951 + i));
  });
});

describe("history segment", () => {
  it("history segment: covers positions from its start up to (not including) its end, unless it failed", () => {
    const segment = new HistorySegment(10, 20);
    expect(segment.covers(10)).toBe(true);
    expect(segment.covers(19)).toBe(true);
    expect(segment.covers(20)).toBe(false);
    expect(segment.covers(9)).toBe(false);
    segment.finish(20, new Error("stalled"));
    expect(segment.covers(12)).toBe(false);
  });

  it("history segment: readers waiting for more are woken by each event and by the end; a short read moves the end down", async () => {
    const segment = new HistorySegment(0, 100);
    const woken = segment.changed();
    segment.add(entry(5));
    await woken;
    expect(segment.indexAfter(0)).toBe(0);
    expect(segment.indexAfter(5)).toBe(1);
    const ended = segment.changed();
    segment.finish(5);
    await ended;
    expect(segment.done).toBe(true);
    expect(segment.end).toBe(5);
  });
});
