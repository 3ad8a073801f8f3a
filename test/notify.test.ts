import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import type { MeshProcess } from "../internal/devenv/processes.js";
import type { Event } from "../internal/platform/events.js";
import { durableName } from "../internal/notify/consumers.js";
import { classify } from "../internal/notify/mailer.js";
import { taskCreatedMail } from "../internal/notify/templates.js";
import { html } from "../internal/platform/html.js";
import { NOTIFIED_TYPES } from "../internal/notify/service.js";
import { EventTap, type Seen } from "./support/events.js";
import { Mailbox } from "./support/mailbox.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { waitFor } from "./support/wait.js";

// Real processes, the real SES stand-in (aws-ses-v2-local) and, for SES
// failures, a small HTTP proxy in front of it that answers like SES would.

const APP_URL = "http://app.taskboard.test";
/** Short, so that a killed replica's unacknowledged event comes back quickly. */
const ACK_WAIT_MS = 3_000;

let mesh: Mesh;
let tap: EventTap;
const sesEndpoint = inject("servers").sesEndpoint;

beforeAll(async () => {
  mesh = await Mesh.start({
    env: { APP_URL, NOTIFY_ACK_WAIT_MS: String(ACK_WAIT_MS), NOTIFY_REDELIVERY_MS: "200", NOTIFY_RETRY_BASE_MS: "50" },
  });
  tap = new EventTap(await mesh.nats(), mesh.id);
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

// --- the SES stand-in's mailbox

const mailbox = new Mailbox();
const mailsTo = (address: string) => mailbox.to(address);
const mailsAbout = (user: SignedUp, subjectPart: string) => mailbox.about(user, subjectPart);
const waitForMails = (user: SignedUp, subjectPart: string, count = 1) => mailbox.waitFor(user, subjectPart, count);

// --- the mesh

/** Waits until every notify durable has handled and acknowledged everything stored so far. */
async function settled(what: string): Promise<void> {
  const jsm = await (await mesh.nats()).jetstreamManager();
  await waitFor(
    `notify to finish with ${what} (every durable without pending or unacknowledged events)`,
    async () => {
      for (const type of NOTIFIED_TYPES) {
        const info = await jsm.consumers.info(mesh.streamName, durableName(type));
        if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
      }
      return true;
    },
    30_000,
    100,
  );
}

/** Waits until the source event is on the stream (a durable cannot have it before), then until notify handled it. */
async function handled(type: string, aggregateId: string): Promise<Seen> {
  const seen = await tap.waitFor(`${type} ${aggregateId}`, (s) => s.event.type === type && s.event.aggregate_id === aggregateId);
  await settled(`${type} ${aggregateId}`);
  return seen;
}

/** The value of a counter on a process's /metrics, summed over the label sets that contain `labels`. */
async function metric(process: MeshProcess, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${process.ports["admin"]}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

/** Resolves with the exit code, or fails after `ms` saying what it waited for. */
async function exitOf(process: MeshProcess, what: string, ms = 20_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([process.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function notifyProcess(label = "notify"): MeshProcess {
  const process = mesh.processes.get(label);
  if (!process) throw new Error(`no process ${label}`);
  return process;
}

interface Delivery {
  state: string;
  claims: number;
  message_id: string | null;
  error: string | null;
  resent_in_doubt: boolean;
}

async function deliveryOf(eventId: string, recipientId: string): Promise<Delivery | undefined> {
  const sql = mesh.sql();
  const [row] = await sql<Delivery[]>`
    select state, claims, message_id, error, resent_in_doubt from notify.deliveries where event_id = ${eventId} and recipient_id = ${recipientId}`;
  return row;
}

// --- a workspace and its people

interface Team {
  workspaceId: string;
  owner: SignedUp;
  members: SignedUp[];
}

/** A fresh workspace owned by `ownerName`, with one member per other name. */
async function team(ownerName: string, ...memberNames: string[]): Promise<Team> {
  const [owner, ...members] = await Promise.all([ownerName, ...memberNames].map((name) => signUp(mesh.api, name)));
  const ws = await owner!.api.post("/workspaces", { name: "Launch" });
  expect(ws.status, ws.text).toBe(201);
  for (const member of members) {
    const added = await owner!.api.post(`/workspaces/${ws.body.id}/members`, { user_id: member.id, role: "member" });
    expect(added.status, added.text).toBe(201);
  }
  return { workspaceId: ws.body.id, owner: owner!, members };
}

async function createTask(user: SignedUp, workspaceId: string, body: Record<string, unknown>): Promise<{ id: string }> {
  const res = await user.api.post(`/workspaces/${workspaceId}/tasks`, body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function comment(user: SignedUp, workspaceId: string, taskId: string, content: string): Promise<{ id: string }> {
  const res = await user.api.post(`/workspaces/${workspaceId}/comments`, { task_id: taskId, content });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

function sentTo(workspaceId: string, eventId: string, recipientId: string) {
  return (s: Seen) =>
    s.subject === `${mesh.id}.notifications.${workspaceId}.sent` &&
    s.event.type === "notification.sent" &&
    s.event.data?.["event_id"] === eventId &&
    s.event.data?.["recipient_id"] === recipientId;
}

describe("notify: templates and SES errors", () => {
  test("templates: every interpolated value is escaped, markup made by the tag is kept, and the subject is one line", () => {
    const inner = html`<em>${"<b>x</b>"}</em>`;
    expect(html`<p>${`"&'<>`}${inner}${[inner, "<i>"]}${undefined}</p>`.markup).toBe(
      "<p>&quot;&amp;&#39;&lt;&gt;<em>&lt;b&gt;x&lt;/b&gt;</em><em>&lt;b&gt;x&lt;/b&gt;</em>&lt;i&gt;</p>",
    );
    const mail = taskCreatedMail(
      { appUrl: "https://tb.example", workspaceId: "w&1", recipientName: "<Bob>", unsubscribeUrl: "https://tb.example/unsubscribe?token=a%26b" },
      { actorName: "Ann", title: "Two\r\nlines <b>", description: "" },
    );
    expect(mail.subject).toBe("[Taskboard] New task: Two lines <b>");
    expect(mail.html).toContain('href="https://tb.example/?workspace=w%261"');
    expect(mail.html).toContain("Hi &lt;Bob&gt;,");
    expect(mail.html).not.toContain("<blockquote");
    expect(mail.html).toContain('href="https://tb.example/unsubscribe?token=a%26b"');
    expect(mail.text).toContain("Unsubscribe from notifications: https://tb.example/unsubscribe?token=a%26b");
    expect(mail.unsubscribeUrl).toBe("https://tb.example/unsubscribe?token=a%26b");
  });

  test.each([
    [{ name: "TooManyRequestsException", $metadata: { httpStatusCode: 429 } }, "throttled", true],
    [{ name: "InternalFailure", $metadata: { httpStatusCode: 503 } }, "server_error", true],
    [{ name: "TimeoutError", $metadata: {} }, "network", true],
    [{ name: "MessageRejected", $metadata: { httpStatusCode: 400 } }, "rejected", false],
    [{ name: "SendingPausedException", $metadata: { httpStatusCode: 400 } }, "rejected", false],
  ])("mailer: SES error %o is %s (retried: %s)", (error, failure, transient) => {
    const classified = classify(Object.assign(new Error("boom"), error));
    expect(classified.failure).toBe(failure);
    expect(classified.transient).toBe(transient);
  });
});

describe("notify: recipients and content", () => {
  test("notify: task.created mails every member but the actor, user content escaped, linking to the workspace", async () => {
    const { workspaceId, owner, members } = await team(`Ann <i>O'Hara</i>`, "Bob", "Carol");
    const [bob, carol] = members as [SignedUp, SignedUp];
    const title = `<b>Launch</b> & "go" <img src=x onerror=alert(1)>`;
    const task = await createTask(owner, workspaceId, { title, description: "<script>alert('x')</script>\nline two" });

    const [mail] = await waitForMails(bob, "New task");
    expect(mail!.subject).toBe(`[Taskboard] New task: ${title}`);
    expect(mail!.from).toContain("no-reply@taskboard.local");
    const html = mail!.body.html!;
    expect(html).toContain("&lt;b&gt;Launch&lt;/b&gt; &amp; &quot;go&quot; &lt;img src=x onerror=alert(1)&gt;");
    expect(html).toContain("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
    expect(html).toContain("Ann &lt;i&gt;O&#39;Hara&lt;/i&gt;");
    expect(html).toContain("Hi Bob,");
    for (const raw of ["<b>Launch", "<img", "<script>", "<i>O'Hara"]) expect(html).not.toContain(raw);
    const link = `${APP_URL}/?workspace=${workspaceId}`;
    expect(html).toContain(`href="${link}"`);
    expect(mail!.body.text).toContain(title);
    expect(mail!.body.text).toContain(link);
    expect(mail!.body.text).toContain("> <script>alert('x')</script>\n> line two");
    await waitForMails(carol, "New task");

    const created = await handled("task.created", task.id);
    const sent = await tap.waitFor("notification.sent to Bob", sentTo(workspaceId, created.event.id, bob.id));
    expect(sent.event.data).toEqual({
      event_id: created.event.id,
      event_type: "task.created",
      recipient_id: bob.id,
      message_id: mail!.messageId,
    });
    expect(sent.event.aggregate_id).toBe(created.event.id);
    expect(await mailsTo(owner.email)).toEqual([]);
    expect(await mailsAbout(bob, "New task")).toHaveLength(1);
    expect(await mailsAbout(carol, "New task")).toHaveLength(1);
  });

  test("notify: a member with email_notifications off gets no mail", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob", "Quiet");
    const [bob, quiet] = members as [SignedUp, SignedUp];
    const off = await quiet.api.put(`/users/${quiet.id}`, { email_notifications: false });
    expect(off.status, off.text).toBe(200);
    expect(off.body.email_notifications).toBe(false);

    const task = await createTask(owner, workspaceId, { title: "Preferences" });
    await waitForMails(bob, "Preferences");
    await handled("task.created", task.id);
    expect(await mailsTo(quiet.email)).toEqual([]);
  });

  test("notify: a member removed after the event and before the mail is sent gets none", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob", "Leaving");
    const [bob, leaving] = members as [SignedUp, SignedUp];
    await settled("earlier tests");
    await notifyProcess().stop();

    const task = await createTask(owner, workspaceId, { title: "Send-time membership" });
    await tap.waitFor("task.created on the stream", (s) => s.event.type === "task.created" && s.event.aggregate_id === task.id);
    const removed = await owner.api.delete(`/workspaces/${workspaceId}/members/${leaving.id}`);
    expect(removed.status, removed.text).toBe(204);

    await mesh.startProcess("notify");
    await waitForMails(bob, "Send-time membership");
    await handled("task.created", task.id);
    expect(await mailsTo(leaving.email)).toEqual([]);
  });

  test("notify: its cached member list follows changes at once: an added member gets the next mail, a removed one none", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob");
    const [bob] = members as [SignedUp];
    const dave = await signUp(mesh.api, "Dave");
    const first = await createTask(owner, workspaceId, { title: "Cache warm-up" });
    await waitForMails(bob, "Cache warm-up");
    await handled("task.created", first.id);
    const cached = await metric(notifyProcess(), "taskboard_membership_lookups_total", 'source="cache"');

    expect((await owner.api.post(`/workspaces/${workspaceId}/members`, { user_id: dave.id, role: "member" })).status).toBe(201);
    expect((await owner.api.delete(`/workspaces/${workspaceId}/members/${bob.id}`)).status).toBe(204);
    const second = await createTask(owner, workspaceId, { title: "After the changes" });
    await waitForMails(dave, "After the changes");
    await handled("task.created", second.id);
    expect(await mailsAbout(bob, "After the changes")).toEqual([]);

    // With no change in between, the list comes from the cache (so the evictions above were what refreshed it).
    const third = await createTask(owner, workspaceId, { title: "Unchanged members" });
    await waitForMails(dave, "Unchanged members");
    await handled("task.created", third.id);
    expect(await metric(notifyProcess(), "taskboard_membership_lookups_total", 'source="cache"')).toBeGreaterThan(cached);
  });

  test("notify: task.assigned mails the assignee, and nobody when someone assigns themself", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob", "Carol");
    const [bob, carol] = members as [SignedUp, SignedUp];
    const task = await createTask(owner, workspaceId, { title: "Assign me <please>" });
    const assigned = await owner.api.post(`/tasks/${task.id}/assign`, { assignee_id: bob.id });
    expect(assigned.status, assigned.text).toBe(200);

    const [mail] = await waitForMails(bob, "Assigned to you");
    expect(mail!.subject).toBe("[Taskboard] Assigned to you: Assign me <please>");
    expect(mail!.body.html).toContain("Assign me &lt;please&gt;");
    expect(mail!.body.html).toContain("<strong>Owner</strong> assigned a task to you");
    await handled("task.assigned", task.id);

    const own = await createTask(owner, workspaceId, { title: "Self service" });
    const self = await carol.api.post(`/tasks/${own.id}/assign`, { assignee_id: carol.id });
    expect(self.status, self.text).toBe(200);
    await handled("task.assigned", own.id);
    expect(await mailsAbout(carol, "Assigned to you")).toEqual([]);
    expect(await mailsAbout(owner, "Assigned to you")).toEqual([]);
    expect(await mailsAbout(bob, "Assigned to you")).toHaveLength(1);
  });

  test("notify: a task created assigned mails the assignee 'assigned to you' (not 'created') and the others 'created'", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob", "Carol");
    const [bob, carol] = members as [SignedUp, SignedUp];
    const task = await createTask(owner, workspaceId, { title: "Yours from the start", assignee_id: bob.id });
    const [mail] = await waitForMails(bob, "Assigned to you");
    expect(mail!.subject).toBe("[Taskboard] Assigned to you: Yours from the start");
    await waitForMails(carol, "Yours from the start");
    await handled("task.created", task.id);
    await handled("task.assigned", task.id);
    expect((await mailsAbout(bob, "Yours from the start")).map((m) => m.subject)).toEqual(["[Taskboard] Assigned to you: Yours from the start"]);
    expect((await mailsAbout(carol, "Yours from the start")).map((m) => m.subject)).not.toContain("[Taskboard] Assigned to you: Yours from the start");
  });

  test("notify: watchers hear of assignments, status changes and comments (never of their own actions); other edits mail nobody", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Wes", "Ada", "Cal");
    const [wes, ada, cal] = members as [SignedUp, SignedUp, SignedUp];
    const task = await createTask(owner, workspaceId, { title: "Watch this" });
    expect((await wes.api.put(`/tasks/${task.id}/watchers/${wes.id}`)).status).toBe(204);

    expect((await owner.api.post(`/tasks/${task.id}/assign`, { assignee_id: ada.id })).status).toBe(200);
    const [assigned] = await waitForMails(wes, "Assigned to Ada");
    expect(assigned!.subject).toBe("[Taskboard] Assigned to Ada: Watch this");
    expect(assigned!.body.html).toContain("<strong>Owner</strong> assigned a task you watch to <strong>Ada</strong>");
    await waitForMails(ada, "Assigned to you: Watch this");

    // Ada (now a watcher, as the assignee) completes it: Wes and the owner (creator) hear, Ada does not.
    expect((await ada.api.put(`/tasks/${task.id}`, { status: "completed" })).status).toBe(200);
    const [done] = await waitForMails(wes, "Now completed");
    expect(done!.subject).toBe("[Taskboard] Now completed: Watch this");
    await waitForMails(owner, "Now completed: Watch this");
    // A title change mails nobody.
    const renamed = await ada.api.put(`/tasks/${task.id}`, { title: "Watch this, renamed" });
    expect(renamed.status).toBe(200);
    await handled("task.updated", task.id);

    await cal.api.post(`/workspaces/${workspaceId}/comments`, { task_id: task.id, content: "Looks good" });
    await waitForMails(wes, "New comment on: Watch this, renamed");
    await settled("the comment");
    expect(await mailsAbout(ada, "Now completed")).toEqual([]);
    // Cal (a member, not a watcher) had only the task.created mail.
    expect((await mailsAbout(cal, "Watch this")).map((m) => m.subject)).toEqual(["[Taskboard] New task: Watch this"]);
    expect((await mailsTo(wes.email)).filter((m) => m.subject.includes("renamed")).map((m) => m.subject)).toEqual([
      "[Taskboard] New comment on: Watch this, renamed",
    ]);

    // Stopped watching: no more.
    expect((await wes.api.delete(`/tasks/${task.id}/watchers/${wes.id}`)).status).toBe(204);
    await cal.api.post(`/workspaces/${workspaceId}/comments`, { task_id: task.id, content: "One more" });
    await waitForMails(ada, "New comment on: Watch this, renamed", 2);
    expect(await mailsAbout(wes, "New comment on")).toHaveLength(1);
  });

  test("notify: comment.created mails the creator, the assignee and earlier commenters, never the author", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Assignee", "Carol", "Dave", "Eve");
    const [assignee, carol, dave, eve] = members as [SignedUp, SignedUp, SignedUp, SignedUp];
    const task = await createTask(owner, workspaceId, { title: "Discuss", assignee_id: assignee.id });

    const first = await comment(carol, workspaceId, task.id, "First <b>thoughts</b> & more");
    await handled("comment.created", first.id);
    const [toOwner] = await waitForMails(owner, "New comment on: Discuss");
    expect(toOwner!.body.html).toContain("First &lt;b&gt;thoughts&lt;/b&gt; &amp; more");
    expect(toOwner!.body.html).toContain("<strong>Carol</strong> commented");
    expect(toOwner!.body.text).toContain("> First <b>thoughts</b> & more");
    await waitForMails(assignee, "New comment on: Discuss");
    expect(await mailsAbout(carol, "New comment")).toEqual([]);

    const second = await comment(dave, workspaceId, task.id, "Second");
    await handled("comment.created", second.id);
    await waitForMails(carol, "New comment on: Discuss");
    expect(await mailsAbout(owner, "New comment")).toHaveLength(2);
    expect(await mailsAbout(assignee, "New comment")).toHaveLength(2);
    expect(await mailsAbout(carol, "New comment")).toHaveLength(1);
    expect(await mailsAbout(dave, "New comment")).toEqual([]);
    expect(await mailsAbout(eve, "New comment")).toEqual([]);
  });
});

describe("notify: each mail exactly once", () => {
  test("notify: killed after recording a mail and before acknowledging the event, it does not send it again", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob");
    const [bob] = members as [SignedUp];
    await settled("earlier tests");
    await mesh.restart("notify", { NOTIFY_FAULT: "exit-after-record" });
    const faulty = notifyProcess();

    const task = await createTask(owner, workspaceId, { title: "Crash after record" });
    expect(await exitOf(faulty, "notify to kill itself after recording the mail")).toBeNull();
    expect(await mailsAbout(bob, "Crash after record")).toHaveLength(1);
    const created = await tap.waitFor("task.created", (s) => s.event.type === "task.created" && s.event.aggregate_id === task.id);
    expect((await deliveryOf(created.event.id, bob.id))?.state).toBe("sent");

    const fresh = await mesh.startProcess("notify");
    await settled("the redelivered event");
    await waitFor("the redelivery to be suppressed", async () => (await metric(fresh, "taskboard_notify_duplicates_suppressed_total")) >= 1);
    // notification.sent was committed with the record; the new replica's outbox relay publishes it.
    await tap.waitFor("notification.sent to Bob", sentTo(workspaceId, created.event.id, bob.id));
    expect(await mailsAbout(bob, "Crash after record")).toHaveLength(1);
  });

  test("notify: a claim left by a replica killed before sending is taken over once it expires, and sent once", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob");
    const [bob] = members as [SignedUp];
    await settled("earlier tests");
    await mesh.restart("notify", { NOTIFY_FAULT: "exit-after-claim", NOTIFY_CLAIM_TTL_MS: "2000", SES_TIMEOUT_MS: "1000" });
    const faulty = notifyProcess();

    const task = await createTask(owner, workspaceId, { title: "Crash after claim" });
    expect(await exitOf(faulty, "notify to kill itself after claiming the mail")).toBeNull();
    const created = await tap.waitFor("task.created", (s) => s.event.type === "task.created" && s.event.aggregate_id === task.id);
    expect(await deliveryOf(created.event.id, bob.id)).toMatchObject({ state: "claimed", claims: 1 });
    expect(await mailsAbout(bob, "Crash after claim")).toEqual([]);

    await mesh.startProcess("notify");
    await waitForMails(bob, "Crash after claim");
    await settled("the redelivered event");
    expect(await deliveryOf(created.event.id, bob.id)).toMatchObject({ state: "sent", claims: 2 });
    expect(await mailsAbout(bob, "Crash after claim")).toHaveLength(1);
  });

  test("notify: two replicas share the work and send each mail once, even when every event is stored twice", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob", "Carol", "Dave");
    await settled("earlier tests");
    const second = await mesh.startProcess("notify", {}, "notify-2");
    try {
      const titles = ["Twin one", "Twin two", "Twin three", "Twin four", "Twin five"];
      const tasks = await Promise.all(titles.map((title) => createTask(owner, workspaceId, { title })));
      const events: Event[] = [];
      for (const task of tasks) {
        events.push((await tap.waitFor("task.created", (s) => s.event.type === "task.created" && s.event.aggregate_id === task.id)).event);
      }
      // The same envelopes again, as new stream messages (no Nats-Msg-Id: JetStream keeps both copies).
      const js = (await mesh.nats()).jetstream();
      for (const event of events) {
        await js.publish(`${mesh.id}.tasks.${workspaceId}.created`, new TextEncoder().encode(JSON.stringify(event)));
      }

      for (const member of members) for (const title of titles) await waitForMails(member, title);
      await settled("both copies of every event");
      for (const member of members) {
        for (const title of titles) expect(await mailsAbout(member, title), `${member.name}: ${title}`).toHaveLength(1);
      }
      const suppressed =
        (await metric(notifyProcess(), "taskboard_notify_duplicates_suppressed_total")) +
        (await metric(second, "taskboard_notify_duplicates_suppressed_total"));
      expect(suppressed).toBeGreaterThanOrEqual(titles.length * members.length);
    } finally {
      await second.stop();
    }
  });
});

/**
 * A stand-in for SES failures in front of the stand-in: SendEmail calls to a
 * throttled address get 429 TooManyRequestsException (as SES v2 answers when
 * the sending rate is exceeded), to a rejected address 400 MessageRejected;
 * everything else is forwarded.
 */
class FailingSes {
  readonly calls: string[][] = [];
  private readonly throttled = new Map<string, number>();
  private readonly rejected = new Set<string>();
  private readonly held = new Set<string>();
  private readonly server: Server;

  constructor(private readonly upstream: string) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(String(error));
      });
    });
  }

  async listen(): Promise<string> {
    if (!this.server.listening) await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  release(address: string): void {
    this.held.delete(address);
  }

  /** The next `times` SendEmail calls to `address` are throttled (Infinity: all). */
  throttle(address: string, times: number): void {
    this.throttled.set(address, times);
  }

  reject(address: string): void {
    this.rejected.add(address);
  }

  /** SendEmail to `address` reaches SES (the mail is stored), but its answer never comes back. */
  holdAnswer(address: string): void {
    this.held.add(address);
  }

  callsTo(address: string): number {
    return this.calls.filter((to) => to.includes(address)).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (req.method === "POST" && req.url === "/v2/email/outbound-emails") {
      const to: string[] = (JSON.parse(body.toString()) as { Destination?: { ToAddresses?: string[] } }).Destination?.ToAddresses ?? [];
      this.calls.push(to);
      for (const address of to) {
        const left = this.throttled.get(address) ?? 0;
        if (left > 0) {
          this.throttled.set(address, left - 1);
          return this.error(res, 429, "TooManyRequestsException", "Maximum sending rate exceeded.");
        }
        if (this.rejected.has(address)) {
          return this.error(res, 400, "MessageRejected", `Email address is not verified. The following identities failed the check: ${address}`);
        }
      }
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && !["host", "connection", "content-length", "expect"].includes(name)) headers[name] = value;
    }
    const upstream = await fetch(`${this.upstream}${req.url ?? "/"}`, {
      method: req.method ?? "GET",
      headers,
      ...(body.length > 0 ? { body } : {}),
    });
    if (this.calls.at(-1)?.some((address) => this.held.has(address))) return; // SES has it; the sender never hears
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  }

  /** An SES v2 (REST-JSON) error: the type in x-amzn-ErrorType and in the JSON body. */
  private error(res: ServerResponse, status: number, type: string, message: string): void {
    res.writeHead(status, {
      "content-type": "application/json",
      "x-amzn-errortype": type,
      "x-amzn-requestid": randomUUID(),
    });
    res.end(JSON.stringify({ __type: type, message }));
  }
}

/** Two attempts per delivery, three deliveries: a mail throttled six times in a row is given up. */
const FAILING_SES_ENV = { NOTIFY_SEND_ATTEMPTS: "2", NOTIFY_MAX_DELIVER: "3" };

describe("notify: SES failures", () => {
  let ses: FailingSes;

  beforeAll(async () => {
    ses = new FailingSes(sesEndpoint);
    const endpoint = await ses.listen();
    await settled("earlier tests");
    await mesh.restart("notify", { SES_ENDPOINT: endpoint, ...FAILING_SES_ENV });
  });

  afterAll(async () => {
    await ses?.close();
  });

  test("notify: throttling (429 TooManyRequestsException) is retried with backoff, and the mail is sent once", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob");
    const [bob] = members as [SignedUp];
    ses.throttle(bob.email, 3);
    const retriedBefore = await metric(notifyProcess(), "taskboard_notify_mails_retried_total", 'reason="throttled"');

    const task = await createTask(owner, workspaceId, { title: "Busy SES" });
    await waitForMails(bob, "Busy SES");
    const created = await handled("task.created", task.id);
    expect(await mailsAbout(bob, "Busy SES")).toHaveLength(1);
    expect(ses.callsTo(bob.email)).toBe(4);
    // Attempts 1-2 in the first delivery (then released), 3-4 in the second.
    // SES refused the first delivery's attempts: the second is not a resend in doubt.
    expect(await deliveryOf(created.event.id, bob.id)).toMatchObject({ state: "sent", claims: 2, resent_in_doubt: false });
    expect((await metric(notifyProcess(), "taskboard_notify_mails_retried_total", 'reason="throttled"')) - retriedBefore).toBe(3);
    await tap.waitFor("notification.sent to Bob", sentTo(workspaceId, created.event.id, bob.id));
  });

  test("notify: a mail SES rejects is not retried, and is recorded and published as notification.failed", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob", "Unverified");
    const [bob, unverified] = members as [SignedUp, SignedUp];
    ses.reject(unverified.email);

    const task = await createTask(owner, workspaceId, { title: "Rejected" });
    await waitForMails(bob, "Rejected");
    const created = await handled("task.created", task.id);
    const failed = await tap.waitFor(
      "notification.failed for Unverified",
      (s) => s.subject === `${mesh.id}.notifications.${workspaceId}.failed` && s.event.data?.["recipient_id"] === unverified.id,
    );
    expect(failed.event).toMatchObject({ type: "notification.failed", workspace_id: workspaceId, aggregate_id: created.event.id });
    expect(failed.event.data).toMatchObject({ event_id: created.event.id, event_type: "task.created", reason: "rejected" });
    expect(String(failed.event.data?.["error"])).toContain("MessageRejected");
    expect(ses.callsTo(unverified.email)).toBe(1);
    expect(await mailsTo(unverified.email)).toEqual([]);
    expect(await deliveryOf(created.event.id, unverified.id)).toMatchObject({ state: "failed", message_id: null });
    expect(await metric(notifyProcess(), "taskboard_notify_mails_failed_total", 'reason="rejected"')).toBeGreaterThanOrEqual(1);
  });

  test("notify: a mail still throttled after every delivery is given up as notification.failed (retries exhausted)", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Bob");
    const [bob] = members as [SignedUp];
    ses.throttle(bob.email, Infinity);

    const task = await createTask(owner, workspaceId, { title: "Never through" });
    const created = await handled("task.created", task.id);
    const failed = await tap.waitFor(
      "notification.failed for Bob",
      (s) => s.subject === `${mesh.id}.notifications.${workspaceId}.failed` && s.event.data?.["recipient_id"] === bob.id,
    );
    expect(failed.event.data).toMatchObject({ event_id: created.event.id, reason: "exhausted" });
    expect(ses.callsTo(bob.email)).toBe(6);
    expect(await deliveryOf(created.event.id, bob.id)).toMatchObject({ state: "failed", claims: 3 });
    expect(await mailsTo(bob.email)).toEqual([]);
  });

  test("notify: killed after SES took a mail but before it answered, the mail is sent again and recorded as resent in doubt", async () => {
    const { workspaceId, owner, members } = await team("Owner", "Doubt");
    const [doubt] = members as [SignedUp];
    const endpoint = await ses.listen();
    await settled("earlier tests");
    await mesh.restart("notify", { SES_ENDPOINT: endpoint, ...FAILING_SES_ENV, NOTIFY_CLAIM_TTL_MS: "2000", SES_TIMEOUT_MS: "1000" });
    ses.holdAnswer(doubt.email);
    const task = await createTask(owner, workspaceId, { title: "Answer held" });
    await waitForMails(doubt, "Answer held"); // SES has it; notify is still waiting for the answer
    await notifyProcess().stop("SIGKILL");
    ses.release(doubt.email);
    await mesh.restart("notify", { SES_ENDPOINT: endpoint, ...FAILING_SES_ENV, NOTIFY_CLAIM_TTL_MS: "2000", SES_TIMEOUT_MS: "1000" });
    await waitForMails(doubt, "Answer held", 2);
    const created = await handled("task.created", task.id);
    await settled("the resent mail");
    expect(await deliveryOf(created.event.id, doubt.id)).toMatchObject({ state: "sent", claims: 2, resent_in_doubt: true });
    expect(await metric(notifyProcess(), "taskboard_notify_resent_in_doubt_total", 'type="task.created"')).toBe(1);
  });
});
