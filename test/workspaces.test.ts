import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { WorkspaceServiceClient } from "../api/gen/taskboard/workspace/v1/workspace.js";
import { EventTap } from "./support/events.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";

let mesh: Mesh;
let tap: EventTap;

beforeAll(async () => {
  mesh = await Mesh.start();
  tap = new EventTap(await mesh.nats(), mesh.id);
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

type Role = "owner" | "admin" | "member" | "outsider";

interface Cast {
  workspaceId: string;
  owner: SignedUp;
  admin: SignedUp;
  member: SignedUp;
  /** A second plain member, the target of member operations. */
  other: SignedUp;
  outsider: SignedUp;
  /** A registered user who is not (yet) a member. */
  newcomer: SignedUp;
}

/** A fresh workspace with an owner, an admin, two members, an outsider and a newcomer. */
async function cast(): Promise<Cast> {
  const [owner, admin, member, other, outsider, newcomer] = await Promise.all(
    ["Owner", "Admin", "Member", "Other", "Outsider", "Newcomer"].map((name) => signUp(mesh.api, name)),
  );
  const ws = await owner!.api.post("/workspaces", { name: "Matrix", description: "permissions" });
  expect(ws.status).toBe(201);
  for (const [user, role] of [
    [admin!, "admin"],
    [member!, "member"],
    [other!, "member"],
  ] as const) {
    expect((await owner!.api.post(`/workspaces/${ws.body.id}/members`, { user_id: user.id, role })).status).toBe(201);
  }
  return { workspaceId: ws.body.id, owner: owner!, admin: admin!, member: member!, other: other!, outsider: outsider!, newcomer: newcomer! };
}

type Action = (c: Cast, actor: SignedUp) => Promise<{ status: number }>;

// Every workspace route, with the status each role gets (API.md "Workspaces").
const matrix: [string, Action, Record<Role, number>][] = [
  ["GET workspace", (c, a) => a.api.get(`/workspaces/${c.workspaceId}`), { owner: 200, admin: 200, member: 200, outsider: 404 }],
  [
    "PUT workspace",
    (c, a) => a.api.put(`/workspaces/${c.workspaceId}`, { name: "Renamed" }),
    { owner: 200, admin: 200, member: 403, outsider: 404 },
  ],
  ["DELETE workspace", (c, a) => a.api.delete(`/workspaces/${c.workspaceId}`), { owner: 204, admin: 403, member: 403, outsider: 404 }],
  [
    "POST member",
    (c, a) => a.api.post(`/workspaces/${c.workspaceId}/members`, { email: c.newcomer.email, role: "member" }),
    { owner: 201, admin: 201, member: 403, outsider: 404 },
  ],
  ["GET members", (c, a) => a.api.get(`/workspaces/${c.workspaceId}/members`), { owner: 200, admin: 200, member: 200, outsider: 404 }],
  [
    "PUT member role",
    (c, a) => a.api.put(`/workspaces/${c.workspaceId}/members/${c.other.id}`, { role: "admin" }),
    { owner: 200, admin: 403, member: 403, outsider: 404 },
  ],
  [
    "PUT the owner's role",
    (c, a) => a.api.put(`/workspaces/${c.workspaceId}/members/${c.owner.id}`, { role: "member" }),
    { owner: 403, admin: 403, member: 403, outsider: 404 },
  ],
  [
    "DELETE another member",
    (c, a) => a.api.delete(`/workspaces/${c.workspaceId}/members/${c.other.id}`),
    { owner: 204, admin: 204, member: 403, outsider: 404 },
  ],
  [
    "DELETE oneself (leave)",
    (c, a) => a.api.delete(`/workspaces/${c.workspaceId}/members/${a.id}`),
    { owner: 403, admin: 204, member: 204, outsider: 404 },
  ],
  [
    "DELETE the owner",
    (c, a) => a.api.delete(`/workspaces/${c.workspaceId}/members/${c.owner.id}`),
    { owner: 403, admin: 403, member: 403, outsider: 404 },
  ],
];

const cases = matrix.flatMap(([name, action, expected]) =>
  (Object.keys(expected) as Role[]).map((role) => [name, role, expected[role], action] as const),
);

describe("permission matrix", () => {
  test.each(cases)("workspaces: %s as %s answers %i", async (_, role, status, action) => {
    const c = await cast();
    const res = await action(c, c[role]);
    expect(res.status).toBe(status);
  });

  test("workspaces: the list holds exactly the caller's workspaces, with the caller's role", async () => {
    const c = await cast();
    for (const role of ["owner", "admin", "member"] as const) {
      const list = await c[role].api.get("/workspaces");
      expect(list.status).toBe(200);
      expect(list.body.items).toEqual([expect.objectContaining({ id: c.workspaceId, role, owner_id: c.owner.id })]);
    }
    expect((await c.outsider.api.get("/workspaces")).body.items).toEqual([]);
  });

  test("workspaces: a system admin who is not a member gets 404 like anyone else", async () => {
    const c = await cast();
    const res = await c.outsider.api.get(`/workspaces/${c.workspaceId}/members`);
    expect(res.status).toBe(404);
    expect(JSON.stringify(res.body)).not.toContain(c.owner.email);
  });
});

describe("members", () => {
  test("members: added by e-mail or id, listed with name and e-mail, page by page", async () => {
    const c = await cast();
    const added = await c.owner.api.post(`/workspaces/${c.workspaceId}/members`, { email: c.newcomer.email.toUpperCase(), role: "admin" });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({
      workspace_id: c.workspaceId,
      user_id: c.newcomer.id,
      name: "Newcomer",
      email: c.newcomer.email,
      role: "admin",
      joined_at: expect.any(String),
    });
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { user_id: string; email: string }[]; next_cursor: string | null } } = await c.member.api.get(
        `/workspaces/${c.workspaceId}/members?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      ids.push(...page.body.items.map((m) => m.user_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(ids).toEqual([c.owner.id, c.admin.id, c.member.id, c.other.id, c.newcomer.id]);
  });

  test.each([
    ["an unknown e-mail", (c: Cast) => ({ email: "ghost@example.com", role: "member" }), 404],
    ["an unknown user id", (c: Cast) => ({ user_id: "00000000-0000-4000-8000-000000000000", role: "member" }), 404],
    ["an existing member", (c: Cast) => ({ user_id: c.member.id, role: "member" }), 409],
    ["the role owner", (c: Cast) => ({ user_id: c.newcomer.id, role: "owner" }), 400],
    ["both user_id and email", (c: Cast) => ({ user_id: c.newcomer.id, email: c.newcomer.email, role: "member" }), 400],
    ["neither user_id nor email", () => ({ role: "member" }), 400],
  ] as const)("members: adding %s is refused", async (_, body, status) => {
    const c = await cast();
    const res = await c.owner.api.post(`/workspaces/${c.workspaceId}/members`, body(c));
    expect(res.status).toBe(status);
    const members = await c.owner.api.get(`/workspaces/${c.workspaceId}/members`);
    expect(members.body.items).toHaveLength(4);
  });

  test("members: a plain member cannot learn whether an address has an account: known and unknown addresses both answer 403, alike", async () => {
    const c = await cast();
    const known = await c.member.api.post(`/workspaces/${c.workspaceId}/members`, { email: c.newcomer.email, role: "member" });
    const unknown = await c.member.api.post(`/workspaces/${c.workspaceId}/members`, { email: "nobody-here@example.com", role: "member" });
    expect([known.status, unknown.status]).toEqual([403, 403]);
    expect(known.body).toEqual(unknown.body);
  });

  test("members: a removed member loses access at once", async () => {
    const c = await cast();
    expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}/members/${c.member.id}`)).status).toBe(204);
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}`)).status).toBe(404);
  });

  test("members: the internal id list (notify's) holds exactly the members, and refuses a user's token", async () => {
    const c = await cast();
    expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}/members/${c.other.id}`)).status).toBe(204);
    const client = mesh.grpcClient(WorkspaceServiceClient, "workspace", "notify");
    try {
      const { user_ids } = await client.call("listMemberIds", { workspace_id: c.workspaceId }, { internal: true });
      expect(user_ids.sort()).toEqual([c.owner.id, c.admin.id, c.member.id].sort());
      const unknown = await client.call("listMemberIds", { workspace_id: "00000000-0000-4000-8000-000000000000" }, { internal: true });
      expect(unknown.user_ids).toEqual([]);
      await expect(client.call("listMemberIds", { workspace_id: c.workspaceId }, { token: c.owner.accessToken })).rejects.toMatchObject({ code: "forbidden" });
      await expect(client.call("listMemberIds", { workspace_id: "nope" }, { internal: true })).rejects.toMatchObject({ code: "validation_failed" });
      // The profiles (ListMembers) are for members only, never a process's credential.
      await expect(client.call("listMembers", { workspace_id: c.workspaceId, page: undefined }, { internal: true })).rejects.toMatchObject({ code: "forbidden" });
    } finally {
      client.close();
    }
  });

  test("members: deleting a user removes their memberships and deletes the workspaces they own", async () => {
    const c = await cast();
    const own = await c.member.api.post("/workspaces", { name: "Mine" });
    expect((await c.member.api.delete(`/users/${c.member.id}`)).status).toBe(204);
    await waitFor("the deleted user's membership to go", async () => {
      const list = await c.owner.api.get(`/workspaces/${c.workspaceId}/members`);
      return !list.body.items.some((m: { user_id: string }) => m.user_id === c.member.id);
    });
    await tap.waitFor("workspace.deleted of the owned workspace", (s) => s.event.type === "workspace.deleted" && s.event.workspace_id === own.body.id);
    const rows = await mesh.sql()`select count(*)::int as n from workspace.workspaces where id = ${own.body.id}`;
    expect(rows[0]!.n).toBe(0);
    // The deleted user's access token is still unexpired; it creates nothing any more.
    const orphan = await c.member.api.post("/workspaces", { name: "Orphan" });
    expect(orphan.status).toBe(401);
    const owned = await mesh.sql()`select count(*)::int as n from workspace.workspaces where owner_id = ${c.member.id}`;
    expect(owned[0]!.n).toBe(0);
  });
});

describe("events", () => {
  test("events: every workspace change publishes its event on the subject of ARCHITECTURE.md", async () => {
    const c = await cast();
    const ws = c.workspaceId;
    await c.owner.api.put(`/workspaces/${ws}`, { description: "changed" });
    await c.owner.api.post(`/workspaces/${ws}/members`, { user_id: c.newcomer.id, role: "member" });
    await c.owner.api.put(`/workspaces/${ws}/members/${c.newcomer.id}`, { role: "admin" });
    await c.owner.api.delete(`/workspaces/${ws}/members/${c.newcomer.id}`);
    await c.owner.api.delete(`/workspaces/${ws}`);

    const expected = [
      ["workspace.created", "created", ws],
      ["workspace.updated", "updated", ws],
      ["member.added", "member_added", c.newcomer.id],
      ["member.role_changed", "member_role_changed", c.newcomer.id],
      ["member.removed", "member_removed", c.newcomer.id],
      ["workspace.deleted", "deleted", ws],
    ] as const;
    for (const [type, action, aggregate] of expected) {
      const seen = await tap.waitFor(type, (s) => s.event.type === type && s.event.workspace_id === ws && s.event.aggregate_id === aggregate);
      expect(seen.subject).toBe(`${mesh.id}.workspaces.${ws}.${action}`);
      expect(seen.event).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        type,
        workspace_id: ws,
        user_id: c.owner.id,
        aggregate_id: aggregate,
        data: expect.any(Object),
        timestamp: expect.any(Number),
      });
    }
    const updated = tap.seen.find((s) => s.event.type === "workspace.updated" && s.event.workspace_id === ws)!;
    // The role is the caller's, and every member receives the event: its data carries an empty one.
    expect(updated.event.data).toMatchObject({ id: ws, description: "changed", name: "Matrix", role: "" });
    const added = tap.seen.find((s) => s.event.type === "member.added" && s.event.workspace_id === ws && s.event.aggregate_id === c.newcomer.id)!;
    expect(added.event.data).toMatchObject({ user_id: c.newcomer.id, role: "member", email: c.newcomer.email });
    const removed = tap.seen.find((s) => s.event.type === "member.removed" && s.event.workspace_id === ws)!;
    expect(removed.event.data).toMatchObject({ id: c.newcomer.id });
    // Commit order is publish order for one workspace.
    const order = tap.seen.filter((s) => s.event.workspace_id === ws).map((s) => s.event.type);
    expect(order.slice(-5)).toEqual(["workspace.updated", "member.added", "member.role_changed", "member.removed", "workspace.deleted"]);
  });

  test("events: a refused change publishes nothing", async () => {
    const c = await cast();
    const ofWorkspace = () => tap.seen.filter((s) => s.event.workspace_id === c.workspaceId);
    // The cast itself: workspace.created and three member.added.
    await waitFor("the cast's four events", () => ofWorkspace().length === 4);
    const before = ofWorkspace().length;
    expect((await c.member.api.put(`/workspaces/${c.workspaceId}`, { name: "Nope" })).status).toBe(403);
    expect((await c.owner.api.put(`/workspaces/${c.workspaceId}`, { name: "" })).status).toBe(400);
    // A later accepted change proves the relay ran after the refused ones.
    await c.owner.api.put(`/workspaces/${c.workspaceId}`, { name: "Yes" });
    await tap.waitFor("the accepted update", (s) => s.event.type === "workspace.updated" && s.event.workspace_id === c.workspaceId);
    expect(ofWorkspace().length).toBe(before + 1);
  });
});
