import { createServer, connect, type Server, type Socket } from "node:net";
import type { Browser } from "playwright-core";
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

// The browser test page (GET /, internal/gateway/public/index.html) driven by Debian's
// Chromium through playwright-core: two users, each in their own browser context, work
// in one workspace and see each other's changes live. The helpers are test/support/browser.ts.

let mesh: Mesh | undefined;
let browser: Browser | undefined;
let workspaceId: string;
let ann: Session;
let bob: Session;
const title = `Ship the browser test ${Date.now()}`;

beforeAll(async () => {
  mesh = await Mesh.start({ env: { PRESENCE_DEBOUNCE_MS: "300" } });
  browser = await launchChromium();
  const [owner, member] = await Promise.all([signUp(mesh.api, "Ann"), signUp(mesh.api, "Bob")]);
  const ws = await owner!.api.post("/workspaces", { name: "Browser room", description: "driven by playwright" });
  expect(ws.status).toBe(201);
  workspaceId = ws.body.id;
  expect((await owner!.api.post(`/workspaces/${workspaceId}/members`, { email: member!.email, role: "member" })).status).toBe(201);
  ann = await openPage("page1-ann", owner!);
  bob = await openPage("page2-bob", member!);
});

afterAll(async () => {
  for (const session of [ann, bob]) if (session) await screenshot(session, "final");
  await browser?.close();
  await mesh?.stop();
});

/** A TCP proxy in front of the gateway whose "network" can be cut (every connection dropped, new ones refused) and restored. */
class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private up = true;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: URL): Promise<CuttableProxy> {
    let proxy: CuttableProxy | undefined;
    const server = createServer((client) => {
      if (!proxy?.up) return void client.destroy();
      const upstream = connect(Number(target.port), target.hostname);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        proxy.sockets.add(from);
        from.on("error", () => to.destroy());
        from.on("close", () => {
          proxy?.sockets.delete(from);
          to.destroy();
        });
        from.pipe(to);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("proxy has no port");
    proxy = new CuttableProxy(server, `http://127.0.0.1:${address.port}`);
    return proxy;
  }

  cut(): void {
    this.up = false;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function openPage(label: string, user: SignedUp, baseUrl = mesh!.url, path = "/"): Promise<Session> {
  return openBrowserPage(browser!, label, user, `${baseUrl}${path}`);
}

const logInAndConnect = (session: Session, workspace = workspaceId) => logIn(session, workspace);

test("browser: each user logs in through the page, picks the shared workspace and joins its room", async () => {
  for (const session of [ann, bob]) await logInAndConnect(session);
  for (const session of [ann, bob]) {
    await session.page.getByTestId("member-item").nth(1).waitFor({ timeout: UI_TIMEOUT });
    expect(await session.page.getByTestId("member-item").count()).toBe(2);
    // Both users are online: Bob's presence.joined made Ann's page reload the presence list.
    await session.page.getByTestId("presence-item").filter({ hasText: "Ann" }).waitFor({ timeout: UI_TIMEOUT });
    await session.page.getByTestId("presence-item").filter({ hasText: "Bob" }).waitFor({ timeout: UI_TIMEOUT });
    expect(session.sockets).toHaveLength(1);
    expect(session.sockets[0]).toContain(`/ws/${workspaceId}?ticket=`);
    expect(session.sockets[0]).not.toContain("since=");
  }
  // The tokens live in sessionStorage too (for a reload of the tab).
  const stored = await ann.page.evaluate("sessionStorage.getItem('taskboard.session')");
  expect(JSON.parse(String(stored)).tokens.refresh_token).toEqual(expect.any(String));
});

test("browser: a task created on one page appears live on the other, in the list and in the event log with its seq", async () => {
  await ann.page.getByTestId("task-title-input").fill(title);
  await ann.page.getByTestId("task-priority-select").selectOption("high");
  await ann.page.getByTestId("task-labels-input").fill("ops, q3 ,ops");
  await ann.page.getByTestId("task-create-button").click();
  await taskItem(ann, title).waitFor({ timeout: UI_TIMEOUT });

  const onBob = taskItem(bob, title);
  await onBob.waitFor({ timeout: UI_TIMEOUT });
  expect(await onBob.getAttribute("data-priority")).toBe("high");
  expect(await onBob.getAttribute("data-status")).toBe("pending");
  expect(await onBob.getByTestId("task-title").textContent()).toBe(title);
  expect(await onBob.getByTestId("task-label").allTextContents()).toEqual(["ops", "q3"]);

  const logged = eventEntry(bob, "task.created", title);
  await logged.waitFor({ timeout: UI_TIMEOUT });
  const seq = Number(await logged.getAttribute("data-seq"));
  expect(await logged.getByTestId("event-seq").textContent()).toBe(`#${seq}`);
  expect(await logged.getByTestId("event-actor").textContent()).toContain("Ann");
  // The seq shown is the event's stream sequence, as the events API reports it.
  const events = await ann.user.api.get(`/workspaces/${workspaceId}/events?type=task.created`);
  expect(events.status).toBe(200);
  const stored = events.body.items.find((e: { data: { title: string } }) => e.data.title === title);
  expect(stored?.seq).toBe(seq);
  // Ann's page logged the same event with the same seq.
  expect(await eventEntry(ann, "task.created", title).getAttribute("data-seq")).toBe(String(seq));

  expect(bob.navigations).toBe(1);
  expect(bob.sockets).toHaveLength(1);
  await Promise.all([screenshot(ann, "task-created"), screenshot(bob, "task-created")]);
});

test("browser: a custom message sent from one page shows up on the other", async () => {
  const text = `hello from Bob ${Date.now()}`;
  await bob.page.getByTestId("message-input").fill(text);
  await bob.page.getByTestId("message-send-button").click();

  const message = ann.page.getByTestId("message-item").filter({ hasText: text });
  await message.waitFor({ timeout: UI_TIMEOUT });
  expect(await message.getByTestId("message-author").textContent()).toBe("Bob");
  const logged = eventEntry(ann, "custom.message", text);
  await logged.waitFor({ timeout: UI_TIMEOUT });
  expect(Number(await logged.getAttribute("data-seq"))).toBeGreaterThan(0);
  expect(await logged.getByTestId("event-actor").textContent()).toContain("Bob");
  // The sender gets it too (the room includes the sender).
  await eventEntry(bob, "custom.message", text).waitFor({ timeout: UI_TIMEOUT });
  expect(ann.navigations).toBe(1);
  await Promise.all([screenshot(ann, "message"), screenshot(bob, "message")]);
});

test("browser: status changes, assignments and comments made on one page update the other live", async () => {
  await taskItem(bob, title).getByTestId("task-status-select").selectOption("in_progress");
  await byTestId(ann.page, "task-item", '[data-status="in_progress"]').filter({ hasText: title }).waitFor({ timeout: UI_TIMEOUT });

  // Labels edited on one page (comma-separated, applied on change) show on the other.
  await taskItem(bob, title).getByTestId("task-labels-edit").fill("ops, blocked");
  await taskItem(bob, title).getByTestId("task-labels-edit").press("Enter");
  await taskItem(ann, title).getByTestId("task-label").filter({ hasText: "blocked" }).waitFor({ timeout: UI_TIMEOUT });
  expect(await taskItem(ann, title).getByTestId("task-label").allTextContents()).toEqual(["ops", "blocked"]);

  await taskItem(ann, title).getByTestId("task-assignee-select").selectOption(bob.user.id);
  await eventEntry(bob, "task.assigned", title).waitFor({ timeout: UI_TIMEOUT });
  expect(await taskItem(bob, title).getByTestId("task-assignee-select").inputValue()).toBe(bob.user.id);

  const comment = `Looks good, Ann ${Date.now()}`;
  await taskItem(bob, title).getByTestId("task-comments-toggle").click();
  await taskItem(bob, title).getByTestId("comment-input").fill(comment);
  await taskItem(bob, title).getByTestId("comment-add-button").click();
  await taskItem(bob, title).getByTestId("comment-item").filter({ hasText: comment }).waitFor({ timeout: UI_TIMEOUT });
  // Ann's comments are closed: the toggle counts the new one, and opening shows it.
  await eventEntry(ann, "comment.created", comment).waitFor({ timeout: UI_TIMEOUT });
  await taskItem(ann, title).getByTestId("task-comments-toggle").filter({ hasText: "1 new" }).waitFor({ timeout: UI_TIMEOUT });
  await taskItem(ann, title).getByTestId("task-comments-toggle").click();
  await taskItem(ann, title).getByTestId("comment-item").filter({ hasText: comment }).waitFor({ timeout: UI_TIMEOUT });
});

test("browser: user content is shown as text, never as markup", async () => {
  const hostile = `<img src=x data-xss="1" onerror="window.__xss=1"> <b>bold</b> & "quotes" ${Date.now()}`;
  const created = await ann.user.api.post(`/workspaces/${workspaceId}/tasks`, { title: hostile, description: "<script>window.__xss=2</script>" });
  expect(created.status).toBe(201);
  for (const session of [ann, bob]) {
    const item = session.page.locator(`[data-testid="task-item"][data-task-id="${created.body.id}"]`);
    await item.waitFor({ timeout: UI_TIMEOUT });
    expect(await item.getByTestId("task-title").textContent()).toBe(hostile);
    expect(await item.getByTestId("task-description").textContent()).toBe("<script>window.__xss=2</script>");
    expect(await session.page.locator("[data-xss]").count()).toBe(0);
    expect(await session.page.evaluate("window.__xss === undefined")).toBe(true);
  }
});

test("browser: after a dropped connection the page reconnects with backoff and since, and receives the events it missed", { timeout: 60_000 }, async () => {
  // A third page, Ann's again, reaches the gateway through a proxy that can cut the network.
  const proxy = await CuttableProxy.start(new URL(mesh!.url));
  const away = await openPage("page3-ann-via-proxy", ann.user, proxy.url);
  try {
    await logInAndConnect(away);
    const socketsBefore = away.sockets.length;
    const notes = away.page.getByTestId("event-note");

    proxy.cut();
    await notes.filter({ hasText: "socket closed: 1006" }).first().waitFor({ timeout: UI_TIMEOUT });
    // The page's position: the seq of the last event it received.
    const lastSeq = Number((await away.page.getByTestId("last-seq").textContent())?.replace("last seq ", ""));
    expect(lastSeq).toBeGreaterThan(0);

    // Bob, still online, creates a task while the page is away.
    const missed = `Made while you were away ${Date.now()}`;
    await bob.page.getByTestId("task-title-input").fill(missed);
    await bob.page.getByTestId("task-create-button").click();
    await taskItem(bob, missed).waitFor({ timeout: UI_TIMEOUT });
    // The page keeps trying (and failing) meanwhile, backing off: each attempt first asks
    // for a ticket, which fails while the network is cut, so no socket is even opened.
    await notes.filter({ hasText: /cannot get a ticket|before the connected frame/ }).nth(1).waitFor({ timeout: UI_TIMEOUT });
    expect(await byTestId(away.page, "connection-state", '[data-state="connected"]').count()).toBe(0);

    proxy.restore();
    await waitConnected(away, 30_000);
    await taskItem(away, missed).waitFor({ timeout: UI_TIMEOUT });
    const logged = eventEntry(away, "task.created", missed);
    await logged.waitFor({ timeout: UI_TIMEOUT });
    expect(Number(await logged.getAttribute("data-seq"))).toBeGreaterThan(lastSeq);
    // Every socket opened after the drop (on a fresh ticket) asked for what came after the last event seen.
    const attempts = away.sockets.slice(socketsBefore);
    expect(attempts.length).toBeGreaterThanOrEqual(1);
    for (const url of attempts) {
      expect(url).toContain("?ticket=");
      expect(url).toContain(`&since=${lastSeq}`);
    }
    // The task came through the catch-up, not a reload of the page or of the task list.
    expect(away.navigations).toBe(1);
    const seqs = await byTestId(away.page, "event-entry", ":not([data-seq='']):not(.dup)").getByTestId("event-seq").allTextContents();
    expect(seqs.length).toBeGreaterThan(0);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(away.problems).toEqual([]);
  } finally {
    await screenshot(away, "reconnected");
    await away.context.close();
    await proxy.close();
  }
});

test("browser: the page refreshes its access token before it expires and hands the fresh one to its open socket", { timeout: 90_000 }, async () => {
  // A mesh of its own whose access tokens live 10 s (the least allowed); the gateway
  // closes a socket whose token expired with 4001 within a second.
  const shortLived = await Mesh.start({ env: { ACCESS_TOKEN_TTL_SECONDS: "10" } });
  let session: Session | undefined;
  try {
    const user = await signUp(shortLived.api, "Dana");
    const ws = await user.api.post("/workspaces", { name: "Short-lived tokens" });
    expect(ws.status).toBe(201);
    session = await openPage("page4-token-refresh", user, shortLived.url);
    await logInAndConnect(session, ws.body.id);
    const page = session.page;
    const storedToken = () => page.evaluate("JSON.parse(sessionStorage.getItem('taskboard.session')).tokens.access_token");
    const firstToken = await storedToken();

    // Two refreshes (at about 8 s and 16 s): the first token has long expired by the second.
    await byTestId(page, "token-state", '[data-refreshes="2"]').waitFor({ timeout: 30_000 });
    expect(await storedToken()).not.toBe(firstToken);
    // Still the first socket, never closed: the gateway got each fresh token over it.
    expect(session.sockets).toHaveLength(1);
    expect(await page.getByTestId("event-note").filter({ hasText: "socket closed" }).count()).toBe(0);
    await byTestId(page, "connection-state", '[data-state="connected"]').waitFor({ timeout: 1_000 });
    const text = `still here ${Date.now()}`;
    await page.getByTestId("message-input").fill(text);
    await page.getByTestId("message-send-button").click();
    await eventEntry(session, "custom.message", text).waitFor({ timeout: UI_TIMEOUT });
    // REST calls use the fresh token too.
    await page.getByTestId("presence-refresh-button").click();
    await page.getByTestId("presence-item").filter({ hasText: "Dana" }).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.getByTestId("error-banner").isHidden()).toBe(true);
    expect(session.problems).toEqual([]);
  } finally {
    if (session) {
      await screenshot(session, "refreshed");
      await session.context.close();
    }
    await shortLived.stop();
  }
});

test("browser: a link to a workspace (as in notification e-mails) opens it and joins its room after logging in", async () => {
  const linked = await openPage("page3-bob-link", bob.user, mesh!.url, `/?workspace=${workspaceId}`);
  try {
    await linked.page.getByTestId("login-email").fill(bob.user.email);
    await linked.page.getByTestId("login-password").fill(bob.user.password);
    await linked.page.getByTestId("login-button").click();
    await waitConnected(linked);
    expect(await linked.page.getByTestId("workspace-select").inputValue()).toBe(workspaceId);
    expect(linked.sockets[0]).toContain(`/ws/${workspaceId}?ticket=`);
    expect(linked.problems).toEqual([]);
  } finally {
    await linked.context.close();
  }
});

test("browser: the pages ran without uncaught errors or Content-Security-Policy refusals", () => {
  expect(ann.problems).toEqual([]);
  expect(bob.problems).toEqual([]);
});
