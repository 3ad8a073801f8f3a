import type { Browser, Page } from "playwright-core";
import YAML from "yaml";
import { afterAll, beforeAll, expect, test } from "vitest";
import { launchChromium, UI_TIMEOUT } from "./support/browser.js";
import { signUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

// The API reference at /docs: Swagger UI, loaded from the gateway alone, under a policy
// that allows no inline script, renders the generated OpenAPI document; its "Try it out"
// calls the gateway that served the page, whatever address the browser used for it
// (the document's server URL is relative).

const HOSTNAME = "taskboard-docs.test";
let mesh: Mesh;
let browser: Browser;

beforeAll(async () => {
  mesh = await Mesh.start({});
  // A hostname of its own for the gateway, as behind a proxy or an ingress.
  browser = await launchChromium([`--host-resolver-rules=MAP ${HOSTNAME} 127.0.0.1`]);
});

afterAll(async () => {
  await browser?.close();
  await mesh?.stop();
});

/** A page on /docs with every uncaught error, console error and policy refusal recorded. */
async function openDocs(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" || /Content Security Policy/i.test(message.text())) problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  });
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  expect(response?.headers()["content-security-policy"]).toMatch(/script-src 'self';/);
  await page.locator(".swagger-ui .info .title").filter({ hasText: "Taskboard" }).waitFor({ timeout: UI_TIMEOUT });
  return { page, problems };
}

/** Expands an operation, presses "Try it out" and "Execute"; answers the status and body Swagger UI shows. */
async function tryItOut(page: Page, tag: string, operationId: string): Promise<{ requestUrl: string; status: string; body: string }> {
  const operation = page.locator(`#operations-${tag}-${operationId}`);
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator("button.execute").click();
  const live = operation.locator(".live-responses-table tbody .response");
  await live.first().waitFor({ timeout: UI_TIMEOUT });
  return {
    requestUrl: (await operation.locator(".request-url pre").innerText()).trim(),
    status: (await live.locator(".response-col_status").first().innerText()).trim(),
    body: (await live.locator(".response-col_description pre.microlight").first().innerText()).trim(),
  };
}

test("docs: /docs renders the OpenAPI document with its operations, with no inline script allowed and no policy refusal", async () => {
  const { page, problems } = await openDocs(`${mesh.url}/docs`);
  await page.locator('.opblock-summary-path[data-path="/realtime/tickets"]').first().waitFor({ timeout: UI_TIMEOUT });
  expect(problems).toEqual([]);
  await page.close();
});

test("docs: the served document's server URL is relative", async () => {
  const served = YAML.parse((await mesh.api.get("/openapi.yaml")).text) as { servers: { url: string }[] };
  expect(served.servers.map((server) => server.url)).toEqual(["/"]);
});

test.each([
  ["http://127.0.0.1:<port>", (port: string) => `http://127.0.0.1:${port}`],
  [`http://${HOSTNAME}:<port>`, (port: string) => `http://${HOSTNAME}:${port}`],
])("docs: Try it out at %s/docs calls that same address, publicly and after Authorize with a token", async (_, at) => {
  const origin = at(new URL(mesh.url).port);
  const user = await signUp(mesh.api, "Docs");
  const { page, problems } = await openDocs(`${origin}/docs`);

  const health = await tryItOut(page, "System", "getHealth");
  expect(health.requestUrl).toBe(`${origin}/health`);
  expect(health.status).toBe("200");
  expect(JSON.parse(health.body)).toEqual({ status: "ok" });

  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.locator("input").first().fill(user.accessToken);
  await dialog.locator("button.authorize").click();
  await dialog.locator("button.btn-done").click();

  const me = await tryItOut(page, "Users", "getMe");
  expect(me.requestUrl).toBe(`${origin}/users/me`);
  expect(me.status).toBe("200");
  expect(JSON.parse(me.body)).toMatchObject({ id: user.id, email: user.email, name: "Docs" });

  expect(problems).toEqual([]);
  await page.close();
}, 90_000); // a page load and two round trips through Swagger UI, each allowed UI_TIMEOUT on a busy machine
