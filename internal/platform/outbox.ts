import { createHash } from "node:crypto";
import type { JetStreamClient, NatsConnection, Subscription } from "nats";
import { Counter, Histogram, type Registry } from "prom-client";
import { newEvent, type Event, type NewEvent, type Subjects } from "./events.js";
import type { Logger } from "./logger.js";
import type { Migration } from "./migrate.js";
import type { PendingQuery, Row } from "postgres";
import { createPostgres, type Sql, type TransactionSql } from "./postgres.js";
import { exponentialBackoff } from "./retry.js";
import type { MsgHdrs } from "nats";
import { inSpan, SpanKind, storableTrace, storedTrace, traceHeaders, traceMessageHeaders } from "./tracing.js";

/** The outbox tables every publishing schema gets before its own migrations. */
export const outboxMigrations: Migration[] = [
  {
    version: "000_outbox",
    sql: `
      create table outbox (
        id bigint generated always as identity primary key,
        subject text not null,
        msg_id uuid not null,
        payload text not null,
        created_at timestamptz not null default clock_timestamp()
      );`,
  },
  {
    // Rows JetStream will never take (over the server's max_payload, a subject it refuses):
    // set aside with the reason, so that they do not hold up every event behind them.
    version: "000_outbox_dead",
    sql: `
      create table outbox_dead (
        id bigint primary key,
        subject text not null,
        msg_id uuid not null,
        payload text not null,
        created_at timestamptz not null,
        error text not null,
        failed_at timestamptz not null default clock_timestamp()
      );`,
  },
  {
    // The W3C trace context of the transaction that wrote the row (JSON of traceparent and
    // tracestate; null when tracing is off), sent with the event as NATS headers (tracing.ts).
    version: "000_outbox_trace_context",
    sql: `alter table outbox add column trace_context text;`,
  },
];

export interface OutboxOptions {
  schema: string;
  /** The relay holds its lock on a connection of its own to this database (the service's). */
  databaseUrl: string;
  /** How often the leader looks for rows without being woken. */
  pollMs?: number;
  batchSize?: number;
  publishTimeoutMs?: number;
}

interface OutboxRow {
  id: string;
  subject: string;
  msg_id: string;
  payload: string;
  created_at: Date;
  trace_context: string | null;
}

/** Publish retries: 100 ms doubling to 5 s. */
const retryPolicy = exponentialBackoff(100, 5_000);

/** The relay's lock session is gone: it must stop relaying (another replica may lead now). */
class LockLost extends Error {
  override name = "LockLost";
  constructor(schema: string, cause: unknown) {
    super(`outbox relay of ${schema} lost its lock session`, { cause });
  }
}

/**
 * Publishes rows so that JetStream stores them in the given order: pipelined
 * (one connection keeps their order), but only once the first of them is
 * stored. Pipelined while JetStream is unavailable, a batch could be split by
 * the moment it comes back (a stream leader elected mid-batch): the first rows
 * refused, later ones stored ahead of them. Returns the rows stored before the
 * first failure and that failure; `orderBroken` when rows after it were stored
 * all the same (JetStream went away and came back within one batch).
 */
export async function publishInOrder<R>(
  rows: R[],
  publish: (row: R) => Promise<unknown>,
): Promise<{ done: R[]; failed?: { row: R; error: unknown }; orderBroken: boolean }> {
  try {
    await publish(rows[0]!);
  } catch (error) {
    return { done: [], failed: { row: rows[0]!, error }, orderBroken: false };
  }
  const results = await Promise.allSettled(rows.slice(1).map(publish));
  const failedAt = results.findIndex((r) => r.status === "rejected");
  if (failedAt === -1) return { done: rows, orderBroken: false };
  return {
    done: rows.slice(0, failedAt + 1),
    failed: { row: rows[failedAt + 1]!, error: (results[failedAt] as PromiseRejectedResult).reason },
    orderBroken: results.slice(failedAt).some((r) => r.status === "fulfilled"),
  };
}

/** A publish failure no retry will mend (NATS error codes and JetStream API error codes). */
function neverPublishable(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { err_code?: number } };
  return e?.code === "MAX_PAYLOAD_EXCEEDED" || e?.code === "BAD_SUBJECT" || e?.api_error?.err_code === 10054;
}

/** Collects the events of one transaction. */
export type Emit = (event: NewEvent) => Event;

/**
 * Transactional outbox (ARCHITECTURE.md guarantee 1): a state change and its
 * events commit together; a relay then publishes them to JetStream with
 * Nats-Msg-Id = event id and deletes them. One replica at a time relays (it
 * holds an advisory lock), publishing in table order (publishInOrder), so
 * per-workspace commit order is kept. Commits wake the relay at once, locally or over NATS;
 * otherwise it polls, so rows left by a NATS outage or a crash go out too.
 */
export class Outbox {
  private readonly pollMs: number;
  private readonly batchSize: number;
  private readonly publishTimeoutMs: number;
  private readonly lockKey: string;
  private readonly wakeSubject: string;
  private readonly encoder = new TextEncoder();
  private readonly published: Counter;
  private readonly failures: Counter;
  private readonly lag: Histogram;
  private readonly deadLettered: Counter;
  private readonly orderBreaks: Counter;
  /** The relay's own connection: its lock lives in this session. */
  private readonly session: Sql;
  /** The backend of the session that holds the lock, and whether that connection has closed since. */
  private sessionPid = 0;
  private sessionLost = true;
  private leader = false;
  private closed = false;
  private dirty = false;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private wakeSubscription: Subscription | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
    private readonly options: OutboxOptions,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.pollMs = options.pollMs ?? 1_000;
    this.batchSize = options.batchSize ?? 500;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5_000;
    this.session = createPostgres(options.databaseUrl, {
      poolSize: 1,
      applicationName: `${options.schema}-outbox-relay`,
      log,
      onClose: () => (this.sessionLost = true),
    });
    this.lockKey = createHash("sha256").update(`taskboard:outbox:${options.schema}`).digest().readBigInt64BE(0).toString();
    this.wakeSubject = subjects.internal(`outbox.${options.schema}`);
    this.published = new Counter({
      name: "taskboard_events_published_total",
      help: "Events published to JetStream by the outbox relay",
      registers: [registry],
    });
    this.failures = new Counter({
      name: "taskboard_events_publish_failures_total",
      help: "Outbox publish attempts that failed (retried later)",
      registers: [registry],
    });
    this.deadLettered = new Counter({
      name: "taskboard_events_dead_lettered_total",
      help: "Outbox rows JetStream refused for good (over max_payload, say), set aside in <schema>.outbox_dead",
      registers: [registry],
    });
    this.orderBreaks = new Counter({
      name: "taskboard_outbox_order_breaks_total",
      help: "Batches in which JetStream stored events after refusing an earlier one (their order is broken; should stay 0)",
      registers: [registry],
    });
    this.lag = new Histogram({
      name: "taskboard_outbox_lag_seconds",
      help: "Time from commit to JetStream acknowledgement",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
      registers: [registry],
    });
  }

  /**
   * Runs `work` in one transaction; the events it emits are written to the
   * outbox last (after the rows they describe, so row locks order them) and
   * published after commit.
   */
  async transaction<T>(work: (tx: TransactionSql, emit: Emit) => Promise<T>): Promise<T> {
    const result = await this.sql.begin(async (tx) => {
      const events: Event[] = [];
      const inputs: NewEvent[] = [];
      const value = await work(tx, (input) => {
        const event = newEvent(input);
        events.push(event);
        inputs.push(input);
        return event;
      });
      if (events.length > 0) await tx`insert into ${tx(this.options.schema)}.outbox ${this.rows(tx, events, inputs)}`;
      return { value, emitted: events.length > 0 };
    });
    if (result.emitted) this.committed();
    return result.value as T;
  }

  /**
   * One data-modifying statement and its events in a single statement, so in one
   * round trip and one implicit transaction (Postgres runs a data-modifying WITH
   * to completion). For inserts of new rows, whose events can be built before the
   * write; changes to existing rows, which must lock them first, use transaction().
   */
  async write(change: (sql: Sql) => PendingQuery<Row[]>, inputs: NewEvent[]): Promise<Event[]> {
    const events = inputs.map(newEvent);
    await this.sql`with changed as (${change(this.sql)}) insert into ${this.sql(this.options.schema)}.outbox ${this.rows(this.sql, events, inputs)}`;
    this.committed();
    return events;
  }

  /** The outbox rows of `events`, each with its input's trace context, or the current one. */
  private rows(sql: Sql | TransactionSql, events: Event[], inputs: NewEvent[]) {
    const current = traceHeaders();
    const rows = events.map((event, i) => ({
      subject: this.subjects.of(event),
      msg_id: event.id,
      payload: JSON.stringify(event),
      trace_context: storableTrace(inputs[i]!.trace ?? current),
    }));
    return sql(rows, "subject", "msg_id", "payload", "trace_context");
  }

  /** Starts the relay: wake-up subscription and leader election. */
  start(): void {
    this.wakeSubscription = this.nc.subscribe(this.wakeSubject, { callback: () => this.wake() });
    this.loop = this.elect();
  }

  async close(): Promise<void> {
    if (this.closed) return this.loop;
    this.closed = true;
    this.wakeSubscription?.unsubscribe();
    this.wake();
    await this.loop;
    await this.session.end({ timeout: 2 });
  }

  get isLeader(): boolean {
    return this.leader;
  }

  private committed(): void {
    if (this.leader) this.wake();
    else if (!this.nc.isClosed()) this.nc.publish(this.wakeSubject);
  }

  private wake(): void {
    this.dirty = true;
    this.wakeUp?.();
  }

  /**
   * Tries for the lock every few poll intervals; leads while it holds it. The
   * lock is a session lock on the relay's own connection (`session`, one
   * connection of its own: a connection reserved from the service's busy pool
   * could wait behind its queries for ever). When that connection closes
   * (Postgres restarted, the backend killed), Postgres releases the lock and
   * another replica may take it: `onclose` marks the session lost at once, and
   * the relay stops before its next publish (see drain).
   */
  private async elect(): Promise<void> {
    while (!this.closed) {
      try {
        const [row] = await this.session<{ locked: boolean; pid: number }[]>`
          select pg_try_advisory_lock(${this.lockKey}::bigint) as locked, pg_backend_pid() as pid`;
        if (row?.locked) {
          this.sessionPid = row.pid;
          this.sessionLost = false;
          this.leader = true;
          this.log.info({ schema: this.options.schema }, "outbox relay leading");
          await this.lead();
        }
      } catch (error) {
        this.log.warn({ err: error, schema: this.options.schema }, "outbox relay lost its database connection");
      } finally {
        if (this.leader) {
          this.leader = false;
          // A lost session took its lock with it; a live one gives it back for the next leader.
          if (!this.sessionLost) await this.session`select pg_advisory_unlock(${this.lockKey}::bigint)`.catch(() => undefined);
        }
      }
      if (!this.closed) await this.idle(this.pollMs * 2);
    }
  }

  /**
   * Relays until closed or the lock's session is lost (drain throws LockLost,
   * which ends the lead). A publish failure (NATS down) is retried with backoff.
   */
  private async lead(): Promise<void> {
    for (let attempt = 0; !this.closed; ) {
      this.dirty = false;
      try {
        await this.drain();
        attempt = 0;
      } catch (error) {
        if (error instanceof LockLost) throw error;
        this.failures.inc();
        this.log.warn({ err: error, schema: this.options.schema }, "outbox publish failed; will retry");
        await this.idle(retryPolicy.backoff(attempt++));
        continue;
      }
      if (!this.dirty) await this.idle(this.pollMs);
    }
  }

  /**
   * Publishes every row, in table order. Rows are read on the lock's own
   * session (a read on a reconnected session, which holds no lock, returns
   * nothing), and nothing is published once that session is known lost; what
   * was published just before is de-duplicated by JetStream (Nats-Msg-Id) if
   * the next leader publishes it again.
   */
  private async drain(): Promise<void> {
    const table = this.sql(this.options.schema);
    for (;;) {
      const rows = await this.session<OutboxRow[]>`
        select id, subject, msg_id, payload, created_at, trace_context from ${table}.outbox
        where pg_backend_pid() = ${this.sessionPid}
        order by id limit ${this.batchSize}`.catch((error: unknown) => {
        throw new LockLost(this.options.schema, error);
      });
      if (this.sessionLost) throw new LockLost(this.options.schema, new Error("the lock's connection closed"));
      if (rows.length === 0 || this.closed) return;
      const { done, failed, orderBroken } = await publishInOrder(rows, (row) => this.publish(row));
      if (orderBroken) {
        this.orderBreaks.inc();
        this.log.error({ schema: this.options.schema, outbox_id: failed?.row.id }, "events of one batch were stored after JetStream refused an earlier one: their order is broken");
      }
      if (done.length > 0) {
        await this.sql`delete from ${table}.outbox where id = any(${done.map((r) => r.id)}::bigint[])`;
        const now = Date.now();
        for (const row of done) this.lag.observe((now - row.created_at.getTime()) / 1000);
        this.published.inc(done.length);
      }
      if (!failed) continue;
      if (!neverPublishable(failed.error)) throw failed.error;
      await this.setAside(failed.row, failed.error);
    }
  }

  /**
   * Publishes one row with Nats-Msg-Id = its event id. A row written in a trace
   * is published in a producer span of that trace, whose context travels in the
   * message's headers (to the consumers and, republished, to the gateways).
   */
  private publish(row: OutboxRow) {
    const send = (headers?: MsgHdrs) =>
      this.js.publish(row.subject, this.encoder.encode(row.payload), { msgID: row.msg_id, timeout: this.publishTimeoutMs, ...(headers ? { headers } : {}) });
    const stored = storedTrace(row.trace_context);
    if (!stored) return send();
    const attributes = { "messaging.system": "nats", "messaging.operation.type": "send", "messaging.destination.name": row.subject, "messaging.message.id": row.msg_id };
    // Tracing off here, the stored context is passed on as it is (inSpan then only runs the send).
    return inSpan("outbox publish", SpanKind.PRODUCER, attributes, async () => send(traceMessageHeaders(traceHeaders() ?? stored.headers)), stored.context);
  }

  /** Moves a row JetStream refuses for good out of the way, with the reason (logged, counted, kept). */
  private async setAside(row: OutboxRow, error: unknown): Promise<void> {
    const table = this.sql(this.options.schema);
    const reason = String((error as { message?: unknown })?.message ?? error).slice(0, 1_000);
    await this.sql`
      with moved as (delete from ${table}.outbox where id = ${row.id} returning id, subject, msg_id, payload, created_at)
      insert into ${table}.outbox_dead (id, subject, msg_id, payload, created_at, error)
      select id, subject, msg_id, payload, created_at, ${reason} from moved`;
    this.deadLettered.inc();
    this.log.error({ schema: this.options.schema, outbox_id: row.id, msg_id: row.msg_id, subject: row.subject, reason }, "event JetStream refuses for good set aside in outbox_dead");
  }

  private idle(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }
}
