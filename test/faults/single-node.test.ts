import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NatsServer, PostgresServer, RedisServer } from "../support/fault-servers.js";
import { signUp } from "../support/http.js";
import { Mesh } from "../support/mesh.js";
import { waitFor } from "../support/wait.js";
import { FAULT_ENV, runScenario, sleep, TIMING, type FaultWindow } from "./harness.js";

// Faults on the servers of this file's own (free ports, temporary data), never the shared ones:
// each scenario causes one fault under write load and checks every guarantee afterwards.

let nats: NatsServer;
let pg: PostgresServer;
let redis: RedisServer;
let mesh: Mesh;
const figures: object[] = [];
/** The processes with a Postgres pool. */
const DATABASE_USERS = ["auth", "workspace", "task", "export", "notify"];

beforeAll(async () => {
  [nats, pg, redis] = await Promise.all([NatsServer.create(), PostgresServer.create(), RedisServer.create()]);
  await Promise.all([nats.start(), pg.start(), redis.start()]);
  const admin = postgres(pg.url("postgres"), { max: 1, onnotice: () => undefined });
  await admin.unsafe("create database taskboard");
  await admin.end();
  mesh = await Mesh.start({
    gateways: 2,
    servers: { natsUrl: nats.url, redisUrl: redis.url, databaseUrl: pg.url("taskboard") },
    env: FAULT_ENV,
  });
}, 180_000);

afterAll(async () => {
  console.log(JSON.stringify({ faults: figures }, null, 1));
  await mesh?.stop();
  await Promise.all([nats?.destroy(), pg?.destroy(), redis?.destroy()]);
}, 60_000);

/** A process's readiness (its admin port's /readyz). */
async function ready(label: string): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${mesh.processes.get(label)!.ports["admin"]}/readyz`).catch(() => undefined);
  return res?.status === 200;
}

/**
 * Stops a server with `down`, waits the outage, starts it with `up`. The processes that
 * need it (`dependents`) report not ready while it is away and ready again by themselves.
 */
async function outage(down: () => Promise<void>, up: () => Promise<void>, dependents: string[]): Promise<FaultWindow> {
  const downAt = Date.now();
  await down();
  for (const label of dependents) await waitFor(`${label} to report not ready`, async () => !(await ready(label)), TIMING.outageMs, 100);
  await sleep(TIMING.outageMs);
  await up();
  const upAt = Date.now();
  for (const label of dependents) await waitFor(`${label} to be ready again`, () => ready(label), 15_000, 100);
  return { downAt, upAt };
}

async function scenario(name: string, fault: () => Promise<FaultWindow>, killed: string[] = []): Promise<void> {
  const result = await runScenario({ mesh, name, fault, killed, notifyKilled: killed.includes("notify") });
  figures.push(result);
  console.log(JSON.stringify(result));
  expect(result.ok).toBeGreaterThan(0);
}

describe("faults on one node of each server", () => {
  test("faults: Redis restarted under load: nothing lost, no 500; logins answer 503 while it is away and work again after", async () => {
    const user = await signUp(mesh.api, "RedisLogin");
    const login = () => mesh.api.post("/auth/login", { email: user.email, password: user.password });
    let during = 0;
    await scenario("redis-restart", () =>
      outage(
        async () => {
          await redis.stop();
          during = (await login()).status;
        },
        () => redis.start(),
        ["gateway-1", "gateway-2"],
      ),
    );
    expect(during, "a login while Redis is away").toBe(503);
    await waitFor("logins to work again", async () => (await login()).status === 200, 10_000, 100);
  }, 240_000);

  test("faults: Postgres restarted (fast shutdown) under load: no process exits, 503s at most, nothing committed lost or doubled", async () => {
    await scenario("postgres-restart", () => outage(() => pg.stop(), () => pg.start(), DATABASE_USERS));
  }, 240_000);

  test("faults: Postgres's postmaster killed (-9) and started again under load: the same", async () => {
    await scenario("postgres-kill", () => outage(() => pg.kill(), () => pg.startAfterKill(), DATABASE_USERS));
  }, 240_000);

  test("faults: NATS killed (-9) and restarted on the same store under load: no event lost or doubled, every client gap-free", async () => {
    await scenario("nats-kill", () => outage(() => nats.kill(), () => nats.start(), [...DATABASE_USERS, "gateway-1", "gateway-2"]));
  }, 240_000);

  test("faults: a gateway replica killed (-9): its clients resume on the other with since, gap-free", async () => {
    const victim = mesh.gateways[1]!;
    await scenario(
      "gateway-kill",
      async () => {
        const downAt = Date.now();
        await victim.process.stop("SIGKILL");
        await sleep(TIMING.outageMs);
        return { downAt, upAt: Date.now() };
      },
      ["gateway-2"],
    );
    // The replica comes back for the next scenarios, as Kubernetes would restart it.
    const restarted = await mesh.restart("gateway-2");
    mesh.gateways[1] = { url: `http://127.0.0.1:${restarted.ports["http"]}`, process: restarted };
  }, 240_000);

  test.each([["notify"], ["export"]])("faults: %s killed (-9) mid-batch and restarted: every mail sent once (twice only where notify flags it resent in doubt), every export completed once", async (name) => {
    await scenario(
      `${name}-kill`,
      async () => {
        const downAt = Date.now();
        await mesh.processes.get(name)!.stop("SIGKILL");
        await sleep(TIMING.outageMs);
        await mesh.restart(name);
        return { downAt, upAt: Date.now() };
      },
      [name],
    );
  }, 240_000);
});
