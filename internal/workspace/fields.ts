import { z } from "zod";
import { fields } from "../platform/validate.js";

/** Workspace and member fields, shared by the gateway's request schemas and the service. */
export const workspaceFields = {
  name: fields.text("name", 100),
  description: fields.optionalText("description", 2000),
  /** Roles a member can be given; "owner" belongs to the creator only. */
  grantableRole: z.enum(["admin", "member"], "role must be admin or member"),
};

export type { WorkspaceRole } from "../platform/memberships.js";
