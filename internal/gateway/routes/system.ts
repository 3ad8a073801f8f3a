import { Health as HealthReport } from "../../../api/contracts/system.js";
import type { Health } from "../../platform/health.js";
import { json, route, type Route } from "../router.js";
import type { StaticFiles } from "../static-files.js";

const html = "text/html; charset=utf-8";
// The pages load only their own scripts and styles, and talk only to this origin. The test
// page has no inline script or style (its code is the module /app.js, on the SDK at /sdk/;
// its styles are /app.css), so none is allowed; the docs page starts Swagger UI from /docs.js,
// and Swagger UI sets inline styles, which its policy still allows.
const testPageSecurity = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:",
};
const docsPageSecurity = {
  "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:",
};

export function systemRoutes(health: Health, files: StaticFiles): Route[] {
  return [
    route({
      method: "get",
      path: "/health",
      auth: "public",
      doc: {
        operationId: "getHealth",
        summary: "Health of the gateway and its dependencies",
        description:
          "Public. 200 `{\"status\": \"ok\"}` when every dependency is up, 503 with `\"degraded\"` (or `\"starting\"`, `\"stopping\"`) otherwise, from probes at most a second old (shared by every caller). Each dependency's state only for a system admin's bearer token (and at the admin port's `/readyz`).",
        tag: "System",
        ok: { status: 200, description: "Everything is up.", schema: HealthReport },
        errors: [503],
      },
      handle: async (ctx) => {
        const report = await health.recent();
        return json(report.status === "ok" ? 200 : 503, ctx.caller?.role === "admin" ? report : { status: report.status });
      },
    }),
    route({
      method: "get",
      path: "/",
      auth: "public",
      doc: {
        operationId: "getTestPage",
        summary: "Browser test page",
        description: "Public. An HTML page to try the API and the WebSocket from a browser.",
        tag: "System",
        ok: { status: 200, description: "The test page.", contentType: "text/html" },
      },
      handle: async () => ({ status: 200, raw: await files.testPage(), contentType: html, headers: testPageSecurity }),
    }),
    route({
      method: "get",
      path: "/docs",
      auth: "public",
      doc: {
        operationId: "getDocs",
        summary: "API reference rendered from this document",
        description: "Public.",
        tag: "System",
        ok: { status: 200, description: "HTML documentation.", contentType: "text/html" },
      },
      handle: async () => ({ status: 200, raw: await files.docsPage(), contentType: html, headers: docsPageSecurity }),
    }),
    route({
      method: "get",
      path: "/openapi.yaml",
      auth: "public",
      doc: {
        operationId: "getOpenApiDocument",
        summary: "This OpenAPI document",
        description: "Public.",
        tag: "System",
        ok: { status: 200, description: "The OpenAPI 3.1 document, generated from the contracts (api/contracts) and this route table.", contentType: "application/yaml" },
      },
      handle: async () => ({ status: 200, raw: await files.openApi(), contentType: "application/yaml; charset=utf-8" }),
    }),
  ];
}
