import type { DownloadChunk } from "../../../api/gen/taskboard/export/v1/export.js";
import { AppError } from "../../platform/errors.js";
import { json, route, type Route } from "../router.js";
import { presentExportJob, presentPage } from "../presenters.js";
import { CreateExport, ExportFile, ExportJob, ExportJobList } from "../../../api/contracts/export-job.js";
import { pageQuery } from "../../../api/contracts/fields.js";
import { onBehalfOf, type Services } from "../services.js";

/** How long one download may take end to end (a slow client on a large file); the gRPC deadline of the stream. */
const DOWNLOAD_TIMEOUT_MS = 60 * 60_000;

export function exportRoutes(services: Services): Route[] {
  const exports = services.export;
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/exports",
      auth: "user",
      body: CreateExport,
      doc: {
        operationId: "createExport",
        summary: "Start an export job",
        description: "Who: member. The job runs asynchronously; poll it or watch `export.*` events.",
        tag: "Exports",
        ok: { status: 202, description: "The accepted job.", schema: ExportJob },
      },
      handle: async (ctx) => {
        const job = await exports.call("createExport", { workspace_id: ctx.params.workspace_id!, ...ctx.body }, onBehalfOf(ctx));
        return json(202, presentExportJob(job));
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/exports",
      auth: "user",
      query: pageQuery,
      doc: {
        operationId: "listExports",
        summary: "List the export jobs of a workspace",
        description: "Who: member. Newest first; jobs expire (with their files) 7 days after they were created.",
        tag: "Exports",
        ok: { status: 200, description: "A page of export jobs.", schema: ExportJobList },
      },
      handle: async (ctx) => {
        const list = await exports.call(
          "listExports",
          { workspace_id: ctx.params.workspace_id!, page: { limit: ctx.query.limit ?? 0, cursor: ctx.query.cursor ?? "" } },
          onBehalfOf(ctx),
        );
        return json(200, presentPage(list, presentExportJob));
      },
    }),
    route({
      method: "get",
      path: "/exports/{job_id}",
      auth: "user",
      doc: {
        operationId: "getExport",
        summary: "Get an export job",
        description: "Who: member (of the job's workspace).",
        tag: "Exports",
        ok: { status: 200, description: "The job.", schema: ExportJob },
      },
      handle: async (ctx) => json(200, presentExportJob(await exports.call("getExport", { job_id: ctx.params.job_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/exports/{job_id}/download",
      auth: "user",
      doc: {
        operationId: "downloadExport",
        summary: "Download the exported file",
        description: "Who: member (of the job's workspace). Available once the job is `completed`; 409 (`not_ready`) before. The file is streamed (chunked transfer), named `<type>-<yyyymmdd>-<first 8 characters of the job id>.<format>`. CSV (`text/csv; charset=utf-8`) has a header row, CRLF line ends, RFC 4180 quoting, no byte order mark, cells starting with `=`, `+`, `-`, `@`, tab or carriage return prefixed with a single quote (formula injection), and a list (such as a task's labels) joined with `;`. JSON (`application/json`) is an array of the API's Task or Comment objects.",
        tag: "Exports",
        ok: { status: 200, description: "The file, as an attachment.", contentType: "text/csv, application/json", contentSchemas: { "application/json": ExportFile } },
        errors: [409],
      },
      handle: async (ctx) => {
        // The export service streams the file; the router writes it out with backpressure, which
        // (through gRPC flow control) slows the export service's reads from Postgres to the client's pace.
        const messages = exports.stream(
          "download",
          { job_id: ctx.params.job_id! },
          { ...onBehalfOf(ctx), timeoutMs: DOWNLOAD_TIMEOUT_MS, signal: ctx.signal },
        );
        // The first message is the file's name and type, or the call's error (404, 409 not_ready) before any byte is sent.
        const first = await messages.next();
        const info = first.done ? undefined : first.value.part;
        if (info?.$case !== "info") {
          await messages.return(undefined);
          throw new AppError("internal", "the export service sent no file information");
        }
        return {
          status: 200,
          contentType: info.value.content_type,
          headers: {
            "content-disposition": `attachment; filename="${info.value.filename.replace(/["\\\r\n]/g, "_")}"`,
            "cache-control": "no-store",
          },
          stream: fileBytes(messages, ctx.signal),
        };
      },
    }),
  ];
}

/** The data chunks of a download; ends quietly when the HTTP client went away (that cancels the call). */
async function* fileBytes(messages: AsyncGenerator<DownloadChunk>, signal: AbortSignal): AsyncGenerator<Buffer> {
  try {
    for await (const message of messages) {
      if (message.part?.$case === "data") yield message.part.value;
    }
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
}
