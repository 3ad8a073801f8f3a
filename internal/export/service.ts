import { randomUUID } from "node:crypto";
import { z } from "zod";
import type {
  CreateExportRequest,
  DownloadChunk,
  ExportJob,
  ExportJobList,
  ListExportsRequest,
} from "../../api/gen/taskboard/export/v1/export.js";
import { decodeCursor, pageOf, pageSize } from "../platform/cursor.js";
import { AppError, forbidden, notFound } from "../platform/errors.js";
import { workspaceDeletions, type Subscription } from "../platform/durable-consumer.js";
import type { Subjects } from "../platform/events.js";
import type { Logger } from "../platform/logger.js";
import type { Outbox } from "../platform/outbox.js";
import type { Principal } from "../platform/principal.js";
import { parseInput } from "../platform/validate.js";
import { field } from "../../api/contracts/fields.js";
import { Tenancy, userOf, type RoleSource } from "../platform/tenancy.js";
import { CONTENT_TYPES, CreateExport } from "../../api/contracts/export-job.js";
import { jobEvent } from "./resources.js";
import { toExportJob, type ExportStore, type JobRow } from "./store.js";

const workspaceId = field.id("workspace_id");
const jobId = field.id("job_id");

const createInput = CreateExport.extend({ workspace_id: workspaceId });

export interface ExportServiceOptions {
  /** How long a job and its file are kept. */
  retentionHours: number;
  /** Pending and running jobs a workspace may have at once (429 beyond). */
  maxActivePerWorkspace: number;
}

/** The rules of export jobs (API.md "Exports"): members only; the work itself is ExportRunner's. */
export class ExportService {
  private readonly tenancy: Tenancy;

  constructor(
    private readonly store: ExportStore,
    private readonly outbox: Outbox,
    memberships: RoleSource,
    private readonly options: ExportServiceOptions,
  ) {
    this.tenancy = new Tenancy(memberships);
  }

  /** Queues a job: the row and its export.created event (the queue's message) commit together. */
  async createExport(principal: Principal, input: CreateExportRequest): Promise<ExportJob> {
    const job = parseInput(createInput, input);
    const caller = await this.member(principal, job.workspace_id, "workspace");
    return this.outbox.transaction(async (tx, emit) => {
      const { maxActivePerWorkspace } = this.options;
      if ((await this.store.activeJobsLocked(tx, job.workspace_id)) >= maxActivePerWorkspace) {
        throw new AppError("rate_limited", `at most ${maxActivePerWorkspace} exports of a workspace may be pending or running; retry when one is done`, {
          retry_after_seconds: 10,
        });
      }
      const row = await this.store.insertJob(tx, { ...job, id: randomUUID(), created_by: caller.userId }, this.options.retentionHours);
      const created = toExportJob(row);
      emit(jobEvent("export.created", created));
      return created;
    });
  }

  /** A workspace's jobs, newest first. */
  async listExports(principal: Principal, input: ListExportsRequest): Promise<ExportJobList> {
    const ws = parseInput(workspaceId, input.workspace_id);
    const limit = pageSize(input.page?.limit ?? 0);
    const before = decodeCursor(input.page?.cursor ?? "");
    await this.member(principal, ws, "workspace");
    const rows = await this.store.pageJobs(ws, before, limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.seq);
    return { items: items.map(toExportJob), next_cursor };
  }

  async getExport(principal: Principal, input: { job_id: string }): Promise<ExportJob> {
    return toExportJob(await this.visibleJob(principal, input.job_id));
  }

  /**
   * The file of a completed job: its name and type first, then its chunks in
   * order, one read ahead; `send` waits while the caller is slow, so memory
   * stays at about two chunks whatever the file's size.
   */
  async download(principal: Principal, input: { job_id: string }, send: (message: DownloadChunk) => Promise<void>, signal: AbortSignal): Promise<void> {
    const job = await this.visibleJob(principal, input.job_id);
    if (job.status !== "completed" || job.chunk_count === null) {
      throw new AppError("not_ready", `the export is ${job.status}; it can be downloaded once completed`, { status: job.status });
    }
    await send({
      part: {
        $case: "info",
        value: { content_type: CONTENT_TYPES[job.format], filename: filename(job), size: Number(job.file_bytes ?? 0) },
      },
    });
    const read = (n: number) => this.store.chunk(job.workspace_id, job.id, job.attempt, n);
    let next = job.chunk_count > 0 ? read(0) : undefined;
    for (let n = 0; n < job.chunk_count; n++) {
      const data = await next!;
      if (!data) throw notFound("export"); // expired while being downloaded
      next = n + 1 < job.chunk_count ? read(n + 1) : undefined;
      if (signal.aborted) {
        await next?.catch(() => undefined);
        return;
      }
      await send({ part: { $case: "data", value: data } });
    }
  }

  /** A deleted workspace takes its exports with it (idempotent: redelivery finds nothing). */
  async purgeWorkspace(id: string): Promise<number> {
    return this.store.purgeWorkspace(parseInput(workspaceId, id));
  }

  /** The events this service acts on (the export jobs' own queue is the runner's: see queue.ts). */
  subscriptions(subjects: Subjects, log: Logger): Subscription[] {
    return [workspaceDeletions(subjects, "export-workspace-deletions", async (id) => ({ jobs: await this.purgeWorkspace(id) }), log)];
  }

  /** The caller, if a member of the workspace; 404 naming `what` otherwise, as if it did not exist. */
  private async member(principal: Principal, workspace: string, what: string) {
    return (await this.tenancy.member(principal, workspace, { what })).caller;
  }

  /** A job the caller may see (404 for a missing or expired one and for one in another workspace alike). */
  private async visibleJob(principal: Principal, id: string): Promise<JobRow> {
    userOf(principal);
    const job = await this.store.jobById(parseInput(jobId, id));
    if (!job) throw notFound("export");
    await this.member(principal, job.workspace_id, "export");
    return job;
  }
}

/** e.g. tasks-20300102-1a2b3c4d.csv: what, when it was asked for, which job. */
function filename(job: JobRow): string {
  const day = job.created_at.toISOString().slice(0, 10).replaceAll("-", "");
  return `${job.type}-${day}-${job.id.slice(0, 8)}.${job.format}`;
}
