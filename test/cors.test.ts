import { createServer, type Server } from "node:http";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { launchChromium } from "./support/browser.js";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

// CORS_ORIGINS (API.md "Abuse limits and browsers"): a web front end on another origin
// uses the API from Chromium when its origin is listed, and is refused by the browser
// when it is not.

let mesh: Mesh;
let site: Server;
let siteUrl: string;
let browser: Browser;
let user: SignedUp;
let workspaceId: string;

beforeAll(async () => {
  // The front end's own site: an empty page, on an origin other than the gateway's.
  site = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>front end</title>"));
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  mesh = await Mesh.start({ env: { CORS_ORIGINS: `https://elsewhere.example.com, ${siteUrl}` } });
  browser = await launchChromium();
  user = await signUp(mesh.api, "Front");
  workspaceId = (await user.api.post("/workspaces", { name: "Cross origin" })).body.id;
});

afterAll(async () => {
  await browser?.close();
  await mesh?.stop();
  await new Promise((resolve) => site?.close(resolve));
});

/** Runs API calls from a page of `origin` in Chromium: what the page's script gets, or the error it sees. */
async function fromPage(origin: string) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${origin}/`);
  return page.evaluate(
    async ({ api, token, workspace }) => {
      try {
        const list = await fetch(`${api}/workspaces/${workspace}`, { headers: { authorization: `Bearer ${token}` } });
        const created = await fetch(`${api}/workspaces/${workspace}/tasks`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ title: "from another origin" }),
        });
        return { ok: true, get: list.status, post: created.status, requestId: created.headers.get("x-request-id"), title: ((await created.json()) as { title: string }).title };
      } catch (error) {
        return { ok: false, error: String(error) };
      }
    },
    { api: mesh.url, token: user.accessToken, workspace: workspaceId },
  );
}

describe("cors", () => {
  test("cors: a page on a listed origin reads and writes through the API (preflighted POST with a token), and reads the exposed headers", async () => {
    const result = await fromPage(siteUrl);
    expect(result).toMatchObject({ ok: true, get: 200, post: 201, title: "from another origin" });
    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("cors: a page on an origin not listed is refused by the browser, and its preflighted write never reaches the API", async () => {
    const before = (await user.api.get(`/workspaces/${workspaceId}/tasks`)).body.items.length;
    const other = siteUrl.replace("127.0.0.1", "localhost"); // the same site under another origin
    const result = await fromPage(other);
    expect(result).toMatchObject({ ok: false });
    expect(result.error).toMatch(/TypeError/);
    expect((await user.api.get(`/workspaces/${workspaceId}/tasks`)).body.items.length).toBe(before);
  });

  test("cors: preflight answers: allowed methods and headers for a listed origin, nothing for another; errors carry the headers too", async () => {
    const ask = (origin: string) =>
      fetch(`${mesh.url}/workspaces/${workspaceId}/tasks`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
    const allowed = await ask("https://elsewhere.example.com");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://elsewhere.example.com");
    expect(allowed.headers.get("access-control-allow-methods")).toContain("POST");
    expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(allowed.headers.get("vary")).toBe("Origin");
    const refused = await ask("https://evil.example.com");
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    // A 401 for a listed origin still carries CORS headers, so the page can read the error.
    const unauthorized = await fetch(`${mesh.url}/workspaces`, { headers: { origin: "https://elsewhere.example.com" } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("access-control-allow-origin")).toBe("https://elsewhere.example.com");
    const missing = await fetch(`${mesh.url}/nothing-here`, { headers: { origin: "https://elsewhere.example.com" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("https://elsewhere.example.com");
  });
});
