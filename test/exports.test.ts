import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { percentDone, ProgressThrottle } from "../internal/export/progress.js";
import { newEvent } from "../internal/platform/events.js";
import { EventTap, type Seen } from "./support/events.js";
import { signUp, type Api, type ApiResponse, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";

let mesh: Mesh;
let tap: EventTap;
/** One small pool for the whole file (the Postgres server is shared with other test files). */
let sql: ReturnType<Mesh["sql"]>;

// Short ack wait (heartbeat every second, a claim stale after 3 s) so a dead worker's
// job moves on quickly; small chunks so even small files span several of them.
const ACK_WAIT_MS = 3_000;
const CHUNK_BYTES = 16_384;

beforeAll(async () => {
  mesh = await Mesh.start({
    env: {
      EXPORT_ACK_WAIT_MS: String(ACK_WAIT_MS),
      EXPORT_CHUNK_BYTES: String(CHUNK_BYTES),
      EXPORT_CLEANUP_INTERVAL_MS: "1000",
    },
  });
  tap = new EventTap(await mesh.nats(), mesh.id);
  sql = mesh.sql();
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

interface Cast {
  workspaceId: string;
  owner: SignedUp;
  member: SignedUp;
  /** A registered user who is not a member. */
  outsider: SignedUp;
}

/** A fresh workspace with an owner, a member and an outsider. */
async function cast(): Promise<Cast> {
  const [owner, member, outsider] = await Promise.all(["Owner", "Member", "Outsider"].map((name) => signUp(mesh.api, name)));
  const ws = await owner!.api.post("/workspaces", { name: "Exports" });
  expect(ws.status, ws.text).toBe(201);
  const added = await owner!.api.post(`/workspaces/${ws.body.id}/members`, { user_id: member!.id, role: "member" });
  expect(added.status, added.text).toBe(201);
  return { workspaceId: ws.body.id, owner: owner!, member: member!, outsider: outsider! };
}

interface JobJson {
  id: string;
  workspace_id: string;
  type: string;
  format: string;
  status: string;
  progress: number;
  row_count: number;
  error: string | null;
  created_by: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
}

async function startExport(api: Api, workspaceId: string, type: string, format: string): Promise<JobJson> {
  const res = await api.post(`/workspaces/${workspaceId}/exports`, { type, format });
  expect(res.status, res.text).toBe(202);
  return res.body as JobJson;
}

/** Polls the job until it has settled (completed or failed). */
async function settled(api: Api, jobId: string, timeoutMs = 30_000): Promise<JobJson> {
  return waitFor(
    `export ${jobId} to complete or fail`,
    async () => {
      const res = await api.get(`/exports/${jobId}`);
      return res.status === 200 && (res.body.status === "completed" || res.body.status === "failed") ? (res.body as JobJson) : undefined;
    },
    timeoutMs,
    100,
  );
}

async function exportFile(api: Api, workspaceId: string, type: string, format: string): Promise<{ job: JobJson; file: ApiResponse<string> }> {
  const started = await startExport(api, workspaceId, type, format);
  const job = await settled(api, started.id);
  expect(job.status, job.error ?? "").toBe("completed");
  const file = await api.get<string>(`/exports/${job.id}/download`);
  expect(file.status, file.text).toBe(200);
  return { job, file };
}

/** Every task of a workspace as the API shows it, oldest first. */
async function allTasks(api: Api, workspaceId: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let cursor: string | null = null, pages = 0; pages < 100; pages++) {
    const res: ApiResponse = await api.get(`/workspaces/${workspaceId}/tasks?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status).toBe(200);
    items.push(...res.body.items);
    cursor = res.body.next_cursor;
    if (!cursor) break;
  }
  return items.reverse();
}

/** A strict RFC 4180 reader: CRLF after every record, quotes only around whole fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c !== '"') field += c;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else {
        quoted = false;
        if (text[i + 1] !== "," && text[i + 1] !== "\r") throw new Error(`text after a closing quote at ${i}`);
      }
    } else if (c === '"') {
      if (fieldStarted) throw new Error(`a quote inside an unquoted field at ${i}`);
      quoted = true;
      fieldStarted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
      fieldStarted = false;
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      fieldStarted = false;
      i++;
    } else if (c === "\r" || c === "\n") {
      throw new Error(`a bare line break outside quotes at ${i}`);
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new Error("unterminated quoted field");
  if (fieldStarted || row.length > 0) throw new Error("the last record lacks its CRLF");
  return rows;
}

/** Seeds `count` tasks straight into the task service's table (fast), oldest first by seq. */
async function seedTasks(workspaceId: string, createdBy: string, count: number): Promise<void> {
  await sql`
    insert into task.tasks (workspace_id, id, title, description, created_by)
    select ${workspaceId}::uuid, gen_random_uuid(), 'seeded task ' || n, repeat('lorem ipsum ', 10), ${createdBy}::uuid
    from generate_series(1, ${count}) as n`;
}

const eventsOf = (jobId: string): Seen[] => tap.seen.filter((s) => s.event.type.startsWith("export.") && s.event.aggregate_id === jobId);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("progress rules", () => {
  test("progress: a slow job gets an event at every 10 % step and never two within a second", () => {
    const throttle = new ProgressThrottle(0);
    const sent: number[] = [];
    // 1 % every 2 s: 10 points take 20 s.
    for (let p = 1; p <= 99; p++) {
      if (!throttle.due(p, p * 2_000)) continue;
      throttle.sent(p, p * 2_000);
      sent.push(p);
    }
    expect(sent).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  test("progress: a fast job is held to one event a second, skipping steps", () => {
    const throttle = new ProgressThrottle(0);
    const sent: { p: number; at: number }[] = [];
    // 1 % every 30 ms: 33 points a second.
    for (let p = 1; p <= 99; p++) {
      if (!throttle.due(p, p * 30)) continue;
      throttle.sent(p, p * 30);
      sent.push({ p, at: p * 30 });
    }
    expect(sent.map((s) => s.p)).toEqual([34, 68]);
    for (let i = 1; i < sent.length; i++) expect(sent[i]!.at - sent[i - 1]!.at).toBeGreaterThanOrEqual(1_000);
  });

  test("progress: the second is counted from the sent event's own timestamp, stamped after the check", () => {
    const throttle = new ProgressThrottle(0);
    expect(throttle.due(10, 1_000)).toBe(true);
    throttle.sent(10, 1_040); // the event was stamped 40 ms after the check
    expect(throttle.due(20, 2_020)).toBe(false);
    expect(throttle.due(20, 2_040)).toBe(true);
  });

  test("progress: a job done within a second sends no progress between running and completed", () => {
    const throttle = new ProgressThrottle(0);
    const sent = Array.from({ length: 99 }, (_, i) => i + 1).filter((p) => throttle.due(p, p * 5));
    expect(sent).toEqual([]);
  });

  test("progress: percent done is whole, at most 99 while running, 0 for an empty job", () => {
    expect(percentDone(0, 0)).toBe(0);
    expect(percentDone(1, 3)).toBe(33);
    expect(percentDone(3, 3)).toBe(99);
    expect(percentDone(5, 3)).toBe(99);
  });
});

describe("export lifecycle", () => {
  test("exports: a job goes pending → running → completed, with its events on exports.<ws>.<action>", async () => {
    const c = await cast();
    for (let i = 0; i < 3; i++) expect((await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: `task ${i}` })).status).toBe(201);
    await seedTasks(c.workspaceId, c.member.id, 20_000);

    const created = await startExport(c.member.api, c.workspaceId, "tasks", "csv");
    expect(created).toEqual({
      id: expect.stringMatching(UUID),
      workspace_id: c.workspaceId,
      type: "tasks",
      format: "csv",
      status: "pending",
      progress: 0,
      row_count: 0,
      error: null,
      created_by: c.member.id,
      created_at: expect.stringMatching(ISO),
      started_at: null,
      completed_at: null,
    });
    const done = await settled(c.member.api, created.id);
    expect(done).toMatchObject({ status: "completed", progress: 100, row_count: 20_003, error: null });
    expect(done.started_at).toMatch(ISO);
    expect(done.completed_at).toMatch(ISO);
    expect(Date.parse(done.completed_at!)).toBeGreaterThanOrEqual(Date.parse(done.started_at!));

    await tap.waitFor("export.completed", (s) => s.event.type === "export.completed" && s.event.aggregate_id === created.id);
    const events = eventsOf(created.id);
    const types = events.map((s) => s.event.type);
    expect(types[0]).toBe("export.created");
    expect(types.at(-1)).toBe("export.completed");
    expect(types.filter((t) => t === "export.created" || t === "export.completed")).toHaveLength(2);
    for (const { subject, event } of events) {
      expect(subject).toBe(`${mesh.id}.exports.${c.workspaceId}.${event.type.split(".")[1]}`);
      expect(event).toMatchObject({ workspace_id: c.workspaceId, user_id: c.member.id, aggregate_id: created.id });
    }
    expect(events[0]!.event.data).toEqual(created);
    expect(events.at(-1)!.event.data).toEqual(done);
    // Progress: the first says running at 0 %; then never two within a second, never backwards.
    const progress = events.filter((s) => s.event.type === "export.progress").map((s) => s.event);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]!.data).toMatchObject({ status: "running", progress: 0, row_count: 0 });
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.timestamp - progress[i - 1]!.timestamp).toBeGreaterThanOrEqual(1_000);
      expect(progress[i]!.data!["progress"] as number).toBeGreaterThanOrEqual((progress[i - 1]!.data!["progress"] as number) + 10);
      expect(progress[i]!.data!["status"]).toBe("running");
    }
  });

  test("exports: listed newest first, paged with a cursor", async () => {
    const c = await cast();
    const jobs: JobJson[] = [];
    for (const [type, format] of [
      ["tasks", "csv"],
      ["tasks", "json"],
      ["comments", "csv"],
    ] as const) {
      jobs.push(await startExport(c.owner.api, c.workspaceId, type, format));
    }
    const first = await c.member.api.get(`/workspaces/${c.workspaceId}/exports?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.items.map((j: JobJson) => j.id)).toEqual([jobs[2]!.id, jobs[1]!.id]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await c.member.api.get(`/workspaces/${c.workspaceId}/exports?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body).toEqual({ items: [expect.objectContaining({ id: jobs[0]!.id, type: "tasks", format: "csv" })], next_cursor: null });
    for (const job of jobs) await settled(c.owner.api, job.id);
  });
});

describe("export files", () => {
  const tricky = [
    { title: 'comma, and "quotes"', description: "line one\nline two\r\nline three" },
    { title: "=SUM(A1)", description: "+1" },
    { title: "-1", description: "@x" },
    { title: "@SUM(1+1)*cmd|' /C calc'!A0", description: "\tleading tab" },
    { title: "emoji 😀🎉 and CJK 漢字テスト", description: "RTL: שלום עולם مرحبا بالعالم" },
    { title: "plain", description: "" },
    { title: "labelled", description: "", labels: ["ops", "q3 plan", "=risk"] },
  ];

  /** The CSV cell a value becomes: formulas neutralised with a leading single quote. */
  const cell = (value: unknown) => {
    if (value === null) return "";
    const text = Array.isArray(value) ? value.join(";") : String(value);
    return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  };

  test("exports: CSV has a header, RFC 4180 quoting, unicode intact and formula cells neutralised", async () => {
    const c = await cast();
    for (const body of tricky) expect((await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, body)).status).toBe(201);
    // Enough multi-byte rows to span several chunks, so characters are split across chunk boundaries.
    for (let i = 0; i < 60; i++) {
      const res = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: `多字节 ${i} 😀`, description: "é".repeat(150) + " עברית " + "字".repeat(100) });
      expect(res.status).toBe(201);
    }
    const tasks = await allTasks(c.member.api, c.workspaceId);
    const { job, file } = await exportFile(c.member.api, c.workspaceId, "tasks", "csv");
    expect(Buffer.byteLength(file.text)).toBeGreaterThan(2 * CHUNK_BYTES);
    expect(file.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const day = job.created_at.slice(0, 10).replaceAll("-", "");
    expect(file.headers.get("content-disposition")).toBe(`attachment; filename="tasks-${day}-${job.id.slice(0, 8)}.csv"`);
    expect(file.text.charCodeAt(0)).not.toBe(0xfeff);

    const rows = parseCsv(file.text);
    const header = ["id", "workspace_id", "title", "description", "status", "priority", "assignee_id", "created_by", "due_date", "labels", "watcher_ids", "created_at", "updated_at"];
    expect(rows[0]).toEqual(header);
    expect(rows.slice(1)).toEqual(tasks.map((t) => header.map((h) => cell(t[h]))));
    expect(job.row_count).toBe(tasks.length);
    // The raw text: quoted where needed, quotes doubled, formulas prefixed.
    expect(file.text).toContain(`"comma, and ""quotes"""`);
    expect(file.text).toContain(`"line one\nline two\r\nline three"`);
    expect(file.text).toContain(",'=SUM(A1),'+1,");
    expect(file.text).toContain(",'-1,'@x,");
    expect(file.text).toContain(",emoji 😀🎉 and CJK 漢字テスト,RTL: שלום עולם مرحبا بالعالم,");
    // Labels: one cell, joined with ";" (and neutralised like any cell that starts a formula).
    expect(rows.find((r) => r[2] === "labelled")?.[9]).toBe("ops;q3 plan;=risk");
    // Watchers, like labels, are one cell joined with ";": here the creator alone.
    expect(rows.slice(1).every((r) => r[10] === c.member.id)).toBe(true);
    expect(rows.filter((r) => r[2] !== "labelled" && r[0] !== "id").every((r) => r[9] === "")).toBe(true);
  });

  test("exports: comments CSV neutralises formulas and keeps line breaks inside quotes", async () => {
    const c = await cast();
    const task = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "commented" });
    const contents = ["=HYPERLINK(\"http://evil\")", "two\nlines, and a comma", "日本語 😀 עברית"];
    for (const content of contents) {
      expect((await c.member.api.post(`/workspaces/${c.workspaceId}/comments`, { task_id: task.body.id, content })).status).toBe(201);
    }
    const { file } = await exportFile(c.owner.api, c.workspaceId, "comments", "csv");
    const rows = parseCsv(file.text);
    expect(rows[0]).toEqual(["id", "workspace_id", "task_id", "author_id", "content", "created_at", "updated_at"]);
    expect(rows.slice(1).map((r) => r[4])).toEqual([`'=HYPERLINK("http://evil")`, "two\nlines, and a comma", "日本語 😀 עברית"]);
    expect(rows.slice(1).every((r) => r[3] === c.member.id && r[2] === task.body.id)).toBe(true);
  });

  test("exports: JSON is an array of the API's task objects, unicode intact", async () => {
    const c = await cast();
    for (const body of tricky) expect((await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, body)).status).toBe(201);
    await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "due", due_date: "2030-01-02T03:04:05Z", assignee_id: c.owner.id, priority: "urgent" });
    await seedTasks(c.workspaceId, c.owner.id, 500);
    const tasks = await allTasks(c.member.api, c.workspaceId);
    const { job, file } = await exportFile(c.member.api, c.workspaceId, "tasks", "json");
    expect(file.headers.get("content-type")).toBe("application/json");
    expect(file.headers.get("content-disposition")).toBe(`attachment; filename="tasks-${job.created_at.slice(0, 10).replaceAll("-", "")}-${job.id.slice(0, 8)}.json"`);
    expect(JSON.parse(file.text)).toEqual(tasks);
    expect(JSON.parse(file.text).find((t: { title: string }) => t.title === "labelled").labels).toEqual(["ops", "q3 plan", "=risk"]);
    expect(job.row_count).toBe(tasks.length);
  });

  test("exports: JSON of comments equals the API's comments; an empty workspace gives []", async () => {
    const c = await cast();
    const empty = await exportFile(c.member.api, c.workspaceId, "comments", "json");
    expect(JSON.parse(empty.file.text)).toEqual([]);
    expect(empty.job.row_count).toBe(0);
    const emptyCsv = await exportFile(c.member.api, c.workspaceId, "tasks", "csv");
    expect(parseCsv(emptyCsv.file.text)).toEqual([["id", "workspace_id", "title", "description", "status", "priority", "assignee_id", "created_by", "due_date", "labels", "watcher_ids", "created_at", "updated_at"]]);

    const task = await c.member.api.post(`/workspaces/${c.workspaceId}/tasks`, { title: "t" });
    const comments = [];
    for (const content of ["first 😀", "second\nline", '"quoted"']) {
      comments.push((await c.owner.api.post(`/workspaces/${c.workspaceId}/comments`, { task_id: task.body.id, content })).body);
    }
    const { file } = await exportFile(c.member.api, c.workspaceId, "comments", "json");
    expect(JSON.parse(file.text)).toEqual(comments);
  });
});

describe("export access", () => {
  test("exports: non-members get 404 for the workspace's exports, a job and its download", async () => {
    const c = await cast();
    const job = await startExport(c.member.api, c.workspaceId, "tasks", "csv");
    await settled(c.member.api, job.id);
    const outsider = c.outsider.api;
    for (const res of [
      await outsider.post(`/workspaces/${c.workspaceId}/exports`, { type: "tasks", format: "csv" }),
      await outsider.get(`/workspaces/${c.workspaceId}/exports`),
      await outsider.get(`/exports/${job.id}`),
      await outsider.get(`/exports/${job.id}/download`),
      await c.member.api.get(`/exports/${randomUUID()}`),
      await c.member.api.get(`/exports/${randomUUID()}/download`),
    ]) {
      expect(res.status, res.text).toBe(404);
      expect(res.body.error.code).toBe("not_found");
    }
    // A member who is removed loses access at once.
    expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}/members/${c.member.id}`)).status).toBe(204);
    expect((await c.member.api.get(`/exports/${job.id}`)).status).toBe(404);
    expect((await c.member.api.get(`/exports/${job.id}/download`)).status).toBe(404);
    expect((await c.owner.api.get(`/exports/${job.id}/download`)).status).toBe(200);
    // Without a token: 401.
    expect((await mesh.api.get(`/exports/${job.id}`)).status).toBe(401);
  });

  test.each([
    ["an unknown type", { type: "users", format: "csv" }, "type must be one of tasks, comments"],
    ["an unknown format", { type: "tasks", format: "xlsx" }, "format must be one of csv, json"],
    ["no type", { format: "csv" }, "type"],
    ["no format", { type: "tasks" }, "format"],
    ["an unknown field", { type: "tasks", format: "csv", where: "x" }, "where"],
    ["a non-object", ["tasks", "csv"], ""],
  ])("exports: starting one with %s is 400", async (_, body, message) => {
    const c = await cast();
    const res = await c.member.api.post(`/workspaces/${c.workspaceId}/exports`, body);
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.message).toContain(message);
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}/exports`)).body.items).toEqual([]);
  });

  test("exports: bad ids, paging and bodies are 400 or 415", async () => {
    const c = await cast();
    const api = c.member.api;
    expect((await api.get("/exports/not-a-uuid")).status).toBe(400);
    expect((await api.get("/exports/not-a-uuid/download")).status).toBe(400);
    expect((await api.post("/workspaces/nope/exports", { type: "tasks", format: "csv" })).status).toBe(400);
    expect((await api.get(`/workspaces/${c.workspaceId}/exports?limit=0`)).status).toBe(400);
    expect((await api.get(`/workspaces/${c.workspaceId}/exports?limit=201`)).status).toBe(400);
    expect((await api.get(`/workspaces/${c.workspaceId}/exports?cursor=bogus`)).status).toBe(400);
    const invalidJson = await api.request("POST", `/workspaces/${c.workspaceId}/exports`, { rawBody: "{", headers: { "content-type": "application/json" } });
    expect(invalidJson.status).toBe(400);
    expect(invalidJson.body.error.code).toBe("invalid_json");
    const notJson = await api.request("POST", `/workspaces/${c.workspaceId}/exports`, { rawBody: "type=tasks", headers: { "content-type": "text/plain" } });
    expect(notJson.status).toBe(415);
  });

  test("exports: a download before completion is 409 not_ready; a failed job's too", async () => {
    const c = await cast();
    // Jobs written straight to the table (no queued message), so they stay as they are.
    const [pending, running, failed] = [randomUUID(), randomUUID(), randomUUID()];
    await sql`
      insert into export.jobs (workspace_id, id, type, format, status, error, created_by, expires_at)
      values (${c.workspaceId}, ${pending}, 'tasks', 'csv', 'pending', null, ${c.member.id}, now() + interval '1 hour'),
             (${c.workspaceId}, ${running}, 'tasks', 'json', 'running', null, ${c.member.id}, now() + interval '1 hour'),
             (${c.workspaceId}, ${failed}, 'comments', 'csv', 'failed', 'export failed after 3 attempts: boom', ${c.member.id}, now() + interval '1 hour')`;
    for (const [id, status] of [
      [pending, "pending"],
      [running, "running"],
      [failed, "failed"],
    ] as const) {
      const res = await c.member.api.get(`/exports/${id}/download`);
      expect(res.status, res.text).toBe(409);
      expect(res.body.error).toMatchObject({ code: "not_ready", details: { status } });
    }
    expect((await c.member.api.get(`/exports/${failed}`)).body).toMatchObject({ status: "failed", error: "export failed after 3 attempts: boom" });
    expect((await c.member.api.get(`/exports/${pending}`)).body).toMatchObject({ status: "pending", error: null });
  });

  test("exports: expired jobs disappear (404 at once, deleted by the cleanup)", async () => {
    const c = await cast();
    const { job } = await exportFile(c.member.api, c.workspaceId, "tasks", "csv");
    await sql`update export.jobs set expires_at = now() - interval '1 second' where id = ${job.id}`;
    expect((await c.member.api.get(`/exports/${job.id}`)).status).toBe(404);
    expect((await c.member.api.get(`/exports/${job.id}/download`)).status).toBe(404);
    expect((await c.member.api.get(`/workspaces/${c.workspaceId}/exports`)).body.items).toEqual([]);
    await waitFor("the cleanup to delete the expired job and its file", async () => {
      const [row] = await sql<{ jobs: number; chunks: number }[]>`
        select (select count(*) from export.jobs where id = ${job.id})::int as jobs,
               (select count(*) from export.file_chunks where job_id = ${job.id})::int as chunks`;
      return row!.jobs === 0 && row!.chunks === 0;
    });
  });

  test("exports: deleting a workspace deletes its exports", async () => {
    const c = await cast();
    const { job } = await exportFile(c.member.api, c.workspaceId, "tasks", "json");
    expect((await c.owner.api.delete(`/workspaces/${c.workspaceId}`)).status).toBe(204);
    await waitFor("the workspace's export jobs to be purged", async () => {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from export.jobs where workspace_id = ${c.workspaceId}`;
      return row!.n === 0;
    });
    expect((await c.owner.api.get(`/exports/${job.id}`)).status).toBe(404);
  });
});

describe("export workers", () => {
  /** The mesh label of the process whose worker id (host-pid-random) is `workerId`. */
  function processOf(workerId: string): string {
    const pid = Number(workerId.split("-").at(-2));
    const label = [...mesh.processes.entries()].find(([, p]) => p.pid === pid)?.[0];
    if (!label) throw new Error(`no mesh process has pid ${pid} (worker ${workerId})`);
    return label;
  }

  /** Waits for the job to settle, reading the table (the gateway may be unable to reach a stopped worker). */
  async function settledInDb(id: string, timeoutMs: number): Promise<{ status: string; row_count: string }> {
    return waitFor(
      `export ${id} to settle`,
      async () => {
        const [row] = await sql<{ status: string; row_count: string }[]>`select status, row_count from export.jobs where id = ${id}`;
        return row && (row.status === "completed" || row.status === "failed") ? row : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Starts a stopped worker again on its gRPC port (the gateway's EXPORT_ADDR may point there) and waits until the API answers. */
  async function restart(label: string, grpcPort: number, api: Api, jobId: string): Promise<void> {
    await mesh.startProcess("export", { GRPC_PORT: String(grpcPort) }, label);
    await waitFor("the gateway to reach the export service again", async () => (await api.get(`/exports/${jobId}`)).status === 200, 30_000, 200);
  }

  interface RunRow {
    job_id: string;
    attempt: number;
    worker_id: string;
    outcome: string | null;
    finished_at: Date | null;
  }

  test("exports: with two workers, every one of many jobs runs exactly once", async () => {
    await mesh.startProcess("export", {}, "export-2");
    const casts = await Promise.all([cast(), cast(), cast()]);
    for (const c of casts) await seedTasks(c.workspaceId, c.member.id, 2_000);
    const jobs: { job: JobJson; api: Api }[] = [];
    for (let i = 0; i < 8; i++) {
      for (const c of casts) jobs.push({ job: await startExport(c.member.api, c.workspaceId, i % 2 ? "tasks" : "comments", i % 3 ? "csv" : "json"), api: c.member.api });
    }
    for (const { job, api } of jobs) expect((await settled(api, job.id, 60_000)).status).toBe("completed");

    const ids = jobs.map((j) => j.job.id);
    const runs = await sql<RunRow[]>`select job_id, attempt, worker_id, outcome, finished_at from export.runs where job_id = any(${ids}::uuid[])`;
    for (const id of ids) {
      const ofJob = runs.filter((r) => r.job_id === id);
      expect(ofJob, `runs of job ${id}`).toEqual([expect.objectContaining({ attempt: 1, outcome: "completed" })]);
    }
    // Both workers took part.
    expect(new Set(runs.map((r) => processOf(r.worker_id)))).toEqual(new Set(["export", "export-2"]));
    // One export.completed per job, and each job's file downloads once complete.
    await waitFor("every export.completed event", () => ids.every((id) => eventsOf(id).some((s) => s.event.type === "export.completed")));
    for (const id of ids) expect(eventsOf(id).filter((s) => s.event.type === "export.completed")).toHaveLength(1);
  });

  test("exports: a job whose worker is killed mid-job completes on the other worker", async () => {
    const c = await cast();
    await seedTasks(c.workspaceId, c.member.id, 150_000);
    const job = await startExport(c.member.api, c.workspaceId, "tasks", "csv");
    const running = await waitFor(
      "the job to be running with rows written",
      async () => {
        const [row] = await sql<{ worker_id: string | null; row_count: string }[]>`select worker_id, row_count from export.jobs where id = ${job.id} and status = 'running'`;
        return row && row.worker_id && Number(row.row_count) > 0 ? row.worker_id : undefined;
      },
      30_000,
    );
    const victim = processOf(running);
    const port = mesh.processes.get(victim)!.ports["grpc"]!;
    await mesh.processes.get(victim)!.stop("SIGKILL");
    let restarted = false;
    try {
      expect(await settledInDb(job.id, 180_000)).toMatchObject({ status: "completed", row_count: "150000" });
      await restart(victim, port, c.member.api, job.id);
      restarted = true;
      const done = await settled(c.member.api, job.id);
      expect(done).toMatchObject({ status: "completed", progress: 100, row_count: 150_000, error: null });
      const runs = await sql<RunRow[]>`select job_id, attempt, worker_id, outcome, finished_at from export.runs where job_id = ${job.id} order by attempt`;
      expect(runs).toHaveLength(2);
      expect(runs[0]).toMatchObject({ attempt: 1, worker_id: running, outcome: null, finished_at: null });
      expect(runs[1]).toMatchObject({ attempt: 2, outcome: "completed" });
      expect(processOf(runs[1]!.worker_id)).not.toBe(victim);
      // Only the completed attempt's chunks are kept, and the file is whole.
      const [leftovers] = await sql<{ n: number }[]>`select count(*)::int as n from export.file_chunks where job_id = ${job.id} and attempt <> 2`;
      expect(leftovers!.n).toBe(0);
      const file = await c.member.api.get(`/exports/${job.id}/download`);
      const rows = parseCsv(file.text);
      expect(rows).toHaveLength(150_001);
      expect(new Set(rows.slice(1).map((r) => r[0])).size).toBe(150_000);
    } finally {
      if (!restarted) await restart(victim, port, c.member.api, job.id);
    }
  }, 300_000); // 150,000 rows seeded, exported and downloaded: minutes on a loaded 2-core machine

  test("exports: a worker stopped gracefully mid-job hands it back, and the other finishes it", async () => {
    const c = await cast();
    await seedTasks(c.workspaceId, c.member.id, 150_000);
    const job = await startExport(c.member.api, c.workspaceId, "tasks", "json");
    const running = await waitFor(
      "the job to be running with rows written",
      async () => {
        const [row] = await sql<{ worker_id: string | null; row_count: string }[]>`select worker_id, row_count from export.jobs where id = ${job.id} and status = 'running'`;
        return row && row.worker_id && Number(row.row_count) > 0 ? row.worker_id : undefined;
      },
      30_000,
    );
    const victim = processOf(running);
    const port = mesh.processes.get(victim)!.ports["grpc"]!;
    expect(await mesh.processes.get(victim)!.stop("SIGTERM")).toBe(0);
    let restarted = false;
    try {
      expect(await settledInDb(job.id, 180_000)).toMatchObject({ status: "completed", row_count: "150000" });
      await restart(victim, port, c.member.api, job.id);
      restarted = true;
      const runs = await sql<RunRow[]>`select job_id, attempt, worker_id, outcome, finished_at from export.runs where job_id = ${job.id} order by attempt`;
      expect(runs.map((r) => r.outcome)).toEqual(["released", "completed"]);
      expect(processOf(runs[1]!.worker_id)).not.toBe(victim);
      const file = await c.member.api.get(`/exports/${job.id}/download`);
      expect(JSON.parse(file.text)).toHaveLength(150_000);
    } finally {
      if (!restarted) await restart(victim, port, c.member.api, job.id);
    }
  }, 300_000); // 150,000 rows seeded, exported and downloaded: minutes on a loaded 2-core machine

  test("exports: a job whose attempts are used up (its workers kept dying) ends failed with an error", async () => {
    const c = await cast();
    // As if three workers had each claimed it and died: running, attempt 3, heartbeat long stale.
    const id = randomUUID();
    await sql`
      insert into export.jobs (workspace_id, id, type, format, status, attempt, worker_id, heartbeat_at, started_at, created_by, expires_at)
      values (${c.workspaceId}, ${id}, 'tasks', 'csv', 'running', 3, 'gone-1-x', now() - interval '1 hour', now() - interval '1 hour',
              ${c.member.id}, now() + interval '1 hour')`;
    // Its queue message, as the outbox would have published it.
    const event = newEvent({ type: "export.created", workspace_id: c.workspaceId, user_id: c.member.id, aggregate_id: id, data: { id } });
    const js = (await mesh.nats()).jetstream();
    await js.publish(mesh.subjects.of(event), new TextEncoder().encode(JSON.stringify(event)), { msgID: event.id });

    const failed = await settled(c.member.api, id);
    expect(failed).toMatchObject({ status: "failed", error: "export failed after 3 attempts: the worker running it stopped" });
    expect(failed.completed_at).toMatch(ISO);
    const seen = await tap.waitFor("export.failed", (s) => s.event.type === "export.failed" && s.event.aggregate_id === id);
    expect(seen.event.data).toEqual(failed);
    expect((await c.member.api.get(`/exports/${id}/download`)).status).toBe(409);
  });
});
