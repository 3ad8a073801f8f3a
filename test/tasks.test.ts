import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TaskServiceClient, type Comment, type Task } from "../api/gen/taskboard/task/v1/task.js";
import type { Event } from "../internal/platform/events.js";
import { EventTap } from "./support/events.js";
import { signUp, type Api, type ApiResponse, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";
import type { Task as TaskJson } from "../api/contracts/task.js";

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
  /** A second plain member. */
  other: SignedUp;
  /** A registered user who is not a member. */
  outsider: SignedUp;
}

/** A fresh workspace with an owner, an admin, two members and an outsider. */
async function cast(): Promise<Cast> {
  const [owner, admin, member, other, outsider] = await Promise.all(
    ["Owner", "Admin", "Member", "Other", "Outsider"].map((name) => signUp(mesh.api, name)),
  );
  const ws = await owner!.api.post("/workspaces", { name: "Tasks" });
  expect(ws.status).toBe(201);
  for (const [user, role] of [
    [admin!, "admin"],
    [member!, "member"],
    [other!, "member"],
  ] as const) {
    expect((await owner!.api.post(`/workspaces/${ws.body.id}/members`, { user_id: user.id, role })).status).toBe(201);
  }
  return { workspaceId: ws.body.id, owner: owner!, admin: admin!, member: member!, other: other!, outsider: outsider! };
}

async function createTask(api: Api, workspaceId: string, body: Record<string, unknown> = {}) {
  const res = await api.post(`/workspaces/${workspaceId}/tasks`, { title: "A task", ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as TaskJson;
}

async function createComment(api: Api, workspaceId: string, taskId: string, content = "A comment") {
  const res = await api.post(`/workspaces/${workspaceId}/comments`, { task_id: taskId, content });
  expect(res.status, res.text).toBe(201);
  return res.body as CommentJson;
}

interface CommentJson {
  id: string;
  workspace_id: string;
  task_id: string;
  author_id: string;
  content: string;
  created_at: string;
  updated_at: string;
}

/** Every page of a list, following next_cursor. */
async function allPages<T>(api: Api, path: string, limit: number): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    expect(pages, "too many pages").toBeLessThan(1000);
    const sep = path.includes("?") ? "&" : "?";
    const res: ApiResponse = await api.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(res.status, res.text).toBe(200);
    items.push(...res.body.items);
    cursor = res.body.next_cursor;
    if (!cursor) return items;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const NOBODY = "00000000-0000-4000-8000-000000000000";

describe("tasks", () => {
  test("tasks: created with the defaults", async () => {
    const c = await cast();
    const res = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "  Write the plan  " });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(UUID),
      workspace_id: c.workspaceId,
      title: "Write the plan",
      description: "",
      status: "pending",
      priority: "medium",
      assignee_id: null,
      created_by: c.member.id,
      due_date: null,
      labels: [],
      watcher_ids: [c.member.id],
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    expect((await c.member.api.get(`/tasks/${res.body.id}`)).body).toEqual(res.body);
  });

  test("tasks: labels are set on create (trimmed, repeats dropped), replaced or emptied on update, and carried by the events", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId, { title: "Labelled", labels: [" ops ", "q3", "ops", "日本"] });
    expect(task.labels).toEqual(["ops", "q3", "日本"]);
    expect((await c.member.api.get(`/tasks/${task.id}`)).body.labels).toEqual(["ops", "q3", "日本"]);
    const created = await tap.waitFor("task.created", (s) => s.event.type === "task.created" && s.event.aggregate_id === task.id);
    expect(created.event.data?.["labels"]).toEqual(["ops", "q3", "日本"]);

    const replaced = await c.member.api.put(`/tasks/${task.id}`, { labels: ["urgent"] });
    expect(replaced.status, replaced.text).toBe(200);
    expect(replaced.body).toMatchObject({ labels: ["urgent"], title: "Labelled" });
    const updated = await tap.waitFor("task.updated", (s) => s.event.type === "task.updated" && s.event.aggregate_id === task.id);
    expect(updated.event.data?.["labels"]).toEqual(["urgent"]);
    // Another field's update leaves the labels alone; an empty list empties them.
    expect((await c.member.api.put(`/tasks/${task.id}`, { priority: "high" })).body.labels).toEqual(["urgent"]);
    expect((await c.member.api.put(`/tasks/${task.id}`, { labels: [] })).body.labels).toEqual([]);
  });

  test.each([
    [{ labels: "ops" }, "labels must be a list of strings"],
    [{ labels: [""] }, "a label must not be empty"],
    [{ labels: ["   "] }, "a label must not be empty"],
    [{ labels: ["x".repeat(33)] }, "a label must be at most 32 characters"],
    [{ labels: Array.from({ length: 21 }, (_, i) => `l${i}`) }, "labels must be at most 20"],
    [{ labels: [7] }, "a label must be a string"],
  ])("tasks: labels %j are 400 on create and update", async (body, message) => {
    const c = await cast();
    const created = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "t", ...body });
    expect(created.status).toBe(400);
    expect(created.body.error.message).toContain(message);
    const task = await createTask(c.member.api, c.workspaceId);
    const updated = await c.member.api.put(`/tasks/${task.id}`, body);
    expect(updated.status).toBe(400);
    expect(updated.body.error.message).toContain(message);
  });

  test("tasks: created with every field, the due date normalised to UTC", async () => {
    const c = await cast();
    const body = {
      title: "Ship it",
      description: "All of it",
      status: "in_progress",
      priority: "urgent",
      assignee_id: c.other.id,
      due_date: "2030-01-02T03:04:05+02:00",
    };
    const res = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, body);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ ...body, due_date: "2030-01-02T01:04:05.000Z", created_by: c.member.id });
    expect((await c.owner.api.get(`/tasks/${res.body.id}`)).body).toEqual(res.body);
  });

  test("tasks: null assignee_id and due_date on create mean unset", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId, { assignee_id: null, due_date: null });
    expect(task).toMatchObject({ assignee_id: null, due_date: null });
  });

  test.each([
    ["no title", {}, "title"],
    ["a blank title", { title: "   " }, "title is required"],
    ["a title over 200 characters", { title: "x".repeat(201) }, "title must be at most 200 characters"],
    ["a number for the title", { title: 5 }, "title must be a string"],
    ["a description over 10000 characters", { title: "t", description: "d".repeat(10_001) }, "description must be at most 10000"],
    ["an unknown status", { title: "t", status: "done" }, "status must be one of pending, in_progress, completed, cancelled"],
    ["an unknown priority", { title: "t", priority: "critical" }, "priority must be one of low, medium, high, urgent"],
    ["a date without time", { title: "t", due_date: "2030-01-02" }, "due_date must be an RFC 3339 date-time"],
    ["a date without offset", { title: "t", due_date: "2030-01-02T10:00:00" }, "due_date must be an RFC 3339 date-time"],
    ["an impossible date", { title: "t", due_date: "2030-02-30T10:00:00Z" }, "due_date must be an RFC 3339 date-time"],
    ["an assignee that is not a UUID", { title: "t", assignee_id: "bob" }, "assignee_id must be a UUID"],
    ["an unknown field", { title: "t", created_by: NOBODY }, "created_by"],
    ["an unknown field workspace_id", { title: "t", workspace_id: NOBODY }, "workspace_id"],
  ])("tasks: creating with %s is 400 with a message", async (_, body, message) => {
    const c = await cast();
    const res = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.message).toContain(message);
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}/tasks`)).body.items).toEqual([]);
  });

  test.each([
    ["an empty body", {}, "at least one field is required"],
    ["a blank title", { title: "" }, "title is required"],
    ["an unknown status", { status: "open" }, "status must be one of"],
    ["a bad due date", { due_date: "tomorrow" }, "due_date must be an RFC 3339 date-time"],
    ["an unknown field", { owner: "me" }, "owner"],
  ])("tasks: updating with %s is 400", async (_, body, message) => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const res = await c.member.api.put(`/tasks/${task.id}`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
    expect((await c.member.api.get(`/tasks/${task.id}`)).body).toEqual(task);
  });

  test("tasks: a partial update changes only the given fields", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId, {
      title: "Original",
      description: "Keep me",
      priority: "high",
      assignee_id: c.other.id,
      due_date: "2031-05-06T07:08:09Z",
    });
    const res = await c.other.api.put(`/tasks/${task.id}`, { status: "completed" });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...task, status: "completed", updated_at: expect.stringMatching(ISO) });
    expect(Date.parse(res.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(task.updated_at));
    const cleared = await c.member.api.put(`/tasks/${task.id}`, { assignee_id: null, due_date: null, title: "Renamed" });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toEqual({ ...res.body, title: "Renamed", assignee_id: null, due_date: null, updated_at: expect.any(String) });
  });

  test("tasks: assign sets and null unassigns; a non-member assignee is 422 on assign, create and update", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const assigned = await c.member.api.post(`/tasks/${task.id}/assign`, { assignee_id: c.admin.id });
    expect(assigned.status).toBe(200);
    expect(assigned.body).toMatchObject({ id: task.id, assignee_id: c.admin.id, title: task.title });
    const unassigned = await c.member.api.post(`/tasks/${task.id}/assign`, { assignee_id: null });
    expect(unassigned.status).toBe(200);
    expect(unassigned.body.assignee_id).toBeNull();

    for (const stranger of [c.outsider.id, NOBODY]) {
      const refusals = [
        await c.member.api.post(`/tasks/${task.id}/assign`, { assignee_id: stranger }),
        await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "x", assignee_id: stranger }),
        await c.member.api.put(`/tasks/${task.id}`, { assignee_id: stranger }),
      ];
      for (const res of refusals) {
        expect(res.status).toBe(422);
        expect(res.body.error).toMatchObject({ code: "unprocessable", message: "assignee is not a member of this workspace" });
      }
    }
    expect((await c.member.api.get(`/tasks/${task.id}`)).body.assignee_id).toBeNull();
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}/tasks`)).body.items).toHaveLength(1);
    expect((await c.member.api.post(`/tasks/${task.id}/assign`, {})).status).toBe(400);
    expect((await c.member.api.post(`/tasks/${task.id}/assign`, { assignee_id: "x" })).status).toBe(400);
  });

  test("tasks: the task of another workspace is 404 for a non-member, on every route", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const comment = await createComment(c.member.api, c.workspaceId, task.id);
    const o = c.outsider.api;
    const own = await o.post("/workspaces", { name: "Elsewhere" });
    const answers = [
      await o.get(`/tasks/${task.id}`),
      await o.put(`/tasks/${task.id}`, { title: "mine" }),
      await o.delete(`/tasks/${task.id}`),
      await o.post(`/tasks/${task.id}/assign`, { assignee_id: c.outsider.id }),
      await o.get(`/tasks/${task.id}/comments`),
      await o.get(`/comments/${comment.id}`),
      await o.put(`/comments/${comment.id}`, { content: "mine" }),
      await o.delete(`/comments/${comment.id}`),
      await o.get(`/workspaces/${c.workspaceId}/tasks`),
      await o.post(`/workspaces/${c.workspaceId}/tasks`, { title: "x" }),
      await o.post(`/workspaces/${c.workspaceId}/comments`, { task_id: task.id, content: "x" }),
      // Through their own workspace: the task is not in it.
      await o.post(`/workspaces/${own.body.id}/comments`, { task_id: task.id, content: "x" }),
    ];
    for (const res of answers) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("not_found");
      expect(res.text).not.toContain(task.title);
    }
    expect((await c.member.api.get(`/tasks/${task.id}`)).body).toEqual(task);
    expect((await c.member.api.get(`/comments/${comment.id}`)).body).toEqual(comment);
  });

  test("tasks: unknown ids are 404, malformed ids 400", async () => {
    const c = await cast();
    expect((await c.member.api.get(`/tasks/${NOBODY}`)).status).toBe(404);
    expect((await c.member.api.get(`/comments/${NOBODY}`)).status).toBe(404);
    expect((await c.member.api.get(`/workspaces/${NOBODY}/tasks`)).status).toBe(404);
    expect((await c.member.api.get("/tasks/not-a-uuid")).status).toBe(400);
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}/tasks`, { token: null })).status).toBe(401);
  });
});

// Who may delete a task created by `member`, and a comment written by `member`.
const deletion: [string, Record<Role | "author", number>][] = [
  ["task", { author: 204, owner: 204, admin: 204, member: 403, outsider: 404 }],
  ["comment", { author: 204, owner: 204, admin: 204, member: 403, outsider: 404 }],
];

describe("isolation", () => {
  test("isolation: twenty concurrent creates from different users, one with a year-0 due date: nineteen 201s and one 400", async () => {
    // Set up one by one (twenty argon2 hashes at once can outlast the gRPC deadline on a busy machine);
    // what is concurrent is the creates.
    const users: SignedUp[] = [];
    for (let i = 0; i < 20; i++) users.push(await signUp(mesh.api, `Batch${i}`));
    const workspaces: string[] = [];
    for (const u of users) workspaces.push((await u.api.post("/workspaces", { name: "Own" })).body.id as string);
    const responses = await Promise.all(
      users.map((u, i) => u.api.post(`/workspaces/${workspaces[i]}/tasks`, { title: `task ${i}`, due_date: i === 7 ? "0000-01-01T00:00:00Z" : "2030-01-01T00:00:00Z" })),
    );
    expect(responses.map((r) => r.status)).toEqual(responses.map((_, i) => (i === 7 ? 400 : 201)));
    const stored = await mesh.sql()<{ n: number }[]>`select count(*)::int as n from task.tasks where workspace_id = any(${workspaces}::uuid[])`;
    expect(stored[0]!.n).toBe(19);
  });

  test("isolation: a row the database refuses fails only its own request; the others of its batch commit, with their events", async () => {
    const sql = mesh.sql();
    // A rule only the database knows: the service's validation lets the row through, the statement fails.
    await sql`alter table task.tasks add constraint test_refuses_poison check (title <> 'poison')`;
    try {
      const users: SignedUp[] = [];
      for (let i = 0; i < 12; i++) users.push(await signUp(mesh.api, `Poison${i}`));
      const workspaces: string[] = [];
      for (const u of users) workspaces.push((await u.api.post("/workspaces", { name: "Own" })).body.id as string);
      const responses = await Promise.all(users.map((u, i) => u.api.post(`/workspaces/${workspaces[i]}/tasks`, { title: i === 3 ? "poison" : `fine ${i}` })));
      expect(responses.map((r) => r.status)).toEqual(responses.map((_, i) => (i === 3 ? 500 : 201)));
      expect(responses[3]!.body).toEqual({ error: { code: "internal", message: "internal error" } });
      const ids = responses.filter((r) => r.status === 201).map((r) => r.body.id as string);
      const stored = await sql<{ id: string }[]>`select id from task.tasks where id = any(${ids}::uuid[])`;
      expect(stored).toHaveLength(11);
      for (const id of ids) await tap.waitFor(`task.created of ${id}`, (s) => s.event.type === "task.created" && s.event.aggregate_id === id);
    } finally {
      await sql`alter table task.tasks drop constraint test_refuses_poison`;
    }
  });
});

describe("outbox", () => {
  test("outbox: a row JetStream will never take (over max_payload) is set aside in outbox_dead, and the events behind it go out", async () => {
    const c = await cast();
    const sql = mesh.sql();
    const poison = { subject: `${mesh.id}.tasks.${c.workspaceId}.created`, msg_id: crypto.randomUUID(), payload: JSON.stringify({ id: "x", pad: "y".repeat(2 * 1024 * 1024) }) };
    await sql`insert into task.outbox ${sql(poison)}`;
    const task = await createTask(c.member.api, c.workspaceId, { title: "Behind the poison" });
    await tap.waitFor("the event behind the refused row", (s) => s.event.type === "task.created" && s.event.aggregate_id === task.id);
    const [dead] = await sql<{ msg_id: string; error: string }[]>`select msg_id, error from task.outbox_dead where msg_id = ${poison.msg_id}`;
    expect(dead?.error).toMatch(/payload/i);
    expect((await sql`select 1 from task.outbox where msg_id = ${poison.msg_id}`).length).toBe(0);
  });
});

describe("permissions", () => {
  const cases = deletion.flatMap(([what, expected]) =>
    (Object.keys(expected) as (Role | "author")[]).map((role) => [what, role, expected[role]] as const),
  );

  test.each(cases)("permissions: deleting a member's %s as %s answers %i", async (what, role, status) => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const comment = await createComment(c.member.api, c.workspaceId, task.id);
    const actor = role === "author" ? c.member : role === "member" ? c.other : c[role];
    const path = what === "task" ? `/tasks/${task.id}` : `/comments/${comment.id}`;
    const res = await actor.api.delete(path);
    expect(res.status).toBe(status);
    expect((await c.member.api.get(path)).status).toBe(status === 204 ? 404 : 200);
  });

  test.each([
    ["author", 200],
    ["owner", 403],
    ["admin", 403],
    ["other member", 403],
    ["outsider", 404],
  ] as const)("permissions: editing a comment as %s answers %i", async (who, status) => {
    const c = await cast();
    const task = await createTask(c.owner.api, c.workspaceId);
    const comment = await createComment(c.member.api, c.workspaceId, task.id, "first words");
    const actor = { author: c.member, owner: c.owner, admin: c.admin, "other member": c.other, outsider: c.outsider }[who];
    const res = await actor.api.put(`/comments/${comment.id}`, { content: "second words" });
    expect(res.status).toBe(status);
    const after = (await c.member.api.get(`/comments/${comment.id}`)).body;
    if (status === 200) {
      expect(res.body).toEqual({ ...comment, content: "second words", updated_at: expect.stringMatching(ISO) });
      expect(after).toEqual(res.body);
    } else {
      expect(after).toEqual(comment);
    }
  });

  test("permissions: any member creates, updates and assigns tasks", async () => {
    const c = await cast();
    for (const actor of [c.owner, c.admin, c.member, c.other]) {
      const task = await createTask(actor.api, c.workspaceId, { title: `by ${actor.name}` });
      expect(task.created_by).toBe(actor.id);
      expect((await c.other.api.put(`/tasks/${task.id}`, { priority: "low" })).status).toBe(200);
      expect((await c.member.api.post(`/tasks/${task.id}/assign`, { assignee_id: actor.id })).status).toBe(200);
    }
  });

  test("permissions: deleting a task deletes its comments", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const comment = await createComment(c.other.api, c.workspaceId, task.id);
    expect((await c.member.api.delete(`/tasks/${task.id}`)).status).toBe(204);
    expect((await c.member.api.get(`/comments/${comment.id}`)).status).toBe(404);
    expect((await c.member.api.get(`/tasks/${task.id}/comments`)).status).toBe(404);
  });
});

describe("comments", () => {
  test("comments: created on a task of the workspace, listed oldest first across pages", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const otherTask = await createTask(c.member.api, c.workspaceId);
    const written: CommentJson[] = [];
    for (let i = 0; i < 7; i++) {
      const author = i % 2 === 0 ? c.member : c.owner;
      written.push(await createComment(author.api, c.workspaceId, task.id, `comment ${i}`));
    }
    await createComment(c.member.api, c.workspaceId, otherTask.id, "elsewhere");
    expect(written[0]).toEqual({
      id: expect.stringMatching(UUID),
      workspace_id: c.workspaceId,
      task_id: task.id,
      author_id: c.member.id,
      content: "comment 0",
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    const listed = await allPages<CommentJson>(c.other.api, `/tasks/${task.id}/comments`, 3);
    expect(listed).toEqual(written);
    const firstPage = await c.other.api.get(`/tasks/${task.id}/comments`);
    expect(firstPage.body).toEqual({ items: written, next_cursor: null });
  });

  test.each([
    ["no content", (t: string) => ({ task_id: t }), 400, "content"],
    ["blank content", (t: string) => ({ task_id: t, content: "  " }), 400, "content is required"],
    ["content over 10000 characters", (t: string) => ({ task_id: t, content: "c".repeat(10_001) }), 400, "content must be at most 10000"],
    ["no task_id", () => ({ content: "hi" }), 400, "task_id"],
    ["an unknown field", (t: string) => ({ task_id: t, content: "hi", author_id: NOBODY }), 400, "author_id"],
    ["an unknown task", () => ({ task_id: NOBODY, content: "hi" }), 404, "task not found"],
  ])("comments: creating with %s answers %i", async (_, body, status, message) => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const res = await c.member.api.post(`/workspaces/${c.workspaceId}/comments`, body(task.id));
    expect(res.status).toBe(status);
    expect(res.body.error.message).toContain(message);
    expect((await c.member.api.get(`/tasks/${task.id}/comments`)).body.items).toEqual([]);
  });

  test("comments: a task of another workspace cannot be commented through this one", async () => {
    const c = await cast();
    const mine = await c.member.api.post("/workspaces", { name: "Mine" });
    const foreign = await createTask(c.owner.api, c.workspaceId);
    const res = await c.member.api.post(`/workspaces/${mine.body.id}/comments`, { task_id: foreign.id, content: "x" });
    expect(res.status).toBe(404);
    expect((await c.member.api.get(`/tasks/${foreign.id}/comments`)).body.items).toEqual([]);
  });

  test("comments: updating requires content", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    const comment = await createComment(c.member.api, c.workspaceId, task.id);
    for (const body of [{}, { content: "" }, { content: "x", task_id: task.id }]) {
      expect((await c.member.api.put(`/comments/${comment.id}`, body)).status).toBe(400);
    }
  });
});

describe("lists", () => {
  test("lists: filters by status, priority, assignee and due date, combined with AND", async () => {
    const c = await cast();
    const ws = c.workspaceId;
    const api = c.member.api;
    const a = await createTask(api, ws, { title: "a", status: "completed", priority: "high", assignee_id: c.other.id, due_date: "2030-01-10T00:00:00Z" });
    const b = await createTask(api, ws, { title: "b", status: "pending", priority: "high", due_date: "2030-01-20T00:00:00Z" });
    const d = await createTask(api, ws, { title: "d", status: "completed", priority: "low", assignee_id: c.other.id });
    const e = await createTask(api, ws, { title: "e", priority: "urgent", assignee_id: c.admin.id, due_date: "2030-01-30T00:00:00+05:00" });
    const ids = async (query: string) => {
      const res = await api.get(`/workspaces/${ws}/tasks?${query}`);
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      return res.body.items.map((t: TaskJson) => t.title);
    };
    const table: [string, TaskJson[]][] = [
      ["", [e, d, b, a]],
      ["status=completed", [d, a]],
      ["status=in_progress", []],
      ["priority=high", [b, a]],
      [`assignee_id=${c.other.id}`, [d, a]],
      [`assignee_id=${c.admin.id}`, [e]],
      ["due_before=2030-01-15T00:00:00Z", [a]],
      ["due_after=2030-01-15T00:00:00Z", [e, b]],
      ["due_after=2030-01-10T00:00:00Z&due_before=2030-01-29T20:00:00Z", [e, b]],
      ["due_after=2030-01-10T00:00:00Z&due_before=2030-01-29T18:00:00Z", [b]],
      [`status=completed&priority=high&assignee_id=${c.other.id}`, [a]],
      [`due_before=${encodeURIComponent("2030-01-15T02:00:00+02:00")}`, [a]],
    ];
    for (const [query, expected] of table) expect(await ids(query), query).toEqual(expected.map((t) => t.title));
  });

  test("lists: ?label= finds the tasks carrying the label; repeated, the tasks carrying every one", async () => {
    const c = await cast();
    const ws = c.workspaceId;
    const api = c.member.api;
    await createTask(api, ws, { title: "ops", labels: ["ops"] });
    await createTask(api, ws, { title: "ops+q3", labels: ["q3", "ops"] });
    await createTask(api, ws, { title: "q3", labels: ["q3"] });
    await createTask(api, ws, { title: "none" });
    const titles = async (query: string) => {
      const res = await api.get(`/workspaces/${ws}/tasks?${query}`);
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      return res.body.items.map((t: TaskJson) => t.title);
    };
    expect(await titles("label=ops")).toEqual(["ops+q3", "ops"]);
    expect(await titles("label=q3")).toEqual(["q3", "ops+q3"]);
    expect(await titles("label=ops&label=q3")).toEqual(["ops+q3"]);
    expect(await titles("label=ops&label=nothing")).toEqual([]);
    expect(await titles("label=q3&priority=medium&q=ops")).toEqual(["ops+q3"]);
    expect((await api.get(`/workspaces/${ws}/tasks?label=${"x".repeat(33)}`)).status).toBe(400);
  });

  test.each([
    ["status=done", "status must be one of"],
    ["priority=p1", "priority must be one of"],
    ["assignee_id=bob", "assignee_id must be a UUID"],
    ["due_before=yesterday", "due_before must be an RFC 3339 date-time"],
    ["due_after=2030-01-01", "due_after must be an RFC 3339 date-time"],
    ["q=", "q must not be empty"],
    ["q=%20%2A%21", "q must contain a letter or a digit"],
    [`q=${"x".repeat(201)}`, "q must be at most 200 characters"],
    ["limit=0", "limit"],
    ["limit=201", "limit"],
    ["cursor=garbage", "invalid cursor"],
  ])("lists: the task filter %s is 400", async (query, message) => {
    const c = await cast();
    const res = await c.member.api.get(`/workspaces/${c.workspaceId}/tasks?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
  });

  test("lists: q finds words by prefix, case-insensitively, in title and description", async () => {
    const c = await cast();
    const ws = c.workspaceId;
    const api = c.member.api;
    await createTask(api, ws, { title: "Launch plan", description: "Marketing and press" });
    await createTask(api, ws, { title: "Budget", description: "Numbers for the LAUNCH event" });
    await createTask(api, ws, { title: "Lunch order", description: "Pizza" });
    await createTask(api, ws, { title: "Café menu", description: "e-mail the supplier" });
    const titles = async (q: string) => {
      const res = await api.get(`/workspaces/${ws}/tasks?q=${encodeURIComponent(q)}`);
      expect(res.status, res.text).toBe(200);
      return res.body.items.map((t: TaskJson) => t.title).sort();
    };
    const table: [string, string[]][] = [
      ["lau", ["Budget", "Launch plan"]],
      ["LAUNCH", ["Budget", "Launch plan"]],
      ["launch plan", ["Launch plan"]],
      ["lau pre", ["Launch plan"]],
      ["market", ["Launch plan"]],
      ["pizza", ["Lunch order"]],
      ["l", ["Budget", "Launch plan", "Lunch order"]],
      ["caf", ["Café menu"]],
      ["mail", ["Café menu"]],
      // Query syntax is not interpreted: only the words count.
      ["lau)!&|:*", ["Budget", "Launch plan"]],
      ["unicorn", []],
      ["aunch", []],
    ];
    for (const [q, expected] of table) expect(await titles(q), q).toEqual(expected);
    // Search and filters combine.
    const res = await api.get(`/workspaces/${ws}/tasks?q=lau&priority=urgent`);
    expect(res.body.items).toEqual([]);
  });

  test("lists: tasks come newest first, page by page, without duplicates or gaps while new tasks are inserted", async () => {
    const c = await cast();
    const ws = c.workspaceId;
    const existing: TaskJson[] = [];
    for (let i = 0; i < 11; i++) existing.push(await createTask(c.member.api, ws, { title: `existing ${i}` }));
    const seen: TaskJson[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: ApiResponse = await c.other.api.get(`/workspaces/${ws}/tasks?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items);
      cursor = res.body.next_cursor;
      pages++;
      // Writers keep going between page fetches.
      await Promise.all([createTask(c.member.api, ws, { title: `new ${pages}a` }), createTask(c.owner.api, ws, { title: `new ${pages}b` })]);
    } while (cursor);
    expect(pages).toBe(4);
    expect(seen.map((t) => t.title)).toEqual(existing.map((t) => t.title).reverse());
    const all = await allPages<TaskJson>(c.other.api, `/workspaces/${ws}/tasks`, 200);
    expect(all).toHaveLength(11 + 2 * pages);
    expect(new Set(all.map((t) => t.id)).size).toBe(all.length);
  });
});

describe("memberships", () => {
  test("memberships: a removed member loses access to tasks at once", async () => {
    const c = await cast();
    const task = await createTask(c.owner.api, c.workspaceId);
    // Repeated, so a cached membership that outlives the removal would show.
    for (let round = 0; round < 10; round++) {
      const user = round % 2 === 0 ? c.member : c.other;
      expect((await c.owner.api.post(`/workspaces/${c.workspaceId}/members`, { user_id: user.id, role: "member" })).status).toBe(
        round < 2 ? 409 : 201,
      );
      // Warm every path that checks membership.
      expect((await user.api.get(`/tasks/${task.id}`)).status).toBe(200);
      expect((await user.api.get(`/workspaces/${c.workspaceId}/tasks`)).status).toBe(200);
      expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}/members/${user.id}`)).status).toBe(204);
      expect((await user.api.get(`/tasks/${task.id}`)).status).toBe(404);
      expect((await user.api.get(`/workspaces/${c.workspaceId}/tasks`)).status).toBe(404);
      expect((await user.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "sneaky" })).status).toBe(404);
    }
  });

  test("memberships: the workspace service announces revocations on NATS before the call that made them returns", async () => {
    const c = await cast();
    const nc = await mesh.nats();
    const announced: Event[] = [];
    const subscription = nc.subscribe(mesh.subjects.membershipChanges, {
      callback: (_error, message) => announced.push(JSON.parse(new TextDecoder().decode(message.data)) as Event),
    });
    await nc.flush();
    try {
      // Our flush after each answer returns only after whatever NATS held before it.
      const steps = [
        [() => c.owner.api.delete(`/workspaces/${c.workspaceId}/members/${c.member.id}`), "member.removed", c.member.id],
        [() => c.owner.api.put(`/workspaces/${c.workspaceId}/members/${c.admin.id}`, { role: "member" }), "member.role_changed", c.admin.id],
        [() => c.owner.api.delete(`/workspaces/${c.workspaceId}`), "workspace.deleted", c.workspaceId],
      ] as const;
      for (const [call, type, aggregate] of steps) {
        expect((await call()).status).toBeLessThan(300);
        await nc.flush();
        expect(announced.at(-1)).toMatchObject({ type, workspace_id: c.workspaceId, aggregate_id: aggregate });
      }
      expect(announced.filter((e) => e.workspace_id === c.workspaceId)).toHaveLength(3);
    } finally {
      subscription.unsubscribe();
    }
  });

  test("memberships: a new member has access at once, and a removed assignee can no longer be assigned", async () => {
    const c = await cast();
    const task = await createTask(c.owner.api, c.workspaceId);
    expect((await c.outsider.api.get(`/tasks/${task.id}`)).status).toBe(404);
    expect((await c.owner.api.post(`/tasks/${task.id}/assign`, { assignee_id: c.outsider.id })).status).toBe(422);
    await c.owner.api.post(`/workspaces/${c.workspaceId}/members`, { user_id: c.outsider.id, role: "member" });
    expect((await c.outsider.api.get(`/tasks/${task.id}`)).status).toBe(200);
    expect((await c.owner.api.post(`/tasks/${task.id}/assign`, { assignee_id: c.outsider.id })).status).toBe(200);
    expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}/members/${c.outsider.id}`)).status).toBe(204);
    expect((await c.owner.api.post(`/tasks/${task.id}/assign`, { assignee_id: c.outsider.id })).status).toBe(422);
  });

  test("memberships: a demoted admin can no longer delete others' tasks, at once", async () => {
    const c = await cast();
    const first = await createTask(c.member.api, c.workspaceId);
    const second = await createTask(c.member.api, c.workspaceId);
    expect((await c.admin.api.delete(`/tasks/${first.id}`)).status).toBe(204);
    expect((await c.owner.api.put(`/workspaces/${c.workspaceId}/members/${c.admin.id}`, { role: "member" })).status).toBe(200);
    expect((await c.admin.api.delete(`/tasks/${second.id}`)).status).toBe(403);
  });

  test("memberships: a member who leaves loses access at once", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    expect((await c.member.api.get(`/tasks/${task.id}`)).status).toBe(200);
    expect((await c.member.api.delete(`/workspaces/${c.workspaceId}/members/${c.member.id}`)).status).toBe(204);
    expect((await c.member.api.get(`/tasks/${task.id}`)).status).toBe(404);
  });

  test("memberships: deleting a workspace purges its tasks and comments", async () => {
    const c = await cast();
    const keep = await cast();
    const kept = await createTask(keep.member.api, keep.workspaceId);
    for (let i = 0; i < 3; i++) {
      const task = await createTask(c.member.api, c.workspaceId);
      await createComment(c.member.api, c.workspaceId, task.id);
    }
    const sql = mesh.sql();
    const count = async (ws: string) =>
      (
        await sql<{ tasks: number; comments: number }[]>`
          select (select count(*)::int from task.tasks where workspace_id = ${ws}) as tasks,
                 (select count(*)::int from task.comments where workspace_id = ${ws}) as comments`
      )[0]!;
    expect(await count(c.workspaceId)).toEqual({ tasks: 3, comments: 3 });
    expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}`)).status).toBe(204);
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}/tasks`)).status).toBe(404);
    await waitFor("the deleted workspace's tasks and comments to be purged", async () => {
      const left = await count(c.workspaceId);
      return left.tasks === 0 && left.comments === 0;
    });
    expect((await keep.member.api.get(`/tasks/${kept.id}`)).status).toBe(200);
  });
});

describe("watchers", () => {
  const watcherEvents = (taskId: string) =>
    tap.seen.filter((s) => s.event.aggregate_id === taskId && s.event.type.startsWith("task.watcher_")).map((s) => [s.event.type, s.event.user_id, s.event.data]);

  test("watchers: the creator and every assignee watch a task from the start; members read the list, outsiders get 404", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId, { title: "Watched", assignee_id: c.other.id });
    expect(task.watcher_ids).toEqual([c.member.id, c.other.id]);
    const reassigned = await c.member.api.post(`/tasks/${task.id}/assign`, { assignee_id: c.admin.id });
    expect(reassigned.body.watcher_ids).toEqual([c.member.id, c.other.id, c.admin.id]);
    // Unassigning and editing keep them.
    expect((await c.member.api.put(`/tasks/${task.id}`, { assignee_id: null, title: "Still watched" })).body.watcher_ids).toEqual([c.member.id, c.other.id, c.admin.id]);
    const list = await c.owner.api.get(`/tasks/${task.id}/watchers`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ items: [c.member.id, c.other.id, c.admin.id] });
    expect((await c.outsider.api.get(`/tasks/${task.id}/watchers`)).status).toBe(404);
  });

  test("watchers: a member starts and stops watching (one event each, none when nothing changes); only owners and admins change others'; a non-member is 422", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId, { title: "To watch" });
    const path = (userId: string) => `/tasks/${task.id}/watchers/${userId}`;
    expect((await c.other.api.put(path(c.other.id))).status).toBe(204);
    expect((await c.other.api.put(path(c.other.id))).status).toBe(204);
    expect((await c.other.api.put(path(c.owner.id))).status).toBe(403);
    expect((await c.admin.api.put(path(c.owner.id))).status).toBe(204);
    const stranger = await c.admin.api.put(path(c.outsider.id));
    expect(stranger.status).toBe(422);
    expect(stranger.body.error.details).toEqual({ user_id: c.outsider.id });
    expect((await c.outsider.api.put(path(c.outsider.id))).status).toBe(404);
    expect((await c.other.api.delete(path(c.other.id))).status).toBe(204);
    expect((await c.other.api.delete(path(c.other.id))).status).toBe(204);
    expect((await c.member.api.get(`/tasks/${task.id}`)).body.watcher_ids).toEqual([c.member.id, c.owner.id]);
    await waitFor("three watcher events", () => watcherEvents(task.id).length >= 3);
    expect(watcherEvents(task.id)).toEqual([
      ["task.watcher_added", c.other.id, { task_id: task.id, user_id: c.other.id }],
      ["task.watcher_added", c.admin.id, { task_id: task.id, user_id: c.owner.id }],
      ["task.watcher_removed", c.other.id, { task_id: task.id, user_id: c.other.id }],
    ]);
    const seen = tap.seen.find((s) => s.event.type === "task.watcher_added" && s.event.aggregate_id === task.id)!;
    expect(seen.subject).toBe(`${mesh.id}.tasks.${c.workspaceId}.watcher_added`);
  });
});

describe("events", () => {
  const forWorkspace = (ws: string) => tap.seen.filter((s) => s.event.workspace_id === ws && /^(task|comment)\./.test(s.event.type));

  test("events: a task created with an assignee publishes task.created, then task.assigned, both with the task", async () => {
    const c = await cast();
    const created = await createTask(c.member.api, c.workspaceId, { title: "Born assigned", assignee_id: c.other.id });
    await waitFor("two events", () => forWorkspace(c.workspaceId).length >= 2);
    expect(forWorkspace(c.workspaceId).map((s) => [s.event.type, s.event.aggregate_id, s.event.user_id, s.event.data])).toEqual([
      ["task.created", created.id, c.member.id, created],
      ["task.assigned", created.id, c.member.id, created],
    ]);
  });

  test("events: every task and comment change publishes its event with the resource as data", async () => {
    const c = await cast();
    const ws = c.workspaceId;
    const created = await createTask(c.member.api, ws, { title: "Evented" });
    const updated = (await c.member.api.put(`/tasks/${created.id}`, { status: "in_progress" })).body as TaskJson;
    const reassigned = (await c.member.api.put(`/tasks/${created.id}`, { assignee_id: c.other.id })).body as TaskJson;
    const assigned = (await c.member.api.post(`/tasks/${created.id}/assign`, { assignee_id: null })).body as TaskJson;
    const comment = await createComment(c.other.api, ws, created.id, "hello");
    const edited = (await c.other.api.put(`/comments/${comment.id}`, { content: "hello again" })).body as CommentJson;
    expect((await c.owner.api.delete(`/comments/${comment.id}`)).status).toBe(204);
    expect((await c.admin.api.delete(`/tasks/${created.id}`)).status).toBe(204);

    const expected = [
      ["task.created", "tasks", "created", c.member.id, created.id, created],
      ["task.updated", "tasks", "updated", c.member.id, created.id, updated, ["status"]],
      ["task.updated", "tasks", "updated", c.member.id, created.id, reassigned, ["assignee_id"]],
      ["task.assigned", "tasks", "assigned", c.member.id, created.id, reassigned],
      ["task.assigned", "tasks", "assigned", c.member.id, created.id, assigned],
      ["comment.created", "comments", "created", c.other.id, comment.id, comment],
      ["comment.updated", "comments", "updated", c.other.id, comment.id, edited],
      ["comment.deleted", "comments", "deleted", c.owner.id, comment.id, { id: comment.id }],
      ["task.deleted", "tasks", "deleted", c.admin.id, created.id, { id: created.id }],
    ] as const;
    await waitFor(`${expected.length} task and comment events`, () => forWorkspace(ws).length >= expected.length);
    const seen = forWorkspace(ws);
    expect(seen).toHaveLength(expected.length);
    expected.forEach(([type, domain, action, actor, aggregate, data, changes], i) => {
      expect(seen[i]!.subject).toBe(`${mesh.id}.${domain}.${ws}.${action}`);
      expect(seen[i]!.event).toEqual({
        id: expect.stringMatching(UUID),
        type,
        workspace_id: ws,
        user_id: actor,
        aggregate_id: aggregate,
        data,
        timestamp: expect.any(Number),
        // task.updated names the fields whose values changed.
        ...(changes ? { changes } : {}),
      });
    });
    expect(updated.assignee_id).toBeNull();
    expect(assigned.assignee_id).toBeNull();
  });

  test("events: refused changes publish nothing", async () => {
    const c = await cast();
    const task = await createTask(c.member.api, c.workspaceId);
    expect((await c.other.api.delete(`/tasks/${task.id}`)).status).toBe(403);
    expect((await c.member.api.put(`/tasks/${task.id}`, { assignee_id: c.outsider.id })).status).toBe(422);
    expect((await c.outsider.api.put(`/tasks/${task.id}`, { title: "x" })).status).toBe(404);
    // A later accepted change proves the relay ran after the refused ones.
    await c.member.api.put(`/tasks/${task.id}`, { title: "accepted" });
    await tap.waitFor("the accepted update", (s) => s.event.type === "task.updated" && s.event.aggregate_id === task.id);
    expect(forWorkspace(c.workspaceId).map((s) => s.event.type)).toEqual(["task.created", "task.updated"]);
  });

  test("events: 50 rapid creates in one workspace arrive in creation order", async () => {
    const c = await cast();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await createTask(c.member.api, c.workspaceId, { title: `rapid ${i}` })).id);
    await waitFor("50 task.created events", () => forWorkspace(c.workspaceId).length >= 50);
    expect(forWorkspace(c.workspaceId).map((s) => s.event.aggregate_id)).toEqual(ids);
  });
});

describe("internal streams", () => {
  test("streams: StreamTasks and StreamComments send a whole workspace, oldest first, in batches, to internal callers only", async () => {
    const c = await cast();
    const other = await cast();
    const first: string[] = [];
    for (let i = 0; i < 3; i++) first.push((await createTask(c.member.api, c.workspaceId, { title: `api ${i}` })).id);
    await createTask(other.member.api, other.workspaceId);
    const comment = await createComment(c.member.api, c.workspaceId, first[0]!);
    // More rows than two batches (1000 each) of the stream, written directly.
    const sql = mesh.sql();
    await sql`
      insert into task.tasks (workspace_id, id, title, created_by)
      select ${c.workspaceId}::uuid, gen_random_uuid(), 'bulk ' || n, ${c.member.id}::uuid
      from generate_series(1, 2100) as n`;
    const last = await createTask(c.member.api, c.workspaceId, { title: "last" });
    const ids = (await sql<{ id: string }[]>`select id from task.tasks where workspace_id = ${c.workspaceId} order by seq`).map((r) => r.id);
    expect(ids).toHaveLength(3 + 2100 + 1);
    expect(ids.slice(0, 3)).toEqual(first);
    expect(ids.at(-1)).toBe(last.id);

    const client = mesh.grpcClient(TaskServiceClient, "task", "export", 20_000);
    try {
      const streamed: Task[] = [];
      let batches = 0;
      for await (const batch of client.stream("streamTasks", { workspace_id: c.workspaceId }, { internal: true })) {
        streamed.push(...batch.items);
        batches++;
      }
      expect(batches).toBeGreaterThanOrEqual(3);
      expect(streamed).toHaveLength(ids.length);
      expect(streamed.map((t) => t.id)).toEqual(ids);
      expect(streamed[0]).toMatchObject({ workspace_id: c.workspaceId, title: "api 0", status: "pending", created_by: c.member.id });
      expect(streamed.at(-1)!.title).toBe("last");

      const comments: Comment[] = [];
      for await (const batch of client.stream("streamComments", { workspace_id: c.workspaceId }, { internal: true })) comments.push(...batch.items);
      expect(comments).toEqual([expect.objectContaining({ id: comment.id, content: comment.content })]);

      // A user's token is not enough.
      const asUser = async () => {
        for await (const _ of client.stream("streamTasks", { workspace_id: c.workspaceId }, { token: c.owner.accessToken })) void _;
      };
      await expect(asUser()).rejects.toMatchObject({ code: "forbidden" });
    } finally {
      client.close();
    }
  });
});
