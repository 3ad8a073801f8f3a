import type { TokenPair, User } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { Member, Workspace } from "../../api/gen/taskboard/workspace/v1/workspace.js";

/** The JSON shapes of API.md, built field by field from service messages. */

export const presentUser = (u: User) => ({
  id: u.id,
  name: u.name,
  email: u.email,
  role: u.role,
  email_notifications: u.email_notifications,
  created_at: u.created_at,
});

export const presentTokens = (t: TokenPair) => ({
  access_token: t.access_token,
  refresh_token: t.refresh_token,
  expires_in: t.expires_in,
  token_type: t.token_type,
});

export const presentWorkspace = (w: Workspace) => ({
  id: w.id,
  name: w.name,
  description: w.description,
  owner_id: w.owner_id,
  role: w.role,
  created_at: w.created_at,
});

export const presentMember = (m: Member) => ({
  workspace_id: m.workspace_id,
  user_id: m.user_id,
  name: m.name,
  email: m.email,
  role: m.role,
  joined_at: m.joined_at,
});

/** A list page: `next_cursor` is null on the last page. */
export function presentPage<T, R>(list: { items: T[]; next_cursor: string }, present: (item: T) => R) {
  return { items: list.items.map(present), next_cursor: list.next_cursor || null };
}

/** Tasks and comments: the same shapes the task service puts in event data. */
export { commentResource as presentComment, taskResource as presentTask } from "../task/resources.js";

/** Export jobs: the same shape the export service puts in event data. */
export { exportJobResource as presentExportJob } from "../export/resources.js";
