import { presenter } from "../../api/contracts/shape.js";
import { Comment } from "../../api/contracts/comment.js";
import { ExportJob } from "../../api/contracts/export-job.js";
import { Group } from "../../api/contracts/group.js";
import { Member } from "../../api/contracts/member.js";
import { Task } from "../../api/contracts/task.js";
import { TokenPair, User } from "../../api/contracts/user.js";
import { Workspace } from "../../api/contracts/workspace.js";

/** The JSON shapes of API.md, each presented from its contract (api/contracts). */

export const presentUser = presenter(User);
export const presentTokens = presenter(TokenPair);
export const presentWorkspace = presenter(Workspace);
export const presentMember = presenter(Member);
export const presentTask = presenter(Task);
export const presentComment = presenter(Comment);
export const presentExportJob = presenter(ExportJob);
export const presentGroup = presenter(Group);

/** A list page: `next_cursor` is null on the last page. */
export function presentPage<T, R>(list: { items: T[]; next_cursor: string }, present: (item: T) => R) {
  return { items: list.items.map(present), next_cursor: list.next_cursor || null };
}
