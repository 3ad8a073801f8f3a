import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ExportJob } from "../../api/gen/taskboard/export/v1/export.js";
import type { Sql, TransactionSql } from "../platform/postgres.js";
import { ExportJob as ExportJobContract } from "../../api/contracts/export-job.js";
import { rowToMessage } from "../../api/contracts/shape.js";
import type { ExportFormat, ExportStatus, ExportType } from "../../api/contracts/export-job.js";

export interface JobRow {
  workspace_id: string;
  id: string;
  seq: string;
  type: ExportType;
  format: ExportFormat;
  status: ExportStatus;
  progress: number;
  row_count: string;
  error: string | null;
  created_by: string;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  expires_at: Date;
  attempt: number;
  released: number;
  worker_id: string | null;
  heartbeat_at: Date | null;
  last_error: string | null;
  chunk_count: number | null;
  file_bytes: string | null;
}

export interface NewJob {
  workspace_id: string;
  id: string;
  type: ExportType;
  format: ExportFormat;
  created_by: string;
}

/** One attempt at a job, held by one worker: every write of the attempt is fenced by it. */
export interface Claim {
  workspace_id: string;
  job_id: string;
  attempt: number;
  worker_id: string;
}

/** How an attempt ended, as recorded in export.runs. */
export type RunOutcome = "completed" | "failed" | "retry" | "released" | "lost";

const jobMessage = rowToMessage<ExportJob>(ExportJobContract);

/** A row as the service message: the contract's fields; only a failed job shows its error. */
export function toExportJob(row: JobRow): ExportJob {
  return {
    ...jobMessage(row),
    row_count: Number(row.row_count),
    error: row.status === "failed" ? (row.error ?? "export failed") : undefined,
  };
}

const MAX_SEQ = "9223372036854775807";

/** SQL over export.jobs, export.file_chunks and export.runs; expired jobs are invisible before cleanup deletes them. */
export class ExportStore {
  constructor(private readonly sql: Sql) {}

  async insertJob(tx: TransactionSql, job: NewJob, retentionHours: number): Promise<JobRow> {
    const [row] = await tx<JobRow[]>`
      insert into export.jobs (workspace_id, id, type, format, created_by, expires_at)
      values (${job.workspace_id}, ${job.id}, ${job.type}, ${job.format}, ${job.created_by},
              now() + make_interval(hours => ${retentionHours}))
      returning *`;
    return row!;
  }

  /**
   * How many of the workspace's jobs are pending or running, with the
   * workspace's creations serialised until `tx` ends (so two concurrent
   * creations cannot both see room for one more).
   */
  async activeJobsLocked(tx: TransactionSql, workspaceId: string): Promise<number> {
    await tx`select pg_advisory_xact_lock(hashtextextended(${`export:${workspaceId}`}, 0))`;
    const [row] = await tx<{ n: number }[]>`
      select count(*)::int as n from export.jobs
      where workspace_id = ${workspaceId} and status in ('pending', 'running') and expires_at > now()`;
    return row!.n;
  }

  /** A job by id alone (the caller does not know its workspace yet). */
  async jobById(id: string): Promise<JobRow | undefined> {
    const [row] = await this.sql<JobRow[]>`select * from export.jobs where id = ${id} and expires_at > now()`;
    return row;
  }

  async job(workspaceId: string, id: string): Promise<JobRow | undefined> {
    const [row] = await this.sql<JobRow[]>`
      select * from export.jobs where workspace_id = ${workspaceId} and id = ${id} and expires_at > now()`;
    return row;
  }

  /** Newest first: `limit + 1` jobs created before position `before` (a seq). */
  async pageJobs(workspaceId: string, before: string | undefined, limit: number): Promise<JobRow[]> {
    return this.sql<JobRow[]>`
      select * from export.jobs
      where workspace_id = ${workspaceId} and seq < ${before ?? MAX_SEQ}::bigint and expires_at > now()
      order by seq desc
      limit ${limit + 1}`;
  }

  /**
   * Takes the job for a new attempt when it is pending, or running under a claim
   * whose heartbeat is older than `staleAfterMs` (its worker died). The
   * conditional UPDATE is the lock: of two workers racing, the second one
   * re-reads the row after the first commits and matches nothing.
   */
  async claim(tx: TransactionSql, workspaceId: string, id: string, workerId: string, staleAfterMs: number, maxAttempts: number): Promise<JobRow | undefined> {
    const [row] = await tx<JobRow[]>`
      update export.jobs
      set status = 'running', attempt = attempt + 1, worker_id = ${workerId}, heartbeat_at = now(),
          started_at = coalesce(started_at, now()), progress = 0, row_count = 0
      where workspace_id = ${workspaceId} and id = ${id} and expires_at > now()
        and attempt - released < ${maxAttempts}
        and (status = 'pending' or (status = 'running' and heartbeat_at < now() - make_interval(secs => ${staleAfterMs / 1000})))
      returning *`;
    if (!row) return undefined;
    await tx`
      insert into export.runs (workspace_id, job_id, attempt, worker_id)
      values (${workspaceId}, ${id}, ${row.attempt}, ${workerId})`;
    return row;
  }

  /** The job, locked until the transaction ends, with the age of its claim's heartbeat (by the database's clock). */
  async lockJob(tx: TransactionSql, workspaceId: string, id: string): Promise<(JobRow & { expired: boolean; heartbeat_age_ms: number | null }) | undefined> {
    const [row] = await tx<(JobRow & { expired: boolean; heartbeat_age_ms: number | null })[]>`
      select *, expires_at <= now() as expired,
             (extract(epoch from clock_timestamp() - heartbeat_at) * 1000)::float8 as heartbeat_age_ms
      from export.jobs where workspace_id = ${workspaceId} and id = ${id} for update`;
    return row;
  }

  /** Renews the claim; false when it was lost (taken over, or the job is gone). */
  async heartbeat(claim: Claim): Promise<boolean> {
    const rows = await this.sql`
      update export.jobs set heartbeat_at = now()
      where ${fenced(this.sql, claim)}
      returning 1`;
    return rows.length > 0;
  }

  /**
   * Stores chunk `n` of the attempt's file and records how far it got, in one
   * transaction; false when the claim was lost (nothing is written then).
   */
  async writeChunk(claim: Claim, n: number, data: Buffer, rowCount: number, progress: number): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      const claimed = await tx`
        update export.jobs
        set heartbeat_at = now(), row_count = greatest(row_count, ${rowCount}), progress = greatest(progress, ${progress})
        where ${fenced(tx, claim)}
        returning 1`;
      if (claimed.length === 0) return false;
      // Binary COPY: postgres.js would send a bytea parameter as hex text, a string twice the
      // chunk's size per chunk (CPU, and most of the process's heap churn); COPY sends the bytes.
      const copy = await tx`
        copy export.file_chunks (workspace_id, job_id, attempt, n, data) from stdin with (format binary)`.writable();
      await pipeline(Readable.from(binaryCopyRow(claim, n, data)), copy);
      return true;
    });
  }

  /** Records progress without a chunk (for a progress event); undefined when the claim was lost. */
  async recordProgress(tx: TransactionSql, claim: Claim, rowCount: number, progress: number): Promise<JobRow | undefined> {
    const [row] = await tx<JobRow[]>`
      update export.jobs
      set heartbeat_at = now(), row_count = greatest(row_count, ${rowCount}), progress = greatest(progress, ${progress})
      where ${fenced(tx, claim)}
      returning *`;
    return row;
  }

  /** Completes the attempt: its chunks become the file; other attempts' leftovers go. Undefined when the claim was lost. */
  async complete(tx: TransactionSql, claim: Claim, file: { rowCount: number; chunkCount: number; bytes: number }): Promise<JobRow | undefined> {
    const [row] = await tx<JobRow[]>`
      update export.jobs
      set status = 'completed', progress = 100, row_count = ${file.rowCount}, completed_at = now(),
          chunk_count = ${file.chunkCount}, file_bytes = ${file.bytes}, worker_id = null, heartbeat_at = null, last_error = null
      where ${fenced(tx, claim)}
      returning *`;
    if (!row) return undefined;
    await tx`
      delete from export.file_chunks
      where workspace_id = ${claim.workspace_id} and job_id = ${claim.job_id} and attempt <> ${claim.attempt}`;
    return row;
  }

  /** Ends the job as failed (from a running claim, or from any non-terminal state when `claim` is undefined). */
  async fail(tx: TransactionSql, workspaceId: string, id: string, error: string, claim?: Claim): Promise<JobRow | undefined> {
    const [row] = await tx<JobRow[]>`
      update export.jobs
      set status = 'failed', error = ${error}, completed_at = now(), worker_id = null, heartbeat_at = null
      where ${claim ? fenced(tx, claim) : tx`workspace_id = ${workspaceId} and id = ${id} and status in ('pending', 'running')`}
      returning *`;
    if (!row) return undefined;
    await tx`delete from export.file_chunks where workspace_id = ${workspaceId} and job_id = ${id}`;
    return row;
  }

  /**
   * Gives the job back (pending) for another attempt. `countAttempt: false` (a
   * graceful shutdown) does not use up one of its attempts.
   */
  async release(tx: TransactionSql, claim: Claim, options: { error?: string; countAttempt: boolean }): Promise<JobRow | undefined> {
    const [row] = await tx<JobRow[]>`
      update export.jobs
      set status = 'pending', worker_id = null, heartbeat_at = null,
          released = released + ${options.countAttempt ? 0 : 1},
          last_error = coalesce(${options.error ?? null}, last_error)
      where ${fenced(tx, claim)}
      returning *`;
    if (!row) return undefined;
    await tx`
      delete from export.file_chunks
      where workspace_id = ${claim.workspace_id} and job_id = ${claim.job_id} and attempt = ${claim.attempt}`;
    return row;
  }

  /** Records how an attempt ended (in `tx` when given). */
  async finishRun(claim: Claim, outcome: RunOutcome, rowsWritten: number, tx?: TransactionSql): Promise<void> {
    const sql = tx ?? this.sql;
    await sql`
      update export.runs set finished_at = now(), outcome = ${outcome}, rows_written = ${rowsWritten}
      where workspace_id = ${claim.workspace_id} and job_id = ${claim.job_id} and attempt = ${claim.attempt}
        and worker_id = ${claim.worker_id}`;
  }

  /** Chunk `n` of a completed job's file. */
  async chunk(workspaceId: string, jobId: string, attempt: number, n: number): Promise<Buffer | undefined> {
    const [row] = await this.sql<{ data: Buffer }[]>`
      select data from export.file_chunks
      where workspace_id = ${workspaceId} and job_id = ${jobId} and attempt = ${attempt} and n = ${n}`;
    return row?.data;
  }

  /** Deletes up to `limit` expired jobs (their chunks and runs with them); returns how many. */
  async deleteExpired(limit: number): Promise<number> {
    const rows = await this.sql`
      delete from export.jobs
      where (workspace_id, id) in (select workspace_id, id from export.jobs where expires_at <= now() limit ${limit})
      returning 1`;
    return rows.length;
  }

  /** Deletes every job of a workspace (idempotent). */
  async purgeWorkspace(workspaceId: string): Promise<number> {
    const rows = await this.sql`delete from export.jobs where workspace_id = ${workspaceId} returning 1`;
    return rows.length;
  }
}

const COPY_SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

/**
 * One file_chunks row in PostgreSQL's binary COPY format: the header, one
 * tuple (uuid, uuid, int4, int4, bytea: each a 32-bit length and the value),
 * the trailer. The chunk's bytes go out as they are.
 */
function binaryCopyRow(claim: Claim, n: number, data: Buffer): Buffer[] {
  const head = Buffer.alloc(COPY_SIGNATURE.length + 8 + 2 + (4 + 16) * 2 + (4 + 4) * 2 + 4);
  let at = COPY_SIGNATURE.copy(head, 0);
  at = head.writeInt32BE(0, at); // flags
  at = head.writeInt32BE(0, at); // header extension length
  at = head.writeInt16BE(5, at); // fields
  for (const uuid of [claim.workspace_id, claim.job_id]) {
    at = head.writeInt32BE(16, at);
    at += Buffer.from(uuid.replaceAll("-", ""), "hex").copy(head, at);
  }
  for (const int of [claim.attempt, n]) {
    at = head.writeInt32BE(4, at);
    at = head.writeInt32BE(int, at);
  }
  head.writeInt32BE(data.length, at);
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  return [head, data, trailer];
}

/** The condition that a claim still holds: same attempt, same worker, still running. */
function fenced(sql: Sql | TransactionSql, claim: Claim) {
  return sql`workspace_id = ${claim.workspace_id} and id = ${claim.job_id} and attempt = ${claim.attempt}
    and worker_id = ${claim.worker_id} and status = 'running'`;
}
