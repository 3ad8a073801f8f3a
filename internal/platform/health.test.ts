import { describe, expect, test } from "vitest";
import { Health } from "./health.js";

describe("health", () => {
  test("health: recent() probes at most once a second however many ask; report() probes every time", async () => {
    let probes = 0;
    const health = new Health().add("dep", async () => void probes++);
    health.markRunning();
    const reports = await Promise.all(Array.from({ length: 50 }, () => health.recent()));
    expect(reports.every((r) => r.status === "ok" && r.dependencies["dep"] === "ok")).toBe(true);
    expect(probes).toBe(1);
    await health.recent();
    expect(probes).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await health.recent();
    expect(probes).toBe(2);
    await health.report();
    await health.report();
    expect(probes).toBe(4);
  });

  test("health: a failing dependency is degraded; stopping shows at once, even from recent probes", async () => {
    const health = new Health().add("dep", async () => {
      throw new Error("down");
    });
    expect((await health.recent()).status).toBe("starting");
    health.markRunning();
    expect(await health.recent()).toEqual({ status: "degraded", dependencies: { dep: "down" } });
    health.markStopping();
    expect((await health.recent()).status).toBe("stopping");
  });
});
