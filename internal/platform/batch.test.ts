import { describe, expect, it } from "vitest";
import { CallBatcher } from "./batch.js";
import { AppError } from "./errors.js";

describe("call batcher", () => {
  it("call batcher: the calls of one event-loop turn go out as one batch, each caller getting its own result", async () => {
    const batches: number[][] = [];
    const batcher = new CallBatcher<number, string>(async (items) => {
      batches.push(items);
      return items.map((n) => (n % 2 === 0 ? `even ${n}` : new AppError("validation_failed", `odd ${n}`)));
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => batcher.call(n)));
    expect(batches).toEqual([[1, 2, 3, 4]]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as AppError).message))).toEqual(["odd 1", "even 2", "odd 3", "even 4"]);
  });

  it("call batcher: a batch whose call fails as a whole (not an outage) is retried item by item, so only the culprit fails", async () => {
    const batches: number[][] = [];
    const batcher = new CallBatcher<number, number>(async (items) => {
      batches.push(items);
      if (items.includes(13)) throw new Error("the statement was refused");
      return items.map((n) => n * 10);
    });
    const results = await Promise.allSettled([11, 12, 13, 14].map((n) => batcher.call(n)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect(results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual([110, 120, 140]);
    expect(batches).toEqual([[11, 12, 13, 14], [11], [12], [13], [14]]);
  });

  it("call batcher: an outage fails every item of the batch at once, without retrying each", async () => {
    let calls = 0;
    const batcher = new CallBatcher<number, number>(async () => {
      calls++;
      throw new AppError("dependency_unavailable", "the task service is unavailable");
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => batcher.call(n)));
    expect(results.every((r) => r.status === "rejected" && (r.reason as AppError).code === "dependency_unavailable")).toBe(true);
    expect(calls).toBe(1);
  });

  it("call batcher: a full batch goes out at once; the rest follows in the next", async () => {
    const sizes: number[] = [];
    const batcher = new CallBatcher<number, number>(async (items) => {
      sizes.push(items.length);
      return items;
    }, 3);
    await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.call(n)));
    expect(sizes).toEqual([3, 2]);
  });
});
