import { connect, type Socket } from "node:net";
import postgres from "postgres";
import type { Logger } from "./logger.js";
import { exponentialBackoff } from "./retry.js";
import { tracedSql } from "./tracing.js";

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

/** A postgres.js pool; `undefined` values are written as NULL; traced when tracing is on (tracing.ts). */
export function createPostgres(
  url: string,
  options: {
    poolSize: number;
    applicationName: string;
    log: Logger;
    /** Turn Nagle's algorithm off (for COPY; see tcpNoDelay). */
    noDelay?: boolean;
    /** Called when a connection of the pool closes (the outbox relay's lock session). */
    onClose?: () => void;
  },
): Sql {
  const sql = postgres(url, {
    ...(options.onClose ? { onclose: options.onClose } : {}),
    ...(options.noDelay ? { socket: tcpNoDelay } : {}),
    max: options.poolSize,
    connection: { application_name: options.applicationName },
    transform: { undefined: null },
    onnotice: (notice) => options.log.debug({ notice: notice.message }, "postgres notice"),
    connect_timeout: 10,
    idle_timeout: 60,
    // postgres.js waits up to 20 s between reconnects (3^failures / 100 s, failures counted
    // across the pool): after a minute-long outage the pool would stay away long after
    // Postgres is back. Retry within a second instead (seconds, as postgres.js counts).
    backoff: (failures: number) => reconnectPolicy.backoff(failures) / 1000,
  });
  return tracedSql(sql);
}

/** Reconnects to Postgres: 50 ms doubling to 1 s. */
const reconnectPolicy = exponentialBackoff(50, 1_000);

/** Resolves when Postgres answers; used at start and by health checks. */
export async function pingPostgres(sql: Sql): Promise<void> {
  await sql`select 1`;
}

/** The SQLSTATE of a Postgres error, if it is one. */
export function pgErrorCode(error: unknown): string | undefined {
  return error instanceof postgres.PostgresError ? error.code : undefined;
}

export const PG_UNIQUE_VIOLATION = "23505";
export const PG_FOREIGN_KEY_VIOLATION = "23503";

/**
 * postgres.js's `socket` option: the connection it would open, with Nagle's
 * algorithm off. postgres.js sends the end of a COPY in a write of its own
 * after the data; with Nagle that small write waits for the server's delayed
 * ACK of the data (about 40 ms per COPY on Linux).
 *
 * The socket is handed over before it is connected (writes wait in it), so
 * that a refused or failed connection reaches postgres.js as the socket's own
 * 'error' and 'close', which it recovers from like any dropped connection. A
 * factory that rejected instead would leave that pool slot connecting forever:
 * after a Postgres outage the pool would hang. postgres.js's connect timeout
 * still applies. The first host is used (Taskboard connects to one).
 */
async function tcpNoDelay(options: { host: string[]; port: number[]; path?: string | false }): Promise<Socket> {
  return options.path ? connect({ path: options.path }) : connect({ host: options.host[0]!, port: options.port[0]!, noDelay: true });
}
