import { randomUUID } from "node:crypto";
import { z } from "zod";
import { CreateGroup, MAX_GROUP_MEMBERS, MAX_GROUPS_PER_WORKSPACE } from "../../api/contracts/group.js";
import { field } from "../../api/contracts/fields.js";
import type { Group, GroupList } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AppError, notFound, unprocessable } from "../platform/errors.js";
import type { Emit, Outbox } from "../platform/outbox.js";
import type { TransactionSql } from "../platform/postgres.js";
import type { Principal } from "../platform/principal.js";
import { checkRole, MANAGERS, userOf } from "../platform/tenancy.js";
import { parseInput } from "../platform/validate.js";
import type { GroupStore } from "./group-store.js";
import type { WorkspaceStore } from "./store.js";

const workspaceId = field.id("workspace_id");
const groupRef = z.object({ workspace_id: workspaceId, group_id: field.id("group_id") });
const groupMemberRef = groupRef.extend({ user_id: field.id("user_id") });

/**
 * Groups inside a workspace (API.md "Groups"). Owners and admins create, delete and
 * fill them; a member sees the groups they belong to; the gateway reads them all (its
 * rooms deliver group messages to group members only). Every change is an event of the
 * whole workspace, with the group as it is after it.
 */
export class Groups {
  constructor(
    private readonly groups: GroupStore,
    private readonly workspaces: WorkspaceStore,
    private readonly outbox: Outbox,
  ) {}

  async create(principal: Principal, input: { workspace_id: string; name: string }): Promise<Group> {
    const id = parseInput(workspaceId, input.workspace_id);
    const { name } = parseInput(CreateGroup, { name: input.name });
    return this.outbox.transaction(async (tx, emit) => {
      await this.requireManager(tx, principal, id);
      if ((await this.groups.count(tx, id)) >= MAX_GROUPS_PER_WORKSPACE) {
        throw unprocessable(`a workspace has at most ${MAX_GROUPS_PER_WORKSPACE} groups`);
      }
      const groupId = randomUUID();
      if (!(await this.groups.insert(tx, { workspace_id: id, id: groupId, name }))) throw new AppError("conflict", "the workspace has a group of that name");
      const group = (await this.groups.group(id, groupId, tx))!;
      this.emitChange(emit, principal, "group.created", group);
      return group;
    });
  }

  /** Owners and admins: every group; members: theirs; the gateway (an internal caller): every group. */
  async list(principal: Principal, input: { workspace_id: string }): Promise<GroupList> {
    const id = parseInput(workspaceId, input.workspace_id);
    if (principal.kind === "internal") return { items: await this.groups.groups(id) };
    const caller = userOf(principal);
    const role = checkRole((await this.workspaces.membership(id, caller.userId))?.role, "workspace");
    return { items: await this.groups.groups(id, MANAGERS.includes(role) ? {} : { memberId: caller.userId }) };
  }

  async delete(principal: Principal, input: { workspace_id: string; group_id: string }): Promise<void> {
    const { workspace_id, group_id } = parseInput(groupRef, input);
    await this.outbox.transaction(async (tx, emit) => {
      await this.requireManager(tx, principal, workspace_id);
      if (!(await this.groups.delete(tx, workspace_id, group_id))) throw notFound("group");
      emit({ type: "group.deleted", workspace_id, user_id: userOf(principal).userId, aggregate_id: group_id, data: { id: group_id, workspace_id } });
    });
  }

  /** Adds (`join`) or removes a member; nothing changes and nothing is published when it already is so. */
  async setMember(principal: Principal, input: { workspace_id: string; group_id: string; user_id: string }, join: boolean): Promise<Group> {
    const { workspace_id, group_id, user_id } = parseInput(groupMemberRef, input);
    return this.outbox.transaction(async (tx, emit) => {
      await this.requireManager(tx, principal, workspace_id);
      const locked = await this.groups.lock(tx, workspace_id, group_id);
      if (!locked) throw notFound("group");
      let changed: boolean;
      if (join) {
        if (!(await this.workspaces.membership(workspace_id, user_id, tx))) {
          throw unprocessable("the user is not a member of this workspace", { user_id });
        }
        if (locked.members >= MAX_GROUP_MEMBERS) throw unprocessable(`a group has at most ${MAX_GROUP_MEMBERS} members`);
        changed = await this.groups.addMember(tx, workspace_id, group_id, user_id);
      } else {
        changed = await this.groups.removeMember(tx, workspace_id, group_id, user_id);
      }
      const group = (await this.groups.group(workspace_id, group_id, tx))!;
      if (changed) this.emitChange(emit, principal, join ? "group.member_added" : "group.member_removed", group);
      return group;
    });
  }

  /** A user left the workspace: out of every group, each change published (the caller's transaction). */
  async leaveAll(tx: TransactionSql, emit: Emit, principal: Principal, workspace: string, userId: string): Promise<void> {
    for (const groupId of await this.groups.removeEverywhere(tx, workspace, userId)) {
      this.emitChange(emit, principal, "group.member_removed", (await this.groups.group(workspace, groupId, tx))!);
    }
  }

  private emitChange(emit: Emit, principal: Principal, type: "group.created" | "group.member_added" | "group.member_removed", group: Group): void {
    emit({ type, workspace_id: group.workspace_id, user_id: userOf(principal).userId, aggregate_id: group.id, data: { ...group } });
  }

  private async requireManager(tx: TransactionSql, principal: Principal, workspace: string): Promise<void> {
    checkRole((await this.workspaces.membership(workspace, userOf(principal).userId, tx))?.role, "workspace", MANAGERS);
  }
}
