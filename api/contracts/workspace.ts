import { z } from "zod";
import { field, out, pageOf, partialUpdate } from "./fields.js";

/** Workspaces (API.md "Workspaces"): the resource and its inputs, defined once (see task.ts). */

export const WORKSPACE_ROLES = ["owner", "admin", "member"] as const;
export const WorkspaceRole = z.enum(WORKSPACE_ROLES).meta({ id: "WorkspaceRole" });
export type WorkspaceRole = z.output<typeof WorkspaceRole>;

const writable = {
  name: field.text("name", 100),
  description: field.optionalText("description", 2000),
};

export const Workspace = z
  .object({
    id: out.id(),
    name: z.string(),
    description: z.string(),
    owner_id: out.id(),
    role: z
      .union([WorkspaceRole, z.literal("")])
      .meta({ description: "The caller's role; empty in event data, which every member receives." }),
    created_at: out.time(),
  })
  .meta({ id: "Workspace" });
export type Workspace = z.output<typeof Workspace>;

export const WorkspaceList = pageOf(Workspace, "WorkspaceList");

export const CreateWorkspace = z
  .strictObject({ name: writable.name, description: writable.description.default("") })
  .meta({ id: "CreateWorkspaceRequest" });

export const UpdateWorkspace = partialUpdate(
  { name: writable.name.optional(), description: writable.description.optional() },
  "UpdateWorkspaceRequest",
);
