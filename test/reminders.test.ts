import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EventTap } from "./support/events.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mailbox } from "./support/mailbox.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";

// Due-date reminders with a short lead (3 s): task.due_soon (and the assignee's mail)
// before the due date, task.overdue at it, exactly once per (task, due date), with two
// task replicas claiming reminders (one SIGKILLed while they run) and two notify replicas
// (one SIGKILLed before the mails go out).

const LEAD_SECONDS = 3;
let mesh: Mesh;
let tap: EventTap;
let owner: SignedUp;
let bob: SignedUp;
let workspaceId: string;
const mailbox = new Mailbox();

beforeAll(async () => {
  mesh = await Mesh.start({ env: { REMINDER_LEAD_MINUTES: String(LEAD_SECONDS / 60), REMINDER_POLL_MS: "200" } });
  tap = new EventTap(await mesh.nats(), mesh.id);
  owner = await signUp(mesh.api, "Owner");
  bob = await signUp(mesh.api, "Bob");
  workspaceId = (await owner.api.post("/workspaces", { name: "Deadlines" })).body.id;
  await owner.api.post(`/workspaces/${workspaceId}/members`, { user_id: bob.id, role: "member" });
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
const reminders = (taskId: string) =>
  tap.seen.filter((s) => s.event.aggregate_id === taskId && (s.event.type === "task.due_soon" || s.event.type === "task.overdue"));
const kinds = (taskId: string) => reminders(taskId).map((s) => `${s.event.type} ${s.event.data?.["due_date"]}`);

async function task(body: Record<string, unknown>): Promise<{ id: string; due_date: string | null }> {
  const res = await owner.api.post(`/workspaces/${workspaceId}/tasks`, body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

describe("due-date reminders", () => {
  test("reminders: due_soon then overdue, once each per (task, due date), through a killed task replica and a killed notify replica; the assignee gets one mail", { timeout: 60_000 }, async () => {
    const secondTask = await mesh.startProcess("task", {}, "task-2");
    const secondNotify = await mesh.startProcess("notify", {}, "notify-2");

    const due = inSeconds(LEAD_SECONDS + 3);
    const assigned = await task({ title: "Ship it", assignee_id: bob.id, due_date: due });
    const unassigned = await task({ title: "Nobody's", due_date: due });
    const completed = await task({ title: "Done early", assignee_id: bob.id, due_date: due });
    expect((await owner.api.put(`/tasks/${completed.id}`, { status: "completed" })).status).toBe(200);
    const late = await task({ title: "Already late", assignee_id: bob.id, due_date: inSeconds(-60) });

    // Both task replicas poll every 200 ms: one dies while they do; the first notify too.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await secondTask.stop("SIGKILL");
    await mesh.processes.get("notify")!.stop("SIGKILL");

    await waitFor("the overdue event", () => kinds(assigned.id).length >= 2, 20_000);
    await waitFor("the late task's overdue event", () => kinds(late.id).length >= 1, 20_000);
    const [mail] = await mailbox.waitFor(bob, "Due soon: Ship it");
    expect(mail!.body.text).toContain("A task assigned to you is due");
    expect(mail!.body.text).toContain(new Date(due).toUTCString());
    // Give any duplicate time to show up.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    expect(kinds(assigned.id)).toEqual([`task.due_soon ${new Date(due).toISOString()}`, `task.overdue ${new Date(due).toISOString()}`]);
    const [soon, overdue] = reminders(assigned.id);
    expect(soon!.subject).toBe(`${mesh.id}.tasks.${workspaceId}.due_soon`);
    expect(soon!.event.data).toMatchObject({ id: assigned.id, title: "Ship it", assignee_id: bob.id });
    expect(soon!.event.user_id).toBeUndefined();
    expect(overdue!.event.timestamp).toBeGreaterThanOrEqual(Date.parse(due));
    expect(soon!.event.timestamp).toBeLessThan(Date.parse(due));
    expect(kinds(unassigned.id)).toEqual([]);
    expect(kinds(completed.id)).toEqual([]);
    // Armed after its due date: overdue at once, no "due soon".
    expect(kinds(late.id).map((k) => k.split(" ")[0])).toEqual(["task.overdue"]);
    expect(await mailbox.about(bob, "Due soon: Ship it")).toHaveLength(1);
    expect(await mailbox.about(bob, "Due soon: Already late")).toEqual([]);
    await secondNotify.stop();
  });

  test("reminders: nothing fires twice after a restart or an edit; a changed due date re-arms them; completing cancels them", { timeout: 60_000 }, async () => {
    const due = inSeconds(LEAD_SECONDS + 1);
    const first = await task({ title: "Moving target", assignee_id: bob.id, due_date: due });
    await waitFor("both reminders", () => kinds(first.id).length >= 2, 20_000);

    // A restart (on the same port, where the gateway calls it) fires nothing again.
    await mesh.restart("task", { GRPC_PORT: String(mesh.processes.get("task")!.ports["grpc"]) });
    expect((await owner.api.put(`/tasks/${first.id}`, { title: "Moving target, renamed", assignee_id: owner.id })).status).toBe(200);
    const moved = inSeconds(LEAD_SECONDS + 1);
    expect((await owner.api.put(`/tasks/${first.id}`, { due_date: moved })).status).toBe(200);
    await waitFor("the moved date's reminders", () => kinds(first.id).length >= 4, 20_000);

    const cancelled = await task({ title: "Cancelled", assignee_id: bob.id, due_date: inSeconds(LEAD_SECONDS + 2) });
    expect((await owner.api.put(`/tasks/${cancelled.id}`, { status: "cancelled" })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, (LEAD_SECONDS + 3) * 1000));

    const at = (iso: string) => new Date(iso).toISOString();
    expect(kinds(first.id)).toEqual([
      `task.due_soon ${at(due)}`,
      `task.overdue ${at(due)}`,
      `task.due_soon ${at(moved)}`,
      `task.overdue ${at(moved)}`,
    ]);
    expect(kinds(cancelled.id)).toEqual([]);
  });
});
