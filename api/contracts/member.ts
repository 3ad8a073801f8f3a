import { z } from "zod";
import { field, out, pageOf } from "./fields.js";
import { userFields } from "./user.js";
import { WorkspaceRole } from "./workspace.js";

/** Workspace members (API.md "Members"): the resource and its inputs, defined once (see task.ts). */

/** Roles a member can be given; "owner" belongs to the creator only. */
export const GrantableRole = z.enum(["admin", "member"], "role must be admin or member").meta({ id: "GrantableRole" });

export const Member = z
  .object({
    workspace_id: out.id(),
    user_id: out.id(),
    name: z.string(),
    email: z.email(),
    role: WorkspaceRole,
    joined_at: out.time(),
  })
  .meta({ id: "Member" });
export type Member = z.output<typeof Member>;

export const MemberList = pageOf(Member, "MemberList");

export const AddMember = z
  .strictObject({ user_id: field.id("user_id").optional(), email: userFields.email.optional(), role: GrantableRole })
  .refine((b) => (b.user_id === undefined) !== (b.email === undefined), { message: "exactly one of user_id or email is required" })
  .meta({ id: "AddMemberRequest", description: "Exactly one of `user_id` or `email`." });

export const UpdateMember = z.strictObject({ role: GrantableRole }).meta({ id: "UpdateMemberRequest" });
