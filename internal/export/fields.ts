import { z } from "zod";

export const EXPORT_TYPES = ["tasks", "comments"] as const;
export const EXPORT_FORMATS = ["csv", "json"] as const;
export const EXPORT_STATUSES = ["pending", "running", "completed", "failed"] as const;

export type ExportType = (typeof EXPORT_TYPES)[number];
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

/** Export fields, shared by the gateway's request schemas and the service. */
export const exportFields = {
  type: z.enum(EXPORT_TYPES, `type must be one of ${EXPORT_TYPES.join(", ")}`),
  format: z.enum(EXPORT_FORMATS, `format must be one of ${EXPORT_FORMATS.join(", ")}`),
};

/** The content type of each format, as the download serves it. */
export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: "text/csv; charset=utf-8",
  json: "application/json",
};
