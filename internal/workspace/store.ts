import type { Member, Workspace } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import type { Sql, TransactionSql } from "../platform/postgres.js";
import { Member as MemberContract } from "../../api/contracts/member.js";
import { rowToMessage } from "../../api/contracts/shape.js";
import { Workspace as WorkspaceContract } from "../../api/contracts/workspace.js";
import type { WorkspaceRole } from "../../api/contracts/workspace.js";

export interface WorkspaceRow {
  id: string;
  name: string;
  description: string;
  owner_id: string;
  created_at: Date;
}

export interface MembershipRow {
  workspace_id: string;
  user_id: string;
  role: WorkspaceRole;
  seq: string;
  joined_at: Date;
}

const workspaceMessage = rowToMessage<Workspace>(WorkspaceContract);
const memberMessage = rowToMessage<Member>(MemberContract);

/** A row as the service message, with the caller's role ("" in event data, which every member gets). */
export function toWorkspace(row: WorkspaceRow, role: WorkspaceRole | ""): Workspace {
  return workspaceMessage({ ...row, role });
}

/** A membership row as the service message, with the user's name and e-mail from the auth service. */
export function toMember(row: MembershipRow, profile: { name: string; email: string } | undefined): Member {
  return memberMessage({ ...row, name: profile?.name ?? "", email: profile?.email ?? "" });
}

/** SQL over workspace.workspaces and workspace.members. */
export class WorkspaceStore {
  constructor(private readonly sql: Sql) {}

  async insert(tx: TransactionSql, workspace: { id: string; name: string; description: string; owner_id: string }) {
    const [row] = await tx<WorkspaceRow[]>`insert into workspace.workspaces ${tx(workspace)} returning *`;
    return row!;
  }

  async byId(id: string, tx: Sql | TransactionSql = this.sql): Promise<WorkspaceRow | undefined> {
    const [row] = await tx<WorkspaceRow[]>`select * from workspace.workspaces where id = ${id}`;
    return row;
  }

  async update(tx: TransactionSql, id: string, changes: { name?: string | undefined; description?: string | undefined }) {
    const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
    if (Object.keys(set).length === 0) return this.byId(id, tx);
    const [row] = await tx<WorkspaceRow[]>`
      update workspace.workspaces set ${tx(set)}, updated_at = now() where id = ${id} returning *`;
    return row;
  }

  async delete(tx: TransactionSql, id: string): Promise<boolean> {
    return (await tx`delete from workspace.workspaces where id = ${id} returning id`).length > 0;
  }

  /** The caller's workspaces with their role, `limit + 1` after `after` (a members.seq), in join order. */
  async pageForUser(userId: string, after: string | undefined, limit: number) {
    return this.sql<(WorkspaceRow & { role: WorkspaceRole; member_seq: string })[]>`
      select w.*, m.role, m.seq as member_seq
      from workspace.members m join workspace.workspaces w on w.id = m.workspace_id
      where m.user_id = ${userId} and m.seq > ${after ?? "0"}::bigint
      order by m.seq limit ${limit + 1}`;
  }

  /** Workspaces a user owns (deleted with the user). */
  async ownedBy(tx: TransactionSql, userId: string): Promise<string[]> {
    const rows = await tx<{ id: string }[]>`select id from workspace.workspaces where owner_id = ${userId} for update`;
    return rows.map((r) => r.id);
  }

  async membership(workspaceId: string, userId: string, tx: Sql | TransactionSql = this.sql) {
    const [row] = await tx<MembershipRow[]>`
      select * from workspace.members where workspace_id = ${workspaceId} and user_id = ${userId}`;
    return row;
  }

  async membershipsOf(tx: TransactionSql, userId: string): Promise<MembershipRow[]> {
    return tx<MembershipRow[]>`select * from workspace.members where user_id = ${userId} for update`;
  }

  /** Inserts a member; undefined when they already are one. */
  async addMember(tx: TransactionSql, member: { workspace_id: string; user_id: string; role: WorkspaceRole }) {
    const [row] = await tx<MembershipRow[]>`
      insert into workspace.members ${tx(member)} on conflict do nothing returning *`;
    return row;
  }

  async setRole(tx: TransactionSql, workspaceId: string, userId: string, role: WorkspaceRole) {
    const [row] = await tx<MembershipRow[]>`
      update workspace.members set role = ${role}
      where workspace_id = ${workspaceId} and user_id = ${userId} returning *`;
    return row;
  }

  async removeMember(tx: TransactionSql, workspaceId: string, userId: string): Promise<boolean> {
    const rows = await tx`delete from workspace.members where workspace_id = ${workspaceId} and user_id = ${userId} returning user_id`;
    return rows.length > 0;
  }

  async memberIds(workspaceId: string): Promise<string[]> {
    const rows = await this.sql<{ user_id: string }[]>`select user_id from workspace.members where workspace_id = ${workspaceId}`;
    return rows.map((row) => row.user_id);
  }

  async pageMembers(workspaceId: string, after: string | undefined, limit: number): Promise<MembershipRow[]> {
    return this.sql<MembershipRow[]>`
      select * from workspace.members
      where workspace_id = ${workspaceId} and seq > ${after ?? "0"}::bigint
      order by seq limit ${limit + 1}`;
  }
}
