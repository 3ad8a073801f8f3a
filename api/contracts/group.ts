import { z } from "zod";
import { field, out } from "./fields.js";

/** Groups (API.md "Groups"): channels inside a workspace; the resource and its input, defined once. */

export const MAX_GROUPS_PER_WORKSPACE = 100;
export const MAX_GROUP_MEMBERS = 1_000;

export const Group = z
  .object({
    id: out.id(),
    workspace_id: out.id(),
    name: z.string(),
    member_ids: z.array(out.id()).meta({ description: "The members of the group, in the order they joined it." }),
    created_at: out.time(),
  })
  .meta({ id: "Group" });
export type Group = z.output<typeof Group>;

export const GroupList = z.object({ items: z.array(Group) }).meta({ id: "GroupList" });

export const CreateGroup = z.strictObject({ name: field.text("name", 100) }).meta({ id: "CreateGroupRequest" });
