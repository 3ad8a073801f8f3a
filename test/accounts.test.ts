import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EventTap } from "./support/events.js";
import { signUp, type SignedUp } from "./support/http.js";
import { header, Mailbox, type StoredMail } from "./support/mailbox.js";
import { Mesh } from "./support/mesh.js";

// Password reset and one-click unsubscribe, end to end: the gateway, auth, the outbox,
// notify and the SES stand-in, read back from its mailbox.

const APP_URL = "http://app.taskboard.test";
let mesh: Mesh;
let tap: EventTap;
const mailbox = new Mailbox();

beforeAll(async () => {
  mesh = await Mesh.start({ env: { APP_URL } });
  tap = new EventTap(await mesh.nats(), mesh.id);
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

/** The token of the reset link in a mail. */
function resetToken(mail: StoredMail): string {
  const match = /\/\?reset=([A-Za-z0-9_%-]+)/.exec(mail.body.text ?? "");
  if (!match) throw new Error(`no reset link in ${mail.body.text}`);
  return decodeURIComponent(match[1]!);
}

/** Asks for a reset of `user` and returns the token of the mail that comes. */
async function requestReset(user: SignedUp, count = 1): Promise<string> {
  expect((await mesh.api.post("/auth/password-reset", { email: user.email.toUpperCase() })).status).toBe(202);
  const mails = await mailbox.waitFor(user, "Reset your password", count);
  return resetToken(mails.at(-1)!);
}

describe("password reset", () => {
  test("reset: a known and an unknown address get the same 202 and body; only the known one gets a mail, whose link sets a new password once and ends every session", async () => {
    const user = await signUp(mesh.api, "Forgetful");
    const unknownEmail = `nobody.${Date.now()}@example.com`;
    const known = await mesh.api.post("/auth/password-reset", { email: user.email });
    const unknown = await mesh.api.post("/auth/password-reset", { email: unknownEmail });
    expect([known.status, unknown.status]).toEqual([202, 202]);
    expect(known.text).toBe(unknown.text);

    const [mail] = await mailbox.waitFor(user, "Reset your password");
    expect(mail!.subject).toBe("[Taskboard] Reset your password");
    expect(mail!.body.text).toContain(`${APP_URL}/?reset=`);
    expect(mail!.body.html).toContain("Choose a new password");
    const token = resetToken(mail!);
    // The token travels only in the mail: not in any event.
    expect(JSON.stringify(tap.seen)).not.toContain(token);
    const requested = tap.seen.find((s) => s.event.type === "user.password_reset_requested" && s.event.aggregate_id === user.id);
    expect(requested?.subject).toBe(`${mesh.id}.auth.users.password_reset_requested`);
    expect(await mailbox.to(unknownEmail)).toEqual([]);

    // The policy first: a weak password is refused and does not spend the token.
    const weak = await mesh.api.post("/auth/password-reset/confirm", { token, password: "weak" });
    expect(weak.status).toBe(400);
    expect(weak.body.error.code).toBe("validation_failed");
    const done = await mesh.api.post("/auth/password-reset/confirm", { token, password: "Brand-new-passw0rd" });
    expect(done.status).toBe(204);

    expect((await mesh.api.post("/auth/login", { email: user.email, password: user.password })).status).toBe(401);
    expect((await mesh.api.post("/auth/login", { email: user.email, password: "Brand-new-passw0rd" })).status).toBe(200);
    // Every refresh-token family of the user is revoked.
    expect((await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken })).status).toBe(401);
    // Single use.
    const again = await mesh.api.post("/auth/password-reset/confirm", { token, password: "Another-passw0rd" });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe("invalid_token");
  });

  test("reset: a completed reset spends every other open link; bad and forged tokens are 400 invalid_token", async () => {
    const user = await signUp(mesh.api, "Twice");
    const first = await requestReset(user, 1);
    const second = await requestReset(user, 2);
    expect(first).not.toBe(second);
    expect((await mesh.api.post("/auth/password-reset/confirm", { token: second, password: "Second-passw0rd" })).status).toBe(204);
    const stale = await mesh.api.post("/auth/password-reset/confirm", { token: first, password: "First-passw0rd" });
    expect([stale.status, stale.body.error.code]).toEqual([400, "invalid_token"]);
    for (const token of ["x".repeat(43), "not a token", first.slice(0, 20)]) {
      const res = await mesh.api.post("/auth/password-reset/confirm", { token, password: "Forged-passw0rd" });
      expect([res.status, res.body.error.code], token).toEqual([400, "invalid_token"]);
    }
    expect((await mesh.api.post("/auth/login", { email: user.email, password: "Second-passw0rd" })).status).toBe(200);
  });

  test("reset: asking is rate limited per address like login (429 with Retry-After), whether or not it has an account", async () => {
    const limited = await Mesh.start({ env: { RATE_LIMIT_PER_EMAIL: "2", RATE_LIMIT_PER_IP: "100" } });
    try {
      const user = await signUp(limited.api, "Limited");
      for (const email of [user.email, `ghost.${Date.now()}@example.com`]) {
        const statuses: number[] = [];
        let retryAfter: string | null = null;
        for (let i = 0; i < 3; i++) {
          const res = await limited.api.post("/auth/password-reset", { email });
          statuses.push(res.status);
          retryAfter ??= res.headers.get("retry-after");
        }
        expect(statuses, email).toEqual([202, 202, 429]);
        expect(Number(retryAfter)).toBeGreaterThan(0);
      }
    } finally {
      await limited.stop();
    }
  });
});

describe("one-click unsubscribe", () => {
  test("unsubscribe: every mail carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058); the one-click POST turns notifications off, and no more mails come", async () => {
    const owner = await signUp(mesh.api, "Owner");
    const member = await signUp(mesh.api, "Member");
    const other = await signUp(mesh.api, "Other");
    const workspaceId = (await owner.api.post("/workspaces", { name: "Mailing" })).body.id;
    for (const user of [member, other]) {
      expect((await owner.api.post(`/workspaces/${workspaceId}/members`, { user_id: user.id, role: "member" })).status).toBe(201);
    }
    await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "First news" });
    const [mail] = await mailbox.waitFor(member, "First news");

    const list = header(mail!, "List-Unsubscribe");
    expect(header(mail!, "List-Unsubscribe-Post")).toBe("List-Unsubscribe=One-Click");
    expect(list).toMatch(new RegExp(`^<${APP_URL}/unsubscribe\\?token=[^>]+>$`));
    expect(mail!.body.text).toContain(list!.slice(1, -1));
    expect(mail!.body.html).toContain(`${APP_URL}/?settings=1`);

    // As a mail provider does it: POST the link with the one-click body, no login.
    const path = new URL(list!.slice(1, -1)).pathname + new URL(list!.slice(1, -1)).search;
    const res = await fetch(mesh.url + path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ email_notifications: false });
    expect((await member.api.get("/users/me")).body.email_notifications).toBe(false);

    await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Second news" });
    // The other member's mail of the same event is planned together with the member's.
    await mailbox.waitFor(other, "Second news");
    expect(await mailbox.about(member, "Second news")).toEqual([]);
    // A mail the user asks for still comes.
    await requestReset(member);
  });

  test("unsubscribe: GET shows a confirmation page with no script (nothing changes), its button's POST answers a page; forged links are 400", async () => {
    const user = await signUp(mesh.api, "Reader");
    const owner = await signUp(mesh.api, "Writer");
    const workspaceId = (await owner.api.post("/workspaces", { name: "Pages" })).body.id;
    await owner.api.post(`/workspaces/${workspaceId}/members`, { user_id: user.id, role: "member" });
    await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Page news" });
    const [mail] = await mailbox.waitFor(user, "Page news");
    const link = new URL(header(mail!, "List-Unsubscribe")!.slice(1, -1));
    const target = mesh.url + link.pathname + link.search;

    const page = await fetch(target);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const markup = await page.text();
    expect(markup).toContain('<form method="post"');
    expect(markup).not.toContain("<script");
    expect((await user.api.get("/users/me")).body.email_notifications).toBe(true);

    const confirmed = await fetch(target, { method: "POST", headers: { accept: "text/html" } });
    expect(confirmed.status).toBe(200);
    expect(await confirmed.text()).toContain("You are unsubscribed");
    expect((await user.api.get("/users/me")).body.email_notifications).toBe(false);

    // A changed first character of the signature (the last one's low bits are padding a decoder may ignore).
    const forged = link.searchParams.get("token")!.replace(/\.(.)/, (_, c: string) => `.${c === "A" ? "B" : "A"}`);
    for (const token of [forged, `${user.id}.x`, "nonsense"]) {
      const res = await fetch(`${mesh.url}/unsubscribe?token=${encodeURIComponent(token)}`, { method: "POST" });
      expect(res.status, token).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_token");
    }
    expect((await fetch(`${mesh.url}/unsubscribe`, { method: "POST" })).status).toBe(400);
  });
});
