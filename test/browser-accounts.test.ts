import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { byTestId, launchChromium, openPage, screenshot, UI_TIMEOUT, type Session } from "./support/browser.js";
import { signUp } from "./support/http.js";
import { header, Mailbox } from "./support/mailbox.js";
import { Mesh } from "./support/mesh.js";

// The account mails' links, followed in Chromium as their readers would: a password reset
// from "Forgot password?" to the new password, the settings a mail points to, and the
// unsubscribe page's button. The mails' APP_URL is the mesh's own gateway.

let mesh: Mesh;
let browser: Browser;
const mailbox = new Mailbox();
const sessions: Session[] = [];

beforeAll(async () => {
  mesh = await Mesh.start({ env: { APP_URL: "http://placeholder.invalid" } });
  // The links must lead to this gateway: restart notify with its address as APP_URL.
  await mesh.restart("notify", { APP_URL: mesh.url });
  browser = await launchChromium();
});

afterAll(async () => {
  for (const session of sessions) await screenshot(session, "final");
  await browser?.close();
  await mesh?.stop();
});

test("page: 'Forgot password?' mails a link; the link opens the new-password form, and the new password logs in", async () => {
  const user = await signUp(mesh.api, "Forgetful");
  const session = await openPage(browser, "accounts-reset", user, `${mesh.url}/`);
  sessions.push(session);
  const { page } = session;
  await page.getByTestId("login-email").fill(user.email);
  await page.getByTestId("forgot-password-button").click();
  await byTestId(page, "auth-info").filter({ hasText: "a reset link is on its way" }).waitFor({ timeout: UI_TIMEOUT });

  const [mail] = await mailbox.waitFor(user, "Reset your password");
  const link = /(http:\/\/\S+\/\?reset=\S+)/.exec(mail!.body.text ?? "")![1]!;
  await page.goto(link);
  await byTestId(page, "reset-panel").waitFor({ timeout: UI_TIMEOUT });
  expect(await byTestId(page, "auth-panel").isHidden()).toBe(true);
  await page.getByTestId("reset-password").fill("Chosen-in-browser1");
  await page.getByTestId("reset-button").click();
  await byTestId(page, "auth-info").filter({ hasText: "Your password is changed" }).waitFor({ timeout: UI_TIMEOUT });
  expect(page.url()).toBe(`${mesh.url}/`);

  await page.getByTestId("login-email").fill(user.email);
  await page.getByTestId("login-password").fill("Chosen-in-browser1");
  await page.getByTestId("login-button").click();
  await page.getByTestId("current-user").filter({ hasText: "Forgetful" }).waitFor({ timeout: UI_TIMEOUT });
  expect(session.problems).toEqual([]);
});

test("page: the settings turn e-mail notifications off and on (as the API then says); the unsubscribe page's button turns them off", async () => {
  const user = await signUp(mesh.api, "Settler");
  const session = await openPage(browser, "accounts-settings", user, `${mesh.url}/?settings=1`);
  sessions.push(session);
  const { page } = session;
  await page.getByTestId("login-email").fill(user.email);
  await page.getByTestId("login-password").fill(user.password);
  await page.getByTestId("login-button").click();
  const toggle = page.getByTestId("email-notifications-toggle");
  await page.getByTestId("current-user").filter({ hasText: "Settler" }).waitFor({ timeout: UI_TIMEOUT });
  await expect.poll(() => toggle.isChecked(), { timeout: UI_TIMEOUT }).toBe(true);
  await toggle.uncheck();
  await byTestId(page, "settings-info").filter({ hasText: "are off." }).waitFor({ timeout: UI_TIMEOUT });
  expect((await user.api.get("/users/me")).body.email_notifications).toBe(false);
  await toggle.check();
  await byTestId(page, "settings-info").filter({ hasText: "are on." }).waitFor({ timeout: UI_TIMEOUT });
  expect((await user.api.get("/users/me")).body.email_notifications).toBe(true);

  // A mail's unsubscribe link, opened in the browser: a page with one button.
  const owner = await signUp(mesh.api, "Mailer");
  const workspaceId = (await owner.api.post("/workspaces", { name: "Settings" })).body.id;
  await owner.api.post(`/workspaces/${workspaceId}/members`, { user_id: user.id, role: "member" });
  await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: "Mail with a footer" });
  const [mail] = await mailbox.waitFor(user, "Mail with a footer");
  await page.goto(header(mail!, "List-Unsubscribe")!.slice(1, -1));
  await page.getByTestId("unsubscribe-confirm").click();
  await page.getByTestId("unsubscribed").waitFor({ timeout: UI_TIMEOUT });
  expect((await user.api.get("/users/me")).body.email_notifications).toBe(false);
  expect(session.problems).toEqual([]);
});
