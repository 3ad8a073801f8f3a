import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { expect } from "vitest";
import type { SignedUp } from "./http.js";

/**
 * Debian's Chromium driven by playwright-core, and the test page as its users
 * see it: one definition for every browser test.
 */

export const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../artifacts/browser/", import.meta.url).pathname;
/** The longest any single UI wait may take (the machine is shared and noisy). */
export const UI_TIMEOUT = 20_000;

/** `extraArgs`: more Chromium switches, e.g. `--host-resolver-rules=MAP docs.test 127.0.0.1` to reach a server by a hostname. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests drive Debian's Chromium; install it with apt-get install -y chromium`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync", ...extraArgs],
  });
}

/** A user's page in a browser context of its own, with what it did recorded. */
export interface Session {
  label: string;
  user: SignedUp;
  context: BrowserContext;
  page: Page;
  /** URLs of every WebSocket the page opened, in order. */
  sockets: string[];
  /** Main-frame navigations (1 = the initial load, so no reload happened). */
  navigations: number;
  /** Every console message the page wrote. */
  console: string[];
  /** Uncaught exceptions and Content-Security-Policy refusals. */
  problems: string[];
}

export async function openPage(browser: Browser, label: string, user: SignedUp, url: string, viewport = { width: 1440, height: 1200 }): Promise<Session> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const session: Session = { label, user, context, page, sockets: [], navigations: 0, console: [], problems: [] };
  page.on("websocket", (socket) => session.sockets.push(socket.url()));
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) session.navigations++;
  });
  page.on("pageerror", (error) => session.problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    session.console.push(message.text());
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) session.problems.push(message.text());
  });
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  return session;
}

export function screenshot(session: Session, step: string): Promise<unknown> {
  return session.page.screenshot({ path: join(ARTIFACTS, `${session.label}-${step}.png`), fullPage: true }).catch(() => undefined);
}

export const byTestId = (page: Page, id: string, attributes = ""): Locator => page.locator(`[data-testid="${id}"]${attributes}`);
export const taskItem = (session: Session, text: string): Locator => session.page.getByTestId("task-item").filter({ hasText: text });
export const eventEntry = (session: Session, type: string, text = ""): Locator =>
  byTestId(session.page, "event-entry", `[data-type="${type}"]`).filter({ hasText: text });

export async function waitConnected(session: Session, timeout = UI_TIMEOUT): Promise<void> {
  await byTestId(session.page, "connection-state", '[data-state="connected"]').waitFor({ timeout });
}

/** Logs in through the page's form, picks the workspace and waits for its room. */
export async function logInAndConnect(session: Session, workspaceId: string): Promise<void> {
  const { page, user } = session;
  await page.getByTestId("login-email").fill(user.email);
  await page.getByTestId("login-password").fill(user.password);
  await page.getByTestId("login-button").click();
  await page.getByTestId("current-user").filter({ hasText: user.name }).waitFor({ timeout: UI_TIMEOUT });
  await page.locator(`[data-testid="workspace-select"] option[value="${workspaceId}"]`).waitFor({ state: "attached", timeout: UI_TIMEOUT });
  await page.getByTestId("workspace-select").selectOption(workspaceId);
  await waitConnected(session);
}
