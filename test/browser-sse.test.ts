import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { launchChromium } from "./support/browser.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

// The SSE endpoint from a real browser: Chromium's own EventSource, on a page of the
// gateway's origin (so under the test page's Content-Security-Policy), with a ticket.

let mesh: Mesh;
let browser: Browser;
let page: Page;
let owner: SignedUp;
let workspaceId: string;

beforeAll(async () => {
  mesh = await Mesh.start({});
  browser = await launchChromium();
  owner = await signUp(mesh.api, "Eve");
  expect((await owner.api.put(`/users/${owner.id}`, { email_notifications: false })).status).toBe(200);
  workspaceId = (await owner.api.post("/workspaces", { name: "EventSource room" })).body.id;
  page = await (await browser.newContext()).newPage();
  expect((await page.goto(mesh.url))?.status()).toBe(200);
});

afterAll(async () => {
  await browser?.close();
  await mesh?.stop();
});

/** What the test reads and writes in the page (its code runs in Chromium; the test has no DOM types). */
interface PageSide {
  __seen: Seen[];
  __errors: number;
  __source?: { close(): void; addEventListener(type: string, listener: (event: { data: string; lastEventId: string }) => void): void };
  EventSource: new (url: string) => NonNullable<PageSide["__source"]>;
}

interface Seen {
  type: string;
  lastEventId: string;
  data: { type: string; seq?: number; recovered?: boolean };
}

/** Opens an EventSource in the page with a fresh ticket; what it receives collects in window.__seen. */
async function openEventSource(query = ""): Promise<void> {
  const { ticket } = (await owner.api.post("/realtime/tickets", { workspace_id: workspaceId })).body;
  await page.evaluate(
    ({ path, types }) => {
      const w = globalThis as unknown as PageSide;
      w.__seen = [];
      w.__errors = 0;
      w.__source?.close();
      const source = new w.EventSource(path);
      for (const type of types) {
        source.addEventListener(type, (message) => w.__seen.push({ type, lastEventId: message.lastEventId, data: JSON.parse(message.data) }));
      }
      source.addEventListener("error", () => w.__errors++);
      w.__source = source;
    },
    { path: `/workspaces/${workspaceId}/stream?ticket=${encodeURIComponent(ticket)}${query}`, types: ["connected", "task.created", "task.updated"] },
  );
}

const seen = () => page.evaluate(() => (globalThis as unknown as PageSide).__seen);

test("browser sse: Chromium's EventSource gets `connected`, then each event with its seq as lastEventId, in order", async () => {
  await openEventSource();
  await expect.poll(async () => (await seen()).map((m) => m.type), { timeout: 15_000 }).toContain("connected");
  for (let i = 0; i < 3; i++) expect((await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: `browser ${i}` })).status).toBe(201);
  await expect.poll(async () => (await seen()).filter((m) => m.type === "task.created").length, { timeout: 15_000 }).toBe(3);
  const messages = await seen();
  const [connected, ...events] = messages;
  expect(connected!.data.type).toBe("connected");
  expect(connected!.lastEventId).toBe(String(connected!.data.seq));
  expect(events.map((m) => m.lastEventId)).toEqual(events.map((m) => String(m.data.seq)));
  const seqs = events.map((m) => m.data.seq!);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
});

test("browser sse: a new EventSource with since resumes with every event it missed (recovered: true)", async () => {
  const before = await seen();
  const last = before.at(-1)!.data.seq!;
  const epoch = (before[0]!.data as { epoch?: string }).epoch!;
  await page.evaluate(() => (globalThis as unknown as PageSide).__source!.close());
  for (let i = 0; i < 2; i++) expect((await owner.api.post(`/workspaces/${workspaceId}/tasks`, { title: `missed ${i}` })).status).toBe(201);
  await openEventSource(`&since=${last}&epoch=${encodeURIComponent(epoch)}`);
  await expect.poll(async () => (await seen()).filter((m) => m.type === "task.created").length, { timeout: 15_000 }).toBe(2);
  const [connected, ...events] = await seen();
  expect(connected!.data.recovered).toBe(true);
  expect(connected!.lastEventId).toBe(String(last));
  expect(events.every((m) => m.data.seq! > last)).toBe(true);
});
