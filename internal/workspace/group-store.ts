import type { Group } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { Group as GroupContract } from "../../api/contracts/group.js";
import { rowToMessage } from "../../api/contracts/shape.js";
import type { Sql, TransactionSql } from "../platform/postgres.js";

interface GroupRow {
  workspace_id: string;
  id: string;
  name: string;
  member_ids: string[];
  created_at: Date;
}

export const toGroup: (row: GroupRow) => Group = rowToMessage<Group>(GroupContract);

/** SQL over workspace.groups and workspace.group_members. */
export class GroupStore {
  constructor(private readonly sql: Sql) {}

  /** The workspace's groups with their members (joining order), oldest first; only `memberId`'s when given. */
  async groups(workspaceId: string, options: { groupId?: string; memberId?: string } = {}, tx: Sql | TransactionSql = this.sql): Promise<Group[]> {
    const rows = await tx<GroupRow[]>`
      select g.workspace_id, g.id, g.name, g.created_at,
             coalesce(array_agg(m.user_id order by m.added_at, m.user_id) filter (where m.user_id is not null), '{}') as member_ids
      from workspace.groups g
      left join workspace.group_members m on m.workspace_id = g.workspace_id and m.group_id = g.id
      where g.workspace_id = ${workspaceId} ${options.groupId ? tx`and g.id = ${options.groupId}` : tx``}
      group by g.workspace_id, g.id
      ${options.memberId ? tx`having ${options.memberId}::uuid = any(array_agg(m.user_id))` : tx``}
      order by g.created_at, g.id`;
    return rows.map(toGroup);
  }

  async group(workspaceId: string, groupId: string, tx: Sql | TransactionSql = this.sql): Promise<Group | undefined> {
    return (await this.groups(workspaceId, { groupId }, tx))[0];
  }

  async count(tx: TransactionSql, workspaceId: string): Promise<number> {
    const [row] = await tx<{ n: number }[]>`select count(*)::int as n from workspace.groups where workspace_id = ${workspaceId}`;
    return row!.n;
  }

  /** Inserts a group; false when the workspace has a group of that name. */
  async insert(tx: TransactionSql, group: { workspace_id: string; id: string; name: string }): Promise<boolean> {
    const rows = await tx`insert into workspace.groups ${tx(group)} on conflict (workspace_id, name) do nothing returning id`;
    return rows.length > 0;
  }

  async delete(tx: TransactionSql, workspaceId: string, groupId: string): Promise<boolean> {
    return (await tx`delete from workspace.groups where workspace_id = ${workspaceId} and id = ${groupId} returning id`).length > 0;
  }

  /** The group, locked until the transaction ends (its members change one at a time). */
  async lock(tx: TransactionSql, workspaceId: string, groupId: string): Promise<{ members: number } | undefined> {
    const [row] = await tx<{ id: string }[]>`
      select id from workspace.groups where workspace_id = ${workspaceId} and id = ${groupId} for update`;
    if (!row) return undefined;
    const [count] = await tx<{ n: number }[]>`
      select count(*)::int as n from workspace.group_members where workspace_id = ${workspaceId} and group_id = ${groupId}`;
    return { members: count!.n };
  }

  /** Adds a member; false when they were one already. */
  async addMember(tx: TransactionSql, workspaceId: string, groupId: string, userId: string): Promise<boolean> {
    const rows = await tx`
      insert into workspace.group_members (workspace_id, group_id, user_id) values (${workspaceId}, ${groupId}, ${userId})
      on conflict do nothing returning user_id`;
    return rows.length > 0;
  }

  /** Removes a member; false when they were none. */
  async removeMember(tx: TransactionSql, workspaceId: string, groupId: string, userId: string): Promise<boolean> {
    const rows = await tx`
      delete from workspace.group_members where workspace_id = ${workspaceId} and group_id = ${groupId} and user_id = ${userId}
      returning user_id`;
    return rows.length > 0;
  }

  /** Removes a user from every group of the workspace (they left it); the groups they were in. */
  async removeEverywhere(tx: TransactionSql, workspaceId: string, userId: string): Promise<string[]> {
    const rows = await tx<{ group_id: string }[]>`
      delete from workspace.group_members where workspace_id = ${workspaceId} and user_id = ${userId} returning group_id`;
    return rows.map((r) => r.group_id);
  }
}
