import { connect, type Socket } from "node:net";
import postgres from "postgres";
import type { Logger } from "./logger.js";

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

/** A postgres.js pool; `undefined` values are written as NULL. */
export function createPostgres(
  url: string,
  options: {
    poolSize: number;
    applicationName: string;
    log: Logger;
    /** Turn Nagle's algorithm off (for COPY; see tcpNoDelay). */
    noDelay?: boolean;
  },
): Sql {
  return postgres(url, {
    ...(options.noDelay ? { socket: tcpNoDelay } : {}),
    max: options.poolSize,
    connection: { application_name: options.applicationName },
    transform: { undefined: null },
    onnotice: (notice) => options.log.debug({ notice: notice.message }, "postgres notice"),
    connect_timeout: 10,
    idle_timeout: 60,
  });
}

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
 * ACK of the data (about 40 ms per COPY on Linux). Hosts are tried in order.
 */
async function tcpNoDelay(options: { host: string[]; port: number[]; path?: string | false; connect_timeout?: number }): Promise<Socket> {
  const timeoutMs = (options.connect_timeout ?? 30) * 1000;
  const targets = options.path ? [{ path: options.path }] : options.host.map((host, i) => ({ host, port: options.port[i] ?? options.port[0]! }));
  let lastError: unknown;
  for (const target of targets) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect({ ...target, noDelay: true });
        const timer = setTimeout(() => {
          socket.destroy();
          reject(Object.assign(new Error(`connecting to Postgres timed out after ${timeoutMs} ms`), { code: "CONNECT_TIMEOUT" }));
        }, timeoutMs);
        socket.once("connect", () => {
          clearTimeout(timer);
          socket.removeAllListeners("error");
          resolve(socket);
        });
        socket.once("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
