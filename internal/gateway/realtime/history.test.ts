import { describe, expect, it } from "vitest";
import { HistorySegment, RoomHistory } from "./history.js";

const entry = (seq: number, bytes = 10) => ({ seq, frame: Buffer.alloc(bytes) });

describe("room history", () => {
  it("room history: holds every event above its floor, in order, and finds the first after a position", () => {
    const history = new RoomHistory({ maxEvents: 10, maxBytes: 1_000 }, 100);
    for (const seq of [103, 107, 110]) history.append(entry(seq));
    expect(history.head).toBe(110);
    expect(history.next(100)?.seq).toBe(103);
    expect(history.next(103)?.seq).toBe(107);
    expect(history.next(105)?.seq).toBe(107);
    expect(history.next(110)).toBeUndefined();
    // Below the floor the history cannot tell what is missing: nothing, not the first entry.
    expect(history.next(99)).toBeUndefined();
  });

  it("room history: an empty history's head is its floor", () => {
    expect(new RoomHistory({ maxEvents: 10, maxBytes: 1_000 }, 42).head).toBe(42);
  });

  it("room history: evicts the oldest beyond its count, raising the floor to the last evicted", () => {
    const history = new RoomHistory({ maxEvents: 3, maxBytes: 1_000 }, 0);
    for (let seq = 1; seq <= 5; seq++) history.append(entry(seq * 2));
    expect(history.size).toBe(3);
    expect(history.floor).toBe(4);
    expect(history.next(4)?.seq).toBe(6);
    expect(history.next(3)).toBeUndefined();
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
    for (let at = history.floor, next = history.next(at); next; next = history.next(next.seq)) seen.push(next.seq);
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
