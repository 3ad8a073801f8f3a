import type { ExportJob } from "../../api/gen/taskboard/export/v1/export.js";
import type { NewEvent } from "../platform/events.js";

/**
 * The JSON shape of an export job (API.md "Exports"), built field by field from
 * the service message. The gateway presents it, and the export service puts the
 * very same object in the data of every export.* event.
 */
export const exportJobResource = (j: ExportJob) => ({
  id: j.id,
  workspace_id: j.workspace_id,
  type: j.type,
  format: j.format,
  status: j.status,
  progress: j.progress,
  row_count: j.row_count,
  error: j.error ?? null,
  created_by: j.created_by,
  created_at: j.created_at,
  started_at: j.started_at ?? null,
  completed_at: j.completed_at ?? null,
});

/** An export.* event of a job: its data is the job as the API shows it; the actor is who asked for it. */
export function jobEvent(
  type: "export.created" | "export.progress" | "export.completed" | "export.failed",
  job: ExportJob,
): NewEvent {
  return { type, workspace_id: job.workspace_id, user_id: job.created_by, aggregate_id: job.id, data: exportJobResource(job) };
}
