import { z } from "zod";
import { Comment } from "./comment.js";
import { out, pageOf } from "./fields.js";
import { Task } from "./task.js";

/** Export jobs (API.md "Exports"): the resource and its inputs, defined once (see task.ts). */

export const EXPORT_TYPES = ["tasks", "comments"] as const;
export const EXPORT_FORMATS = ["csv", "json"] as const;
export const EXPORT_STATUSES = ["pending", "running", "completed", "failed"] as const;

export const ExportType = z.enum(EXPORT_TYPES, `type must be one of ${EXPORT_TYPES.join(", ")}`).meta({ id: "ExportType" });
export const ExportFormat = z.enum(EXPORT_FORMATS, `format must be one of ${EXPORT_FORMATS.join(", ")}`).meta({ id: "ExportFormat" });
export const ExportStatus = z.enum(EXPORT_STATUSES).meta({ id: "ExportStatus" });

export type ExportType = z.output<typeof ExportType>;
export type ExportFormat = z.output<typeof ExportFormat>;
export type ExportStatus = z.output<typeof ExportStatus>;

/** The content type of each format, as the download serves it. */
export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: "text/csv; charset=utf-8",
  json: "application/json",
};

export const ExportJob = z
  .object({
    id: out.id(),
    workspace_id: out.id(),
    type: ExportType,
    format: ExportFormat,
    status: ExportStatus,
    progress: z.int().min(0).max(100),
    row_count: z.int().min(0),
    error: z.string().nullable().meta({ description: "Why the job failed; null otherwise." }),
    created_by: out.id(),
    created_at: out.time(),
    started_at: out.time().nullable(),
    completed_at: out.time().nullable(),
  })
  .meta({ id: "ExportJob" });
export type ExportJob = z.output<typeof ExportJob>;

export const ExportJobList = pageOf(ExportJob, "ExportJobList");

/** A JSON export file: the workspace's tasks, or its comments, each exactly as the API returns it. */
export const ExportFile = z.union([z.array(Task), z.array(Comment)]).meta({ id: "ExportFile" });

export const CreateExport = z.strictObject({ type: ExportType, format: ExportFormat }).meta({ id: "CreateExportRequest" });
