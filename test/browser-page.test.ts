import { readFileSync } from "node:fs";
import type { Browser, Locator } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  byTestId,
  eventEntry,
  launchChromium,
  logInAndConnect as logIn,
  openPage as openBrowserPage,
  screenshot,
  taskItem,
  UI_TIMEOUT,
  waitConnected,
  type Session,
} from "./support/browser.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

// The browser test page's v2 features (issue 11 item 8), driven by Debian's Chromium
// through playwright-core against a real mesh: single-use tickets for every socket, a
// position kept across reloads and resumed with since+epoch, the `recovered` outcome,
// controls by workspace role, names in the event log, the log's type filter, and the
// exports panel. The helpers are test/support/browser.ts.

let mesh: Mesh | undefined;
let browser: Browser | undefined;
let workspaceId: string;
let ann: Session;
let bob: Session;
const sessions: Session[] = [];

beforeAll(async () => {
  mesh = await Mesh.start({ env: { PRESENCE_DEBOUNCE_MS: "300" } });
  browser = await launchChromium();
  const [owner, member] = await Promise.all([signUp(mesh.api, "Ann"), signUp(mesh.api, "Bob")]);
  const ws = await owner!.api.post("/workspaces", { name: "Page room", description: "v2 page features" });
  expect(ws.status).toBe(201);
  workspaceId = ws.body.id;
  expect((await owner!.api.post(`/workspaces/${workspaceId}/members`, { email: member!.email, role: "member" })).status).toBe(201);
  ann = await openPage("page-v2-ann", owner!);
  bob = await openPage("page-v2-bob", member!);
  for (const session of [ann, bob]) await logInAndConnect(session);
});

afterAll(async () => {
  for (const session of sessions) await screenshot(session, "final");
  await browser?.close();
  await mesh?.stop();
});

async function openPage(label: string, user: SignedUp, path = "/"): Promise<Session> {
  const session = await openBrowserPage(browser!, label, user, `${mesh!.url}${path}`);
  sessions.push(session);
  return session;
}

const memberItem = (session: Session, userId: string): Locator => byTestId(session.page, "member-item", `[data-user-id="${userId}"]`);
const logInAndConnect = (session: Session, workspace = workspaceId) => logIn(session, workspace);

/** The position the page keeps for the workspace in sessionStorage. */
async function storedPosition(session: Session): Promise<{ seq: number; epoch: string } | null> {
  const raw = await session.page.evaluate(`sessionStorage.getItem('taskboard.position.${workspaceId}')`);
  return raw ? JSON.parse(String(raw)) : null;
}

/** A task made over the API (by `who`), seen live in `session`'s event log; resolves with its seq. */
async function taskSeenLive(session: Session, who: SignedUp, title: string): Promise<number> {
  const created = await who.api.post(`/workspaces/${workspaceId}/tasks`, { title });
  expect(created.status).toBe(201);
  const logged = eventEntry(session, "task.created", title);
  await logged.waitFor({ timeout: UI_TIMEOUT });
  return Number(await logged.getAttribute("data-seq"));
}

test("page: a reload keeps the position (seq and epoch), resumes with them and shows what happened while it was closed", { timeout: 90_000 }, async () => {
  const page = ann.page;
  // A fresh connect says so.
  await byTestId(page, "recovery-state", '[data-recovered="fresh"]').waitFor({ timeout: UI_TIMEOUT });
  const seq = await taskSeenLive(ann, ann.user, `Before the reload ${Date.now()}`);
  await expect.poll(async () => (await storedPosition(ann))?.seq, { timeout: UI_TIMEOUT }).toBeGreaterThanOrEqual(seq);
  // Disconnected first, so that no later event (a mail's notification.sent, say) moves the position on.
  await ann.page.getByTestId("disconnect-button").click();
  await byTestId(page, "connection-state", '[data-state="idle"]').waitFor({ timeout: UI_TIMEOUT });
  const before = (await storedPosition(ann))!;
  expect(before.seq).toBeGreaterThanOrEqual(seq);
  expect(before.epoch).toEqual(expect.any(String));
  expect(before.epoch.length).toBeGreaterThan(0);

  // The tab leaves the page (sessionStorage stays with the tab); Bob creates a task meanwhile.
  await page.goto("about:blank");
  const missed = `Made while the page was closed ${Date.now()}`;
  const created = await bob.user.api.post(`/workspaces/${workspaceId}/tasks`, { title: missed });
  expect(created.status).toBe(201);
  const socketsBefore = ann.sockets.length;
  await page.goto(mesh!.url);
  await waitConnected(ann);

  // It resumed from the stored position, with its epoch, on a fresh ticket.
  const resumed = ann.sockets[socketsBefore]!;
  expect(resumed).toContain(`/ws/${workspaceId}?ticket=`);
  expect(resumed).toContain(`&since=${before.seq}&epoch=${encodeURIComponent(before.epoch)}`);
  expect(resumed).not.toContain("token=");

  // The missed task.created came through the catch-up, marked as missed, and is on the board.
  const logged = byTestId(page, "event-entry", '[data-type="task.created"].missed').filter({ hasText: missed });
  await logged.waitFor({ timeout: UI_TIMEOUT });
  expect(Number(await logged.getAttribute("data-seq"))).toBeGreaterThan(before.seq);
  expect(await logged.getByTestId("event-actor").textContent()).toContain("Bob");
  await taskItem(ann, missed).waitFor({ timeout: UI_TIMEOUT });
  // The outcome is shown: resumed, with the number of missed events caught up.
  const recovery = byTestId(page, "recovery-state", '[data-recovered="true"]');
  await recovery.waitFor({ timeout: UI_TIMEOUT });
  await expect.poll(async () => Number(await recovery.getAttribute("data-missed")), { timeout: UI_TIMEOUT }).toBeGreaterThanOrEqual(1);
  expect(await recovery.textContent()).toMatch(/^resumed: [1-9]\d* missed events? caught up$/);
  await page.getByTestId("event-note").filter({ hasText: `resuming after seq ${before.seq}` }).waitFor({ timeout: UI_TIMEOUT });
  // The position moved on with the caught-up events.
  await expect.poll(async () => (await storedPosition(ann))!.seq, { timeout: UI_TIMEOUT }).toBeGreaterThan(before.seq);
  await screenshot(ann, "resumed");
  expect(ann.problems).toEqual([]);
});

test("page: a position the server cannot resume (from the future, or of another epoch) shows 'history reset' and reloads the state", { timeout: 120_000 }, async () => {
  const page = ann.page;
  for (const variant of ["future seq", "foreign epoch"] as const) {
    await waitConnected(ann);
    // Disconnected first, so that no event arriving meanwhile overwrites the edited position.
    await page.getByTestId("disconnect-button").click();
    await byTestId(page, "connection-state", '[data-state="idle"]').waitFor({ timeout: UI_TIMEOUT });
    const position = (await storedPosition(ann))!;
    const edited = variant === "future seq" ? { seq: 999_999_999, epoch: position.epoch } : { seq: position.seq, epoch: "some-other-history" };
    await page.evaluate(`sessionStorage.setItem('taskboard.position.${workspaceId}', ${JSON.stringify(JSON.stringify(edited))})`);
    // Made while the page reloads: no catch-up brings it, only the REST reload.
    const title = `While the history was reset (${variant}) ${Date.now()}`;
    const socketsBefore = ann.sockets.length;
    await page.reload();
    const created = await bob.user.api.post(`/workspaces/${workspaceId}/tasks`, { title });
    expect(created.status).toBe(201);
    await waitConnected(ann);
    expect(ann.sockets[socketsBefore]).toContain(`&since=${edited.seq}&epoch=${encodeURIComponent(edited.epoch)}`);

    const recovery = byTestId(page, "recovery-state", '[data-recovered="false"]');
    await recovery.filter({ hasText: "history reset — state reloaded" }).waitFor({ timeout: UI_TIMEOUT });
    await page.getByTestId("event-note").filter({ hasText: `could not resume after seq ${edited.seq}` }).waitFor({ timeout: UI_TIMEOUT });
    await taskItem(ann, title).waitFor({ timeout: UI_TIMEOUT });
    await memberItem(ann, bob.user.id).waitFor({ timeout: UI_TIMEOUT });
    // The page continues live from the room's latest seq, in the server's epoch.
    const after = (await storedPosition(ann))!;
    expect(after.seq).toBeLessThan(999_999_999);
    expect(after.epoch).toBe(position.epoch);
    const live = `Live after the reset (${variant}) ${Date.now()}`;
    expect(await taskSeenLive(ann, bob.user, live)).toBeGreaterThan(after.seq);
    await taskItem(ann, live).waitFor({ timeout: UI_TIMEOUT });
  }
  await screenshot(ann, "history-reset");
  expect(ann.problems).toEqual([]);
});

test("page: a plain member is offered no owner/admin action; the owner is; a role change applies live", { timeout: 90_000 }, async () => {
  // Ann (owner): member management, role changes, workspace edit and delete, broadcast.
  await memberItem(ann, bob.user.id).getByTestId("member-role-change").waitFor({ timeout: UI_TIMEOUT });
  for (const id of ["member-form", "workspace-edit-form", "workspace-delete-button", "broadcast-button"]) {
    expect(await ann.page.getByTestId(id).isVisible(), id).toBe(true);
  }
  expect(await memberItem(ann, bob.user.id).getByTestId("member-remove-button").isVisible()).toBe(true);
  // Nobody is offered to change or remove the owner, not even the owner.
  expect(await memberItem(ann, ann.user.id).getByTestId("member-role-change").count()).toBe(0);
  expect(await memberItem(ann, ann.user.id).getByTestId("member-remove-button").count()).toBe(0);
  expect(await memberItem(ann, ann.user.id).getByTestId("member-leave-button").count()).toBe(0);

  // Bob (member): none of them; he may leave, and delete only the tasks he created.
  const hiddenForMember = async () => {
    await memberItem(bob, bob.user.id).getByTestId("member-leave-button").waitFor({ timeout: UI_TIMEOUT });
    for (const id of ["member-form", "workspace-edit-form", "workspace-delete-button", "broadcast-button"]) {
      expect(await bob.page.getByTestId(id).isVisible(), id).toBe(false);
    }
    expect(await bob.page.getByTestId("member-role-change").count()).toBe(0);
    expect(await bob.page.getByTestId("member-remove-button").count()).toBe(0);
  };
  await hiddenForMember();
  const annsTask = `Ann's task ${Date.now()}`;
  const bobsTask = `Bob's task ${Date.now()}`;
  await taskSeenLive(bob, ann.user, annsTask);
  await taskSeenLive(bob, bob.user, bobsTask);
  await taskItem(bob, annsTask).waitFor({ timeout: UI_TIMEOUT });
  await taskItem(bob, bobsTask).waitFor({ timeout: UI_TIMEOUT });
  expect(await taskItem(bob, annsTask).getByTestId("task-delete-button").isVisible()).toBe(false);
  expect(await taskItem(bob, bobsTask).getByTestId("task-delete-button").isVisible()).toBe(true);
  expect(await taskItem(ann, bobsTask).getByTestId("task-delete-button").isVisible()).toBe(true);
  // What is hidden would indeed be refused.
  expect((await bob.user.api.post(`/workspaces/${workspaceId}/broadcast`, { content: "no" })).status).toBe(403);
  expect((await bob.user.api.put(`/workspaces/${workspaceId}`, { name: "no" })).status).toBe(403);

  // Ann makes Bob an admin on her page: his page follows live (member.role_changed).
  await memberItem(ann, bob.user.id).getByTestId("member-role-change").selectOption("admin");
  await byTestId(bob.page, "member-form").waitFor({ state: "visible", timeout: UI_TIMEOUT });
  for (const id of ["workspace-edit-form", "broadcast-button"]) expect(await bob.page.getByTestId(id).isVisible(), id).toBe(true);
  // An admin still may not delete the workspace or change roles; he may remove a plain member, not the owner.
  expect(await bob.page.getByTestId("workspace-delete-button").isVisible()).toBe(false);
  expect(await bob.page.getByTestId("member-role-change").count()).toBe(0);
  expect(await memberItem(bob, ann.user.id).getByTestId("member-remove-button").count()).toBe(0);
  expect(await taskItem(bob, annsTask).getByTestId("task-delete-button").isVisible()).toBe(true);
  await eventEntry(ann, "member.role_changed", "Bob").waitFor({ timeout: UI_TIMEOUT });

  // And back to member.
  await memberItem(ann, bob.user.id).getByTestId("member-role-change").selectOption("member");
  await byTestId(bob.page, "member-form").waitFor({ state: "hidden", timeout: UI_TIMEOUT });
  await hiddenForMember();
  expect(await taskItem(bob, annsTask).getByTestId("task-delete-button").isVisible()).toBe(false);
  await Promise.all([screenshot(ann, "owner-controls"), screenshot(bob, "member-controls")]);
  expect(ann.problems).toEqual([]);
  expect(bob.problems).toEqual([]);
});

test("page: the event log names users (notifications, member and assignment events) instead of showing their ids", { timeout: 90_000 }, async () => {
  // A task created by Ann mails Bob (notify): notification.sent names its recipient.
  const title = `Mail Bob about this ${Date.now()}`;
  await ann.page.getByTestId("task-title-input").fill(title);
  await ann.page.getByTestId("task-create-button").click();
  await taskItem(ann, title).waitFor({ timeout: UI_TIMEOUT });
  const taskId = await taskItem(ann, title).getAttribute("data-task-id");
  const sent = byTestId(ann.page, "event-entry", '[data-type="notification.sent"]').filter({ hasText: "to Bob" });
  await sent.first().waitFor({ timeout: 45_000 });
  const summary = (await sent.first().getByTestId("event-summary").textContent())!;
  expect(summary).toMatch(/mail about task\.(created|assigned) to Bob · sent/);
  expect(summary).not.toContain(bob.user.id);
  expect(summary).not.toContain(bob.user.id.slice(0, 8));

  // Assigning names the assignee.
  await taskItem(ann, title).getByTestId("task-assignee-select").selectOption(bob.user.id);
  const assigned = eventEntry(ann, "task.assigned", title);
  await assigned.waitFor({ timeout: UI_TIMEOUT });
  expect(await assigned.getByTestId("event-summary").textContent()).toContain("→ Bob");

  // A member added from the page: member.added names them, on both pages; removed too.
  const cy = await signUp(mesh!.api, "Cy");
  await ann.page.getByTestId("member-email-input").fill(cy.email);
  await ann.page.getByTestId("member-add-button").click();
  for (const session of [ann, bob]) {
    const added = eventEntry(session, "member.added", "Cy");
    await added.waitFor({ timeout: UI_TIMEOUT });
    expect(await added.getByTestId("event-summary").textContent()).not.toContain(cy.id.slice(0, 8));
  }
  const removed = await ann.user.api.delete(`/workspaces/${workspaceId}/members/${cy.id}`);
  expect(removed.status).toBe(204);
  const gone = eventEntry(bob, "member.removed");
  await gone.filter({ hasText: "Cy removed" }).waitFor({ timeout: UI_TIMEOUT });
  expect(taskId).toBeTruthy();
});

test("page: Watch and Unwatch change who watches a task, and the other page follows the watcher events live", { timeout: 60_000 }, async () => {
  const title = `Watch me ${Date.now()}`;
  const created = await ann.user.api.post(`/workspaces/${workspaceId}/tasks`, { title });
  expect(created.status).toBe(201);
  await taskItem(bob, title).waitFor({ timeout: UI_TIMEOUT });
  await taskItem(ann, title).waitFor({ timeout: UI_TIMEOUT });
  expect(await taskItem(ann, title).getByTestId("task-meta").textContent()).toContain("watched by you");
  const button = taskItem(bob, title).getByTestId("task-watch-button");
  expect(await button.textContent()).toBe("Watch");
  await button.click();
  await taskItem(bob, title).getByTestId("task-watch-button").filter({ hasText: "Unwatch" }).waitFor({ timeout: UI_TIMEOUT });
  await taskItem(ann, title).getByTestId("task-meta").filter({ hasText: "watched by you, Bob" }).waitFor({ timeout: UI_TIMEOUT });
  await eventEntry(ann, "task.watcher_added", "Bob watches").waitFor({ timeout: UI_TIMEOUT });
  expect((await bob.user.api.get(`/tasks/${created.body.id}/watchers`)).body.items).toEqual([ann.user.id, bob.user.id]);
  await taskItem(bob, title).getByTestId("task-watch-button").click();
  await taskItem(ann, title).getByTestId("task-meta").filter({ hasNotText: "Bob" }).waitFor({ timeout: UI_TIMEOUT });
  expect((await bob.user.api.get(`/tasks/${created.body.id}/watchers`)).body.items).toEqual([ann.user.id]);
});

test("page: an owner makes a group and fills it from the page; a member's group message reaches the group only", { timeout: 60_000 }, async () => {
  const name = `Pair ${Date.now()}`;
  await ann.page.getByTestId("group-name-input").fill(name);
  await ann.page.getByTestId("group-create-button").click();
  const item = byTestId(ann.page, "group-item").filter({ hasText: name });
  await item.waitFor({ timeout: UI_TIMEOUT });
  await item.getByTestId("group-member-add").selectOption(bob.user.id);
  await item.getByTestId("group-member").filter({ hasText: "Bob" }).waitFor({ timeout: UI_TIMEOUT });
  // Bob, a plain member, sees the group (an event told his page) and may write to it, not manage it.
  await byTestId(bob.page, "group-item").filter({ hasText: name }).waitFor({ timeout: UI_TIMEOUT });
  expect(await byTestId(bob.page, "group-form").isHidden()).toBe(true);
  await bob.page.getByTestId("message-group-select").selectOption({ label: `to ${name}` });
  await bob.page.getByTestId("message-input").fill("just us two");
  await bob.page.getByTestId("message-send-button").click();
  await byTestId(bob.page, "message-item").filter({ hasText: "just us two" }).getByTestId("message-group").filter({ hasText: name }).waitFor({ timeout: UI_TIMEOUT });
  // Then one to everyone: once Ann has it, she would have had the group's too.
  await bob.page.getByTestId("message-group-select").selectOption("");
  await bob.page.getByTestId("message-input").fill("hello all");
  await bob.page.getByTestId("message-send-button").click();
  await byTestId(ann.page, "message-item").filter({ hasText: "hello all" }).waitFor({ timeout: UI_TIMEOUT });
  expect(await byTestId(ann.page, "message-item").filter({ hasText: "just us two" }).count()).toBe(0);
});

test("page: an owner adds a webhook (its secret shown once) and removes it; a member is offered no webhooks", { timeout: 60_000 }, async () => {
  await ann.page.getByTestId("webhook-url-input").fill("https://93.184.215.14/page-hook");
  await ann.page.getByTestId("webhook-events-input").fill("task.*, comment.created");
  await ann.page.getByTestId("webhook-create-button").click();
  const item = byTestId(ann.page, "webhook-item").filter({ hasText: "page-hook" });
  await item.waitFor({ timeout: UI_TIMEOUT });
  expect(await item.textContent()).toContain("task.*, comment.created");
  expect(await byTestId(ann.page, "webhook-secret").textContent()).toMatch(/whsec_/);
  const listed = (await ann.user.api.get(`/workspaces/${workspaceId}/webhooks`)).body.items;
  expect(listed.map((w: { url: string }) => w.url)).toContain("https://93.184.215.14/page-hook");
  expect(await byTestId(bob.page, "webhooks-panel").isHidden()).toBe(true);
  await item.getByTestId("webhook-delete").click();
  await item.waitFor({ state: "detached", timeout: UI_TIMEOUT });
  expect((await ann.user.api.get(`/workspaces/${workspaceId}/webhooks`)).body.items).toEqual([]);
});

test("page: the event log's type filter shows only the chosen kind of events", { timeout: 60_000 }, async () => {
  const page = bob.page;
  const message = `filtered message ${Date.now()}`;
  await page.getByTestId("message-input").fill(message);
  await page.getByTestId("message-send-button").click();
  await eventEntry(bob, "custom.message", message).waitFor({ timeout: UI_TIMEOUT });
  const title = `filtered task ${Date.now()}`;
  await taskSeenLive(bob, ann.user, title);

  const visible = (type: string) => byTestId(page, "event-entry", `[data-type="${type}"]:visible`).count();
  await page.getByTestId("event-log-filter").selectOption("task.*");
  expect(await eventEntry(bob, "task.created", title).isVisible()).toBe(true);
  expect(await eventEntry(bob, "custom.message", message).isVisible()).toBe(false);
  expect(await visible("custom.message")).toBe(0);
  expect(await visible("connected")).toBe(0);
  expect(await byTestId(page, "event-log-hidden").textContent()).toMatch(/\d+ hidden by the filter/);
  // New entries follow the filter as they arrive.
  const later = `later message ${Date.now()}`;
  await ann.page.getByTestId("message-input").fill(later);
  await ann.page.getByTestId("message-send-button").click();
  await eventEntry(bob, "custom.message", later).waitFor({ state: "attached", timeout: UI_TIMEOUT });
  expect(await eventEntry(bob, "custom.message", later).isVisible()).toBe(false);

  await page.getByTestId("event-log-filter").selectOption("custom.message");
  expect(await eventEntry(bob, "custom.message", later).isVisible()).toBe(true);
  expect(await visible("task.created")).toBe(0);
  await page.getByTestId("event-log-filter").selectOption("notification.*");
  expect(await visible("custom.message")).toBe(0);
  expect(await visible("task.created")).toBe(0);
  await page.getByTestId("event-log-filter").selectOption("");
  expect(await eventEntry(bob, "task.created", title).isVisible()).toBe(true);
  expect(await eventEntry(bob, "custom.message", message).isVisible()).toBe(true);
  expect(await byTestId(page, "event-log-hidden").textContent()).toBe("");
});

test("page: an export created from the page shows its progress live and downloads the file", { timeout: 120_000 }, async () => {
  const page = bob.page;
  const title = `Exported "task", =1+2 ${Date.now()}`;
  await taskSeenLive(bob, bob.user, title);

  for (const format of ["csv", "json"] as const) {
    const itemsBefore = await page.getByTestId("export-item").count();
    await page.getByTestId("export-type-select").selectOption("tasks");
    await page.getByTestId("export-format-select").selectOption(format);
    await page.getByTestId("export-create-button").click();
    await expect.poll(() => page.getByTestId("export-item").count(), { timeout: UI_TIMEOUT }).toBe(itemsBefore + 1);
    const item = page.getByTestId("export-item").first();
    const jobId = (await item.getAttribute("data-export-id"))!;
    expect(await item.getByTestId("export-label").textContent()).toBe(`tasks · ${format}`);
    // Progress arrives as export.* events in the room; the item ends completed at 100%.
    await byTestId(page, "export-item", `[data-export-id="${jobId}"][data-status="completed"]`).waitFor({ timeout: 60_000 });
    expect(await item.getAttribute("data-progress")).toBe("100");
    expect(await item.getByTestId("export-percent").textContent()).toBe("100%");
    expect(await item.getByTestId("export-rows").textContent()).toMatch(/^[1-9]\d* rows$/);
    for (const type of ["export.created", "export.completed"]) {
      await byTestId(page, "event-entry", `[data-type="${type}"]`).filter({ hasText: `tasks · ${format}` }).first().waitFor({ timeout: UI_TIMEOUT });
    }

    const button = item.getByTestId("export-download-button");
    await button.waitFor({ state: "visible", timeout: UI_TIMEOUT });
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: UI_TIMEOUT }), button.click()]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^tasks-\\d{8}-${jobId.slice(0, 8)}\\.${format}$`));
    const path = await download.path();
    const content = readFileSync(path!, "utf8");
    if (format === "csv") {
      const header = content.split("\r\n")[0]!;
      expect(header).toContain("id");
      expect(header).toContain("title");
      // RFC 4180 quoting of the quotes in the title (the title does not start with a formula character).
      expect(content).toContain(`"${title.replace(/"/g, '""')}"`);
    } else {
      const rows = JSON.parse(content) as { title: string }[];
      expect(rows.some((row) => row.title === title)).toBe(true);
    }
  }
  await screenshot(bob, "exports");
  expect(bob.problems).toEqual([]);
});

test("page: its code is the module /app.js on the SDK from /sdk/, and its CSP refuses inline scripts", async () => {
  const context = await browser!.newContext();
  try {
    const page = await context.newPage();
    const scripts: string[] = [];
    const refusals: string[] = [];
    page.on("request", (request) => {
      if (request.resourceType() === "script") scripts.push(new URL(request.url()).pathname);
    });
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) refusals.push(message.text());
    });
    const response = await page.goto(mesh!.url);
    expect(response?.headers()["content-security-policy"]).toMatch(/script-src 'self';/);
    await page.getByTestId("login-email").waitFor({ timeout: UI_TIMEOUT });
    // The SDK's modules are what the page runs (index.js and what it imports).
    await expect.poll(() => scripts.filter((path) => path.startsWith("/sdk/")).length, { timeout: UI_TIMEOUT }).toBeGreaterThanOrEqual(5);
    expect(scripts).toContain("/app.js");
    expect(scripts).toContain("/sdk/index.js");
    expect(scripts).toContain("/sdk/realtime.js");
    // An inline script (as an injection would add) does not run.
    await page.evaluate(`(() => { const s = document.createElement("script"); s.textContent = "window.__inline = 1"; document.body.append(s); })()`);
    await expect.poll(() => refusals.length, { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
    expect(await page.evaluate("window.__inline === undefined")).toBe(true);
    expect(refusals[0]).toMatch(/inline script/i);
  } finally {
    await context.close();
  }
});

test("page: a session whose refresh token is refused ends: back to the login form, told why, nothing kept in sessionStorage", { timeout: 60_000 }, async () => {
  const context = await browser!.newContext();
  try {
    const page = await context.newPage();
    const uncaught: string[] = [];
    page.on("pageerror", (error) => uncaught.push(error.message));
    await page.goto(mesh!.url);
    await page.getByTestId("login-email").fill(bob.user.email);
    await page.getByTestId("login-password").fill(bob.user.password);
    await page.getByTestId("login-button").click();
    await page.getByTestId("current-user").filter({ hasText: bob.user.name }).waitFor({ timeout: UI_TIMEOUT });
    // The page's refresh token is spent elsewhere, and its access token no longer works: the next call
    // is refused, the SDK's refresh is refused too (reuse of a spent token), and the session is over.
    const stored = JSON.parse(String(await page.evaluate("sessionStorage.getItem('taskboard.session')")));
    expect((await mesh!.api.post("/auth/refresh", { refresh_token: stored.tokens.refresh_token })).status).toBe(200);
    stored.tokens.access_token = "not-a-token";
    await page.evaluate(`sessionStorage.setItem('taskboard.session', ${JSON.stringify(JSON.stringify(stored))})`);
    await page.reload();
    await byTestId(page, "auth-panel").waitFor({ state: "visible", timeout: UI_TIMEOUT });
    await page.getByTestId("error-text").filter({ hasText: "Your session has ended" }).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.getByTestId("app").isHidden()).toBe(true);
    expect(await page.evaluate("sessionStorage.getItem('taskboard.session')")).toBeNull();
    expect(uncaught).toEqual([]);
  } finally {
    await context.close();
  }
});

test("page: every socket the pages opened carried a single-use ticket, never the access token (neither in a URL nor in the console)", async () => {
  for (const session of sessions) {
    expect(session.sockets.length).toBeGreaterThan(0);
    const stored = JSON.parse(String(await session.page.evaluate("sessionStorage.getItem('taskboard.session')")));
    const token: string = stored.tokens.access_token;
    const tickets = new Set<string>();
    for (const url of session.sockets) {
      const query = new URL(url).searchParams;
      expect(url).toContain("?ticket=");
      expect(url).not.toContain("token=");
      expect(url).not.toContain(token);
      tickets.add(query.get("ticket")!);
    }
    // A new ticket for every connect.
    expect(tickets.size).toBe(session.sockets.length);
    for (const line of session.console) expect(line).not.toContain(token);
    expect(session.problems).toEqual([]);
  }
  // Ann reloaded three times: four sockets, each with its own ticket.
  expect(ann.sockets.length).toBeGreaterThanOrEqual(4);
});
