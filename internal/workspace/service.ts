import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { User } from "../../api/gen/taskboard/auth/v1/auth.js";
import type {
  AddMemberRequest,
  Member,
  MemberList,
  Membership,
  Workspace,
  WorkspaceList,
} from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { decodeCursor, pageOf, pageSize } from "../platform/cursor.js";
import { AppError, badRequest, forbidden, notFound, unauthorized } from "../platform/errors.js";
import type { Event, Subjects } from "../platform/events.js";
import type { Subscription } from "../platform/durable-consumer.js";
import type { Emit, Outbox } from "../platform/outbox.js";
import type { Principal } from "../platform/principal.js";
import type { TransactionSql } from "../platform/postgres.js";
import { field } from "../../api/contracts/fields.js";
import { GrantableRole } from "../../api/contracts/member.js";
import { userFields } from "../../api/contracts/user.js";
import { CreateWorkspace, UpdateWorkspace, type WorkspaceRole } from "../../api/contracts/workspace.js";
import { parseInput } from "../platform/validate.js";
import { checkRole, MANAGERS, userOf } from "../platform/tenancy.js";
import type { Groups } from "./groups.js";
import { toMember, toWorkspace, type WorkspaceStore } from "./store.js";

/** Resolves users through the auth service. */
export interface UserDirectory {
  /** Users by id or e-mail, asked as this process (never with the caller's token: who may ask is decided here). */
  lookup(query: { user_ids?: string[]; emails?: string[] }): Promise<User[]>;
}

/**
 * Announces committed membership revocations (removals, role changes, deleted
 * workspaces) to services that cache memberships, before the call that made
 * them answers.
 */
export interface MembershipChanges {
  announce(events: Event[]): Promise<void>;
}

const noAnnouncements: MembershipChanges = { announce: async () => undefined };

const workspaceId = field.id("workspace_id");
const userId = field.id("user_id");
const createInput = CreateWorkspace;
const memberRef = z.object({ workspace_id: workspaceId, user_id: userId });

/** The rules of workspaces and membership (API.md "Workspaces"). */
export class WorkspaceService {
  constructor(
    private readonly store: WorkspaceStore,
    private readonly outbox: Outbox,
    private readonly directory: UserDirectory,
    /** The workspace's groups: a member who leaves leaves them too. */
    private readonly groups: Groups,
    private readonly changes: MembershipChanges = noAnnouncements,
  ) {}

  async create(principal: Principal, input: { name: string; description?: string | undefined }): Promise<Workspace> {
    const caller = userOf(principal);
    const { name, description } = parseInput(createInput, input);
    // A deleted account's access token stays valid until it expires: it must not create
    // a workspace that nobody's deletion would ever clean up.
    const [self] = await this.directory.lookup({ user_ids: [caller.userId] });
    if (!self) throw unauthorized("this account no longer exists");
    const id = randomUUID();
    const row = await this.outbox.transaction(async (tx, emit) => {
      const workspace = await this.store.insert(tx, { id, name, description, owner_id: caller.userId });
      await this.store.addMember(tx, { workspace_id: id, user_id: caller.userId, role: "owner" });
      emit({ type: "workspace.created", workspace_id: id, user_id: caller.userId, aggregate_id: id, data: eventData(toWorkspace(workspace, "")) });
      return workspace;
    });
    return toWorkspace(row, "owner");
  }

  async list(principal: Principal, page: { limit: number; cursor: string }): Promise<WorkspaceList> {
    const caller = userOf(principal);
    const limit = pageSize(page.limit);
    const rows = await this.store.pageForUser(caller.userId, decodeCursor(page.cursor), limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.member_seq);
    return { items: items.map((row) => toWorkspace(row, row.role)), next_cursor };
  }

  async get(principal: Principal, input: { workspace_id: string }): Promise<Workspace> {
    const id = parseInput(workspaceId, input.workspace_id);
    const role = await this.roleOf(principal, id);
    const row = await this.store.byId(id);
    if (!row) throw notFound("workspace");
    return toWorkspace(row, role);
  }

  async update(principal: Principal, input: { workspace_id: string; name?: string | undefined; description?: string | undefined }) {
    const workspace_id = parseInput(workspaceId, input.workspace_id);
    const { name, description } = parseInput(UpdateWorkspace, { name: input.name, description: input.description });
    return this.outbox.transaction(async (tx, emit) => {
      const role = await this.requireRole(tx, principal, workspace_id, ["owner", "admin"]);
      const row = await this.store.update(tx, workspace_id, { name, description });
      if (!row) throw notFound("workspace");
      emit({
        type: "workspace.updated",
        workspace_id,
        user_id: userOf(principal).userId,
        aggregate_id: workspace_id,
        data: eventData(toWorkspace(row, "")),
      });
      return toWorkspace(row, role);
    });
  }

  async delete(principal: Principal, input: { workspace_id: string }): Promise<void> {
    const id = parseInput(workspaceId, input.workspace_id);
    await this.changingMembers(async (tx, emit) => {
      await this.requireRole(tx, principal, id, ["owner"]);
      await this.store.delete(tx, id);
      emit({ type: "workspace.deleted", workspace_id: id, user_id: userOf(principal).userId, aggregate_id: id, data: { id } });
    });
  }

  async addMember(principal: Principal, input: AddMemberRequest): Promise<Member> {
    const caller = userOf(principal);
    const id = parseInput(workspaceId, input.workspace_id);
    const role = parseInput(GrantableRole, input.role);
    if (!input.who) throw badRequest("user_id or email is required");
    // Check the caller's permission before looking anyone up: neither a non-member nor a
    // plain member learns whether an address has an account (404 or 403 for everyone alike).
    await this.roleOf(principal, id, undefined, MANAGERS);
    const who =
      input.who.$case === "user_id"
        ? { user_ids: [parseInput(userId, input.who.value)] }
        : { emails: [parseInput(userFields.email, input.who.value.trim())] };
    const [profile] = await this.directory.lookup(who);
    if (!profile) throw notFound("user");
    return this.changingMembers(async (tx, emit) => {
      await this.requireRole(tx, principal, id, ["owner", "admin"]);
      const row = await this.store.addMember(tx, { workspace_id: id, user_id: profile.id, role });
      if (!row) throw new AppError("conflict", "already a member of this workspace");
      const member = toMember(row, profile);
      emit({ type: "member.added", workspace_id: id, user_id: caller.userId, aggregate_id: profile.id, data: eventData(member) });
      return member;
    });
  }

  async listMembers(principal: Principal, input: { workspace_id: string; page: { limit: number; cursor: string } | undefined }) {
    const id = parseInput(workspaceId, input.workspace_id);
    await this.roleOf(principal, id);
    const limit = pageSize(input.page?.limit ?? 0);
    const rows = await this.store.pageMembers(id, decodeCursor(input.page?.cursor ?? ""), limit);
    const { items, next_cursor } = pageOf(rows, limit, (row) => row.seq);
    const profiles = await this.profiles(items.map((row) => row.user_id));
    return { items: items.map((row) => toMember(row, profiles.get(row.user_id))), next_cursor } satisfies MemberList;
  }

  async updateMember(principal: Principal, input: { workspace_id: string; user_id: string; role: string }): Promise<Member> {
    const { workspace_id, user_id } = parseInput(memberRef, input);
    const role = parseInput(GrantableRole, input.role);
    await this.roleOf(principal, workspace_id);
    const profile = (await this.profiles([user_id])).get(user_id);
    return this.changingMembers(async (tx, emit) => {
      await this.requireRole(tx, principal, workspace_id, ["owner"]);
      const target = await this.store.membership(workspace_id, user_id, tx);
      if (!target) throw notFound("member");
      if (target.role === "owner") throw forbidden("the owner's role cannot be changed");
      const member = toMember((await this.store.setRole(tx, workspace_id, user_id, role))!, profile);
      emit({
        type: "member.role_changed",
        workspace_id,
        user_id: userOf(principal).userId,
        aggregate_id: user_id,
        data: eventData(member),
      });
      return member;
    });
  }

  async removeMember(principal: Principal, input: { workspace_id: string; user_id: string }): Promise<void> {
    const caller = userOf(principal);
    const { workspace_id, user_id } = parseInput(memberRef, input);
    await this.changingMembers(async (tx, emit) => {
      const leaving = caller.userId === user_id;
      await this.requireRole(tx, principal, workspace_id, leaving ? ["owner", "admin", "member"] : ["owner", "admin"]);
      const target = await this.store.membership(workspace_id, user_id, tx);
      if (!target) throw notFound("member");
      if (target.role === "owner") throw forbidden("the owner cannot be removed");
      await this.store.removeMember(tx, workspace_id, user_id);
      await this.groups.leaveAll(tx, emit, principal, workspace_id, user_id);
      emit({
        type: "member.removed",
        workspace_id,
        user_id: caller.userId,
        aggregate_id: user_id,
        data: { id: user_id, workspace_id, user_id },
      });
    });
  }

  /** A user's role; a user may ask about themself, a service about anyone. */
  async membership(principal: Principal, input: { workspace_id: string; user_id: string }): Promise<Membership> {
    const { workspace_id, user_id } = parseInput(memberRef, input);
    if (principal.kind === "user" && principal.userId !== user_id) throw notFound("membership");
    const row = await this.store.membership(workspace_id, user_id);
    if (!row) throw notFound("membership");
    return { workspace_id, user_id, role: row.role };
  }

  /** Every member's id (internal callers only: no profiles, no paging). */
  async memberIds(input: { workspace_id: string }): Promise<{ user_ids: string[] }> {
    return { user_ids: await this.store.memberIds(parseInput(workspaceId, input.workspace_id)) };
  }

  /** A deleted user leaves every workspace; the workspaces they own are deleted. */
  /** The events this service acts on. */
  subscriptions(subjects: Subjects): Subscription[] {
    return [
      {
        durable: "workspace-user-deletions",
        filterSubject: subjects.of({ type: "user.deleted" }),
        startAt: "all",
        handle: (event) => this.removeUser(event.aggregate_id),
      },
    ];
  }

  async removeUser(deletedUserId: string): Promise<void> {
    await this.changingMembers(async (tx, emit) => {
      for (const id of await this.store.ownedBy(tx, deletedUserId)) {
        await this.store.delete(tx, id);
        emit({ type: "workspace.deleted", workspace_id: id, user_id: deletedUserId, aggregate_id: id, data: { id } });
      }
      for (const row of await this.store.membershipsOf(tx, deletedUserId)) {
        await this.store.removeMember(tx, row.workspace_id, deletedUserId);
        emit({
          type: "member.removed",
          workspace_id: row.workspace_id,
          user_id: deletedUserId,
          aggregate_id: deletedUserId,
          data: { id: deletedUserId, workspace_id: row.workspace_id, user_id: deletedUserId },
        });
      }
    });
  }

  /** An outbox transaction that changes who belongs where: its events are announced once committed, before the call answers. */
  private async changingMembers<T>(work: (tx: TransactionSql, emit: Emit) => Promise<T>): Promise<T> {
    const events: Event[] = [];
    const result = await this.outbox.transaction((tx, emit) =>
      work(tx, (input) => {
        const event = emit(input);
        events.push(event);
        return event;
      }),
    );
    await this.changes.announce(events);
    return result;
  }

  /** The caller's role, read here (the workspace service keeps memberships), checked by tenancy.ts. */
  private async roleOf(principal: Principal, id: string, tx?: TransactionSql, allowed?: readonly WorkspaceRole[]): Promise<WorkspaceRole> {
    return checkRole((await this.store.membership(id, userOf(principal).userId, tx))?.role, "workspace", allowed);
  }

  private requireRole(tx: TransactionSql, principal: Principal, id: string, allowed: readonly WorkspaceRole[]): Promise<WorkspaceRole> {
    return this.roleOf(principal, id, tx, allowed);
  }

  private async profiles(userIds: string[]): Promise<Map<string, User>> {
    if (userIds.length === 0) return new Map();
    const users = await this.directory.lookup({ user_ids: userIds });
    return new Map(users.map((u) => [u.id, u]));
  }
}

/** An event's data: the resource as a plain JSON object. */
function eventData(resource: object): Record<string, unknown> {
  return { ...resource } as Record<string, unknown>;
}
