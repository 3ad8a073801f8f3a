import { connect as netConnect, createServer, type AddressInfo, type Socket } from "node:net";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { classifyError } from "../internal/platform/failures.js";
import { createLogger } from "../internal/platform/logger.js";
import { createPostgres } from "../internal/platform/postgres.js";
import { PostgresServer } from "./support/fault-servers.js";
import { withDatabase } from "./support/databases.js";

// postgres.js 3.4.9 throws from a timer (an uncaught TypeError that ends the process) when a
// query is sent on a reserved or transaction connection whose backend went away, and a pooled
// connection torn down with a write pending never writes again. patches/postgres+3.4.9.patch
// fixes both; these tests fail (vitest reports the uncaught error) without it.

let sql: postgres.Sql;
let killer: postgres.Sql;

beforeAll(() => {
  const url = withDatabase(inject("servers").databaseUrl, "postgres");
  sql = postgres(url, { max: 3, onnotice: () => undefined });
  killer = postgres(url, { max: 1, onnotice: () => undefined });
});

afterAll(async () => {
  await sql?.end({ timeout: 2 });
  await killer?.end({ timeout: 2 });
});

async function terminate(pid: number): Promise<void> {
  await killer`select pg_terminate_backend(${pid})`;
  // Let the close reach the client.
  await new Promise((resolve) => setTimeout(resolve, 100));
}

describe("postgres driver: a connection that dies under a caller", () => {
  it("postgres driver: a reserved connection whose backend was terminated rejects every later query with a connection error", async () => {
    const reserved = await sql.reserve();
    const [row] = await reserved<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await terminate(row!.pid);
    for (let i = 0; i < 3; i++) {
      const error = await reserved`select 1`.then(() => undefined, (e: unknown) => e);
      expect(error, `query ${i + 1} after the backend died`).toBeDefined();
      expect(classifyError(error).code).toBe("dependency_unavailable");
    }
    reserved.release();
    // The pool itself recovers: a fresh query answers.
    const [row2] = await sql<{ one: number }[]>`select 1 as one`;
    expect(row2?.one).toBe(1);
  });

  it("postgres driver: a transaction whose backend was terminated rejects, rolls nothing onto another session, and the pool answers after", async () => {
    const outcome = await sql
      .begin(async (tx) => {
        const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
        await terminate(row!.pid);
        await tx`select 1`; // fails: the connection is gone
        await tx`select 2`; // never sent
      })
      .then(() => "committed", (e: unknown) => e);
    expect(outcome).not.toBe("committed");
    expect(classifyError(outcome).code).toBe("dependency_unavailable");
    const rows = await Promise.all([1, 2, 3, 4].map((n) => sql<{ n: number }[]>`select ${n}::int as n`));
    expect(rows.map((r) => r[0]!.n)).toEqual([1, 2, 3, 4]);
  });

  it("postgres driver: queries pipelined on a pooled connection when it dies fail, and the pool serves the next ones", async () => {
    const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const pending = Array.from({ length: 20 }, (_, n) => sql`select pg_sleep(0.05), ${n}::int as n`.then(() => "ok", (e: unknown) => e));
    await killer`select pg_terminate_backend(${row!.pid})`;
    const results = await Promise.all(pending);
    for (const r of results) if (r !== "ok") expect(classifyError(r).code).toBe("dependency_unavailable");
    const after = await Promise.all(Array.from({ length: 10 }, (_, n) => sql<{ n: number }[]>`select ${n}::int as n`));
    expect(after.map((r) => r[0]!.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe("postgres driver: a connection reset under a caller", () => {
  it("postgres driver: a query sent on a reserved connection right after it was reset (between the socket's error and its close) is settled, not left waiting", async () => {
    const target = new URL(withDatabase(inject("servers").databaseUrl, "postgres"));
    const clients: Socket[] = [];
    // A TCP proxy that can reset its client side, as a dead backend's host does (ECONNRESET).
    const proxy = createServer((client) => {
      clients.push(client);
      const upstream = netConnect(Number(target.port || 5432), target.hostname);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const port = (proxy.address() as AddressInfo).port;
    const pool = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => undefined });
    try {
      const reserved = await pool.reserve();
      await reserved`select 1`;
      const first = reserved`select pg_sleep(5)`;
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const client of clients) client.resetAndDestroy();
      // The caller reacts to the failure at once (the outbox relay unlocks its lock): before the close event.
      const second = await first.then(
        () => "first succeeded",
        () => within(5_000, reserved`select pg_advisory_unlock(1)`.then(() => "answered", (e: unknown) => classifyError(e).code)),
      );
      expect(second).toBe("dependency_unavailable");
      reserved.release();
    } finally {
      await pool.end({ timeout: 1 });
      proxy.close();
    }
  });
});

describe("postgres pools: a server that goes away and comes back", () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await PostgresServer.create();
    await server.start();
  }, 60_000);

  afterAll(async () => {
    await server?.destroy();
  });

  it.each([["the default socket", false], ["the no-delay socket (export's COPY)", true]])(
    "postgres pools: with %s, queries fail while the server is down (refused, killed) and succeed once it is back, without a hang",
    async (_, noDelay) => {
      const pool = createPostgres(server.url("postgres"), { poolSize: 3, applicationName: "driver-test", log: createLogger("test", "silent"), noDelay });
      try {
        const answers = () => Promise.all([1, 2, 3, 4, 5, 6].map((n) => pool<{ n: number }[]>`select ${n}::int as n`.then((r) => r[0]!.n)));
        expect(await answers()).toEqual([1, 2, 3, 4, 5, 6]);
        for (const down of [() => server.stop(), () => server.kill()]) {
          await down();
          const refused = await within(20_000, Promise.allSettled([1, 2, 3, 4].map((n) => pool`select ${n}::int`)));
          expect(refused, "queries while the server is down").not.toBe("hung");
          for (const r of refused as PromiseSettledResult<unknown>[]) expect(r.status === "rejected" && classifyError(r.reason).code, "refused while down").toBe("dependency_unavailable");
          await server.startAfterKill();
          // Every pool slot must connect again (a slot lost to a failed connect would hang these).
          expect(await within(20_000, answers())).toEqual([1, 2, 3, 4, 5, 6]);
        }
      } finally {
        await pool.end({ timeout: 2 });
      }
    },
    90_000,
  );
});

/** The promise's value, or "hung" when it takes longer than `ms`. */
function within<T>(ms: number, promise: Promise<T>): Promise<T | "hung"> {
  return Promise.race([promise, new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), ms))]);
}
