import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EventTap } from "./support/events.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { SseClient } from "./support/sse.js";
import { waitFor } from "./support/wait.js";
import { RoomClient, type Frame } from "./support/ws.js";

// Groups inside a workspace: REST on the workspace service, events to the whole workspace,
// and group messages that reach the group's members only, on every path a client has:
// live WebSocket and SSE on two gateway replicas, catch-up with `since`, the events API
// and the group's history. Nobody outside the group ever sees one of its messages.

let mesh: Mesh;
let tap: EventTap;

beforeAll(async () => {
  mesh = await Mesh.start({ gateways: 2 });
  tap = new EventTap(await mesh.nats(), mesh.id);
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

interface Team {
  workspaceId: string;
  owner: SignedUp;
  admin: SignedUp;
  ann: SignedUp;
  bob: SignedUp;
  cy: SignedUp;
}

async function team(): Promise<Team> {
  const [owner, admin, ann, bob, cy] = await Promise.all(["Owner", "Admin", "Ann", "Bob", "Cy"].map((name) => signUp(mesh.api, name)));
  const workspaceId = (await owner!.api.post("/workspaces", { name: "Groups" })).body.id;
  for (const [user, role] of [[admin!, "admin"], [ann!, "member"], [bob!, "member"], [cy!, "member"]] as const) {
    expect((await owner!.api.post(`/workspaces/${workspaceId}/members`, { user_id: user.id, role })).status).toBe(201);
  }
  return { workspaceId, owner: owner!, admin: admin!, ann: ann!, bob: bob!, cy: cy! };
}

const groupMessages = (frames: Frame[]) => frames.filter((f) => f.type === "custom.message" && f.group_id);

describe("groups", () => {
  test("groups: owners and admins create, fill and delete them; members see their own; every change is an event of the whole workspace", async () => {
    const t = await team();
    const ws = t.workspaceId;
    const created = await t.admin.api.post(`/workspaces/${ws}/groups`, { name: "Design" });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.any(String), workspace_id: ws, name: "Design", member_ids: [], created_at: expect.any(String) });
    const gid = created.body.id;
    expect((await t.owner.api.post(`/workspaces/${ws}/groups`, { name: "Design" })).status).toBe(409);
    expect((await t.ann.api.post(`/workspaces/${ws}/groups`, { name: "Mine" })).status).toBe(403);
    const stranger = await signUp(mesh.api, "Stranger");
    expect((await stranger.api.get(`/workspaces/${ws}/groups`)).status).toBe(404);

    expect((await t.owner.api.put(`/workspaces/${ws}/groups/${gid}/members/${t.ann.id}`)).status).toBe(204);
    expect((await t.owner.api.put(`/workspaces/${ws}/groups/${gid}/members/${t.ann.id}`)).status).toBe(204);
    expect((await t.owner.api.put(`/workspaces/${ws}/groups/${gid}/members/${stranger.id}`)).status).toBe(422);
    expect((await t.ann.api.put(`/workspaces/${ws}/groups/${gid}/members/${t.bob.id}`)).status).toBe(403);
    const other = (await t.owner.api.post(`/workspaces/${ws}/groups`, { name: "Ops" })).body.id;

    expect((await t.owner.api.get(`/workspaces/${ws}/groups`)).body.items.map((g: { name: string }) => g.name)).toEqual(["Design", "Ops"]);
    expect((await t.ann.api.get(`/workspaces/${ws}/groups`)).body.items).toEqual([expect.objectContaining({ id: gid, member_ids: [t.ann.id] })]);
    expect((await t.bob.api.get(`/workspaces/${ws}/groups`)).body.items).toEqual([]);

    expect((await t.owner.api.delete(`/workspaces/${ws}/groups/${other}`)).status).toBe(204);
    expect((await t.owner.api.delete(`/workspaces/${ws}/groups/${other}`)).status).toBe(404);
    const types = () => tap.seen.filter((s) => s.event.workspace_id === ws && s.event.type.startsWith("group.")).map((s) => [s.event.type, s.subject.split(".").slice(1).join(".")]);
    await waitFor("four group events", () => types().length >= 4);
    expect(types()).toEqual([
      ["group.created", `groups.${ws}.created`],
      ["group.member_added", `groups.${ws}.member_added`],
      ["group.created", `groups.${ws}.created`],
      ["group.deleted", `groups.${ws}.deleted`],
    ]);
  });

  test("groups: a group message reaches the group's members only, live on both replicas and both transports; outsiders get nothing, in catch-up, SSE or the events API", async () => {
    const t = await team();
    const ws = t.workspaceId;
    const gid = (await t.owner.api.post(`/workspaces/${ws}/groups`, { name: "Secret" })).body.id;
    for (const user of [t.ann, t.bob]) await t.owner.api.put(`/workspaces/${ws}/groups/${gid}/members/${user.id}`);

    const [g1, g2] = mesh.gateways.map((g) => g.url) as [string, string];
    const ann = await RoomClient.open(g1, ws, t.ann.accessToken);
    const bob = await RoomClient.open(g2, ws, t.bob.accessToken);
    const cy = await RoomClient.open(g1, ws, t.cy.accessToken);
    const cySse = await SseClient.open(g2, ws, { token: t.cy.accessToken });
    const bobSse = await SseClient.open(g1, ws, { token: t.bob.accessToken });
    const owner = await RoomClient.open(g2, ws, t.owner.accessToken);
    const start = cy.connected.seq as number;

    ann.send({ type: "custom.message", group_id: gid, data: { text: "for the group" } });
    // Cy, outside the group, cannot send to it.
    cy.send({ type: "custom.message", group_id: gid, data: { text: "let me in" } });
    const refused = await cy.waitFor("the refusal", (f) => f.type === "error");
    expect(refused).toMatchObject({ code: "forbidden" });
    const broadcast = await t.owner.api.post(`/workspaces/${ws}/groups/${gid}/broadcast`, { content: "from the owner" });
    expect(broadcast.status).toBe(202);
    expect(broadcast.body).toMatchObject({ type: "custom.message", group_id: gid, data: { content: "from the owner", broadcast: true } });
    // Then a message for everyone: once it arrived, everything before it had.
    ann.send({ type: "custom.message", data: { text: "for everyone" } });
    for (const client of [ann, bob, cy, owner]) await client.waitFor("the message for everyone", (f) => f.type === "custom.message" && f.data?.text === "for everyone");
    await waitFor("Cy's SSE has it too", () => cySse.events.some((e) => e.envelope.data?.text === "for everyone"));
    await waitFor("Bob's SSE has it too", () => bobSse.events.some((e) => e.envelope.data?.text === "for everyone"));

    for (const member of [ann, bob]) {
      expect(groupMessages(member.frames).map((f) => [f.group_id, f.data.text ?? f.data.content])).toEqual([
        [gid, "for the group"],
        [gid, "from the owner"],
      ]);
    }
    expect(bobSse.events.filter((e) => e.envelope.group_id).map((e) => e.envelope.data.text ?? e.envelope.data.content)).toEqual(["for the group", "from the owner"]);
    // Outside the group (the owner included: not a member), nothing of it.
    for (const outsider of [cy, owner]) expect(groupMessages(outsider.frames)).toEqual([]);
    expect(cySse.events.filter((e) => e.envelope.group_id)).toEqual([]);

    // Catch-up with `since` (the room's memory; the JetStream read filters the same way, rooms.ts).
    const cyAgain = await RoomClient.open(g2, ws, t.cy.accessToken, start);
    const bobAgain = await RoomClient.open(g1, ws, t.bob.accessToken, start);
    for (const client of [cyAgain, bobAgain]) await client.waitFor("the catch-up", (f) => f.data?.text === "for everyone");
    expect(groupMessages(cyAgain.frames)).toEqual([]);
    expect(groupMessages(bobAgain.frames)).toHaveLength(2);

    // The events API and the group's history.
    const listed = async (user: SignedUp) =>
      ((await user.api.get(`/workspaces/${ws}/events?type=custom.message`)).body.items as Frame[]).concat(
        (await user.api.get(`/workspaces/${ws}/events`)).body.items as Frame[],
      );
    expect((await listed(t.cy)).filter((e) => e.group_id)).toEqual([]);
    expect((await listed(t.bob)).filter((e) => e.group_id).map((e) => e.data.text ?? e.data.content)).toEqual(["for the group", "from the owner"]);
    const history = await t.bob.api.get(`/workspaces/${ws}/groups/${gid}/messages`);
    expect(history.status).toBe(200);
    expect(history.body.items.map((e: Frame) => [e.group_id, e.user_id, e.seq! > 0])).toEqual([
      [gid, t.ann.id, true],
      [gid, t.owner.id, true],
    ]);
    expect((await t.cy.api.get(`/workspaces/${ws}/groups/${gid}/messages`)).status).toBe(404);
    expect((await t.owner.api.get(`/workspaces/${ws}/groups/${gid}/messages`)).status).toBe(403);
    for (const client of [ann, bob, cy, owner, cyAgain, bobAgain]) client.close();
    for (const client of [cySse, bobSse]) client.close();
  });

  test("groups: a member removed from the group receives none of its later messages, on any replica; leaving the workspace leaves its groups", async () => {
    const t = await team();
    const ws = t.workspaceId;
    const gid = (await t.owner.api.post(`/workspaces/${ws}/groups`, { name: "Core" })).body.id;
    for (const user of [t.ann, t.bob]) await t.owner.api.put(`/workspaces/${ws}/groups/${gid}/members/${user.id}`);
    const [g1, g2] = mesh.gateways.map((g) => g.url) as [string, string];
    const ann = await RoomClient.open(g1, ws, t.ann.accessToken);
    const bob = await RoomClient.open(g2, ws, t.bob.accessToken);

    expect((await t.owner.api.delete(`/workspaces/${ws}/groups/${gid}/members/${t.bob.id}`)).status).toBe(204);
    // Right after the answer: Bob is out.
    expect((await t.owner.api.post(`/workspaces/${ws}/groups/${gid}/broadcast`, { content: "after Bob left" })).status).toBe(202);
    await ann.waitFor("the broadcast", (f) => f.data?.content === "after Bob left");
    await t.owner.api.post(`/workspaces/${ws}/broadcast`, { content: "to all" });
    await bob.waitFor("the workspace broadcast", (f) => f.data?.content === "to all");
    expect(groupMessages(bob.frames)).toEqual([]);
    expect(bob.frames.some((f) => f.type === "group.member_removed" && f.data.member_ids.length === 1)).toBe(true);

    // Ann leaves the workspace: out of the group too (an event says so).
    expect((await t.ann.api.delete(`/workspaces/${ws}/members/${t.ann.id}`)).status).toBe(204);
    const groups = (await t.owner.api.get(`/workspaces/${ws}/groups`)).body.items;
    expect(groups).toEqual([expect.objectContaining({ id: gid, member_ids: [] })]);
    await waitFor("the group event of Ann's leaving", () =>
      tap.seen.some((s) => s.event.type === "group.member_removed" && s.event.aggregate_id === gid && (s.event.data?.["member_ids"] as string[]).length === 0),
    );
    ann.close();
    bob.close();
  });
});
