import { describe, expect, it } from "vitest";
import { publishInOrder } from "./outbox.js";

/** A JetStream stand-in: stores what it accepts, in arrival order, and refuses while `down`. */
class FakeStream {
  readonly stored: number[] = [];
  down = false;
  /** Comes back after this many more publishes (a leader elected mid-batch). */
  upAfter: number | undefined;

  publish = async (row: number) => {
    if (this.upAfter !== undefined && this.upAfter-- === 0) this.down = false;
    if (this.down) throw Object.assign(new Error("503"), { code: "503" });
    this.stored.push(row);
  };
}

describe("outbox relay order", () => {
  it("outbox relay: a batch is stored in table order", async () => {
    const stream = new FakeStream();
    const result = await publishInOrder([1, 2, 3, 4], stream.publish);
    expect(result).toEqual({ done: [1, 2, 3, 4], orderBroken: false });
    expect(stream.stored).toEqual([1, 2, 3, 4]);
  });

  it("outbox relay: while JetStream refuses, only the first row is tried: nothing behind it can be stored ahead of it", async () => {
    const stream = new FakeStream();
    stream.down = true;
    stream.upAfter = 1; // back right after the first publish: pipelining all would store 2, 3, 4 ahead of 1
    const result = await publishInOrder([1, 2, 3, 4], stream.publish);
    expect(result.done).toEqual([]);
    expect(result.failed?.row).toBe(1);
    expect(stream.stored).toEqual([]);
    // The next drain starts again from row 1.
    expect((await publishInOrder([1, 2, 3, 4], stream.publish)).done).toEqual([1, 2, 3, 4]);
    expect(stream.stored).toEqual([1, 2, 3, 4]);
  });

  it("outbox relay: JetStream gone mid-batch keeps the stored prefix; gone and back within one batch is reported as a broken order", async () => {
    const stream = new FakeStream();
    const gone = async (row: number) => {
      if (row === 3) stream.down = true;
      if (row === 5) stream.down = false;
      return stream.publish(row);
    };
    const result = await publishInOrder([1, 2, 3, 4, 5], gone);
    expect(result.done).toEqual([1, 2]);
    expect(result.failed?.row).toBe(3);
    expect(result.orderBroken).toBe(true);
  });
});
