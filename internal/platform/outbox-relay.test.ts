import { randomBytes, randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "nats";
import postgres from "postgres";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { withDatabase } from "../../test/support/databases.js";
import { waitFor } from "../../test/support/wait.js";
import { Subjects } from "./events.js";
import { createLogger } from "./logger.js";
import { Outbox } from "./outbox.js";
import { createPostgres, type Sql } from "./postgres.js";
import { ensureStream } from "./stream.js";

/**
 * The outbox relay's leadership and retry against the run's Postgres and NATS
 * (a database cloned from the migrated template, a stream of its own): one
 * relay leads at a time, another takes over when it goes, and rows wait in
 * the table, in order, while JetStream cannot take them.
 */

const log = createLogger("test", "silent");
const id = randomBytes(4).toString("hex");
const database = `outbox_${id}`;
const subjects = new Subjects(`ob${id}`);
const streamName = `OB${id}`;
const workspaceId = randomUUID();
let admin: postgres.Sql;
let databaseUrl: string;
let sql: Sql;
let nc: NatsConnection;
const relays: Outbox[] = [];

beforeAll(async () => {
  const servers = inject("servers");
  admin = postgres(withDatabase(servers.databaseUrl, "postgres"), { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${database} template ${servers.templateDatabase}`);
  databaseUrl = withDatabase(servers.databaseUrl, database);
  sql = createPostgres(databaseUrl, { poolSize: 4, applicationName: "outbox-test", log });
  nc = await connect({ servers: servers.natsUrl });
});

afterAll(async () => {
  await Promise.all(relays.map((r) => r.close()));
  await sql?.end({ timeout: 2 });
  await (await nc?.jetstreamManager())?.streams.delete(streamName).catch(() => undefined);
  await nc?.close();
  await admin?.unsafe(`drop database if exists ${database} with (force)`);
  await admin?.end();
});

const relay = () => {
  const outbox = new Outbox(sql, nc, nc.jetstream(), subjects, { schema: "task", databaseUrl, pollMs: 200 }, log, new Registry());
  relays.push(outbox);
  outbox.start();
  return outbox;
};

/** Commits `n` events through `outbox`, one transaction each; their aggregate ids in commit order. */
async function commit(outbox: Outbox, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const aggregate = randomUUID();
    await outbox.transaction(async (_tx, emit) => {
      emit({ type: "task.created", workspace_id: workspaceId, aggregate_id: aggregate, data: { i } });
    });
    ids.push(aggregate);
  }
  return ids;
}

/** The aggregate ids the stream holds, in stream order. */
async function stored(): Promise<string[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(streamName).catch(() => undefined);
  const ids: string[] = [];
  for (let seq = info?.state.first_seq ?? 1; info && seq <= info.state.last_seq; seq++) {
    const message = await jsm.streams.getMessage(streamName, { seq });
    ids.push((JSON.parse(new TextDecoder().decode(message.data)) as { aggregate_id: string }).aggregate_id);
  }
  return ids;
}

/** Sessions of this database holding an advisory lock (the relays' leadership). */
async function leaders(): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and a.datname = ${database}`;
  return row!.n;
}

describe("outbox relay", () => {
  test("while JetStream cannot take them, events wait in the table; once it can, they go out in commit order, once", async () => {
    const a = relay();
    const first = await commit(a, 20); // no stream yet: every publish fails and is retried
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const [waiting] = await sql<{ n: number }[]>`select count(*)::int as n from task.outbox`;
    expect(waiting!.n).toBe(20);
    await ensureStream(await nc.jetstreamManager(), subjects, { name: streamName, maxAgeHours: 1, replicas: 1 }, log);
    await waitFor("the waiting events in the stream", async () => (await stored()).length === 20, 30_000, 100);
    expect(await stored()).toEqual(first);
    const [left] = await sql<{ n: number }[]>`select count(*)::int as n from task.outbox`;
    expect(left!.n).toBe(0);
  });

  test("with two relays on one schema one leads; when it stops, the other takes over and nothing is lost, doubled or reordered", async () => {
    const b = relay(); // a second relay beside the first test's
    await waitFor("one relay leading", async () => (await leaders()) === 1, 10_000, 100);
    const before = (await stored()).length;
    const [a] = relays;
    const more = [...(await commit(a!, 15)), ...(await commit(b, 15))];
    await waitFor("the new events in the stream", async () => (await stored()).length === before + 30, 30_000, 100);
    expect((await stored()).slice(before)).toEqual(more);
    expect(await leaders()).toBe(1);

    // The first relay goes (its lock with it); the second must lead and publish what follows.
    await a!.close();
    const after = await commit(b, 10);
    await waitFor("the events after the hand-over", async () => (await stored()).length === before + 40, 30_000, 100);
    expect((await stored()).slice(before + 30)).toEqual(after);
    expect(await leaders()).toBe(1);
  });
});
