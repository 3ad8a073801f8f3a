import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { launchChromium } from "./support/browser.js";
import { Mesh } from "./support/mesh.js";

// The API reference at /docs: Swagger UI, loaded from the gateway alone, under a policy
// that allows no inline script, renders the generated OpenAPI document.

let mesh: Mesh;
let browser: Browser;

beforeAll(async () => {
  mesh = await Mesh.start({});
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await mesh?.stop();
});

test("docs: /docs renders the OpenAPI document with its operations, with no inline script allowed and no policy refusal", async () => {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  const response = await page.goto(`${mesh.url}/docs`);
  expect(response?.headers()["content-security-policy"]).toMatch(/script-src 'self';/);
  await page.locator(".swagger-ui .info .title").filter({ hasText: "Taskboard" }).waitFor({ timeout: 20_000 });
  await page.locator('.opblock-summary-path[data-path="/realtime/tickets"]').first().waitFor({ timeout: 20_000 });
  expect(problems).toEqual([]);
});
