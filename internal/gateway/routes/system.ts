import type { Health } from "../../platform/health.js";
import { json, route, type Route } from "../router.js";
import type { StaticFiles } from "../static-files.js";

const html = "text/html; charset=utf-8";
// The pages load only their own scripts and styles, and talk only to this origin.
const pageSecurity = {
  "content-security-policy":
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:",
  "x-frame-options": "DENY",
};

export function systemRoutes(health: Health, files: StaticFiles): Route[] {
  return [
    route({
      method: "get",
      path: "/health",
      auth: "public",
      handle: async () => {
        const report = await health.report();
        return json(report.status === "ok" ? 200 : 503, report);
      },
    }),
    route({
      method: "get",
      path: "/",
      auth: "public",
      handle: async () => ({ status: 200, raw: await files.testPage(), contentType: html, headers: pageSecurity }),
    }),
    route({
      method: "get",
      path: "/docs",
      auth: "public",
      handle: async () => ({ status: 200, raw: await files.docsPage(), contentType: html, headers: pageSecurity }),
    }),
    route({
      method: "get",
      path: "/openapi.yaml",
      auth: "public",
      handle: async () => ({ status: 200, raw: await files.openApi(), contentType: "application/yaml; charset=utf-8" }),
    }),
  ];
}
