import { ExportServiceService } from "../../api/gen/taskboard/export/v1/export.js";
import type { Handlers } from "../platform/grpc-server.js";
import type { ExportService } from "./service.js";

/** gRPC handlers of taskboard.export.v1.ExportService. */
export function exportHandlers(service: ExportService): Handlers<typeof ExportServiceService> {
  return {
    createExport: { access: "user", handle: (req, ctx) => service.createExport(ctx.principal, req) },
    listExports: { access: "user", handle: (req, ctx) => service.listExports(ctx.principal, req) },
    getExport: { access: "user", handle: (req, ctx) => service.getExport(ctx.principal, req) },
    download: { access: "user", stream: (req, ctx, send) => service.download(ctx.principal, req, send, ctx.signal) },
  };
}
