import { readFileSync } from "node:fs";
import YAML from "yaml";
import { describe, expect, test } from "vitest";
import { errorCatalogue } from "../internal/platform/errors.js";
import { eventCatalogue, Subjects } from "../internal/platform/events.js";
import { authEnv } from "../internal/auth/config.js";
import { gatewayEnv } from "../internal/gateway/config.js";
import { workspaceEnv } from "../internal/workspace/config.js";
import { taskEnv } from "../internal/task/config.js";
import { notifyEnv } from "../internal/notify/config.js";
import { exportEnv } from "../internal/export/config.js";
import { renderOpenApi } from "../scripts/openapi.js";
import { routeTable as gatewayRouteTable } from "../internal/gateway/routes/index.js";

const root = new URL("../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
const openapi = YAML.parse(read("api/openapi.yaml")) as {
  info: { description: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, any> };
};
const readme = read("README.md");

describe("REST contract", () => {
  test("openapi: api/openapi.yaml is what the contracts and routes generate (run npm run openapi)", () => {
    expect(read("api/openapi.yaml")).toBe(renderOpenApi(root));
  });

  test("openapi: lists exactly the gateway's routes", () => {
    const inSpec = Object.entries(openapi.paths)
      .flatMap(([path, item]) => Object.keys(item).filter((k) => ["get", "post", "put", "delete", "patch"].includes(k)).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const inGateway = gatewayRouteTable()
      .map((r) => `${r.method.toUpperCase()} ${r.path}`)
      .sort();
    expect(inGateway.filter((r) => !inSpec.includes(r)), "gateway routes missing from api/openapi.yaml").toEqual([]);
    expect(inSpec.filter((r) => !inGateway.includes(r)), "api/openapi.yaml routes the gateway lacks").toEqual([]);
  });

  test("openapi: the prose names every route that takes no bearer token, and every tag the routes use is declared", () => {
    const routes = gatewayRouteTable();
    const open = routes.filter((r) => r.auth === "public").map((r) => `\`${r.method.toUpperCase()} ${r.path}\``);
    expect(open.filter((r) => !openapi.info.description.includes(r)), "public routes the document's Authentication prose does not name").toEqual([]);
    const declared = new Set(openapi.tags.map((tag) => tag.name));
    expect([...new Set(routes.map((r) => r.doc.tag))].filter((tag) => !declared.has(tag)), "tags without a declaration in api/openapi-base.yaml").toEqual([]);
  });

  test("errors: the catalogue, API.md and the OpenAPI Error schema agree", () => {
    const apiMd = read("api/API.md").match(/Status codes:([\s\S]*?)Body:/)?.[1] ?? "";
    const documented = [...apiMd.matchAll(/\b([45]\d\d)\b/g)].map((m) => Number(m[1]));
    const catalogued = new Set<number>(Object.values(errorCatalogue).map((e) => e.http));
    for (const status of documented) expect(catalogued.has(status), `API.md status ${status} has no error code`).toBe(true);
    const codeEnum = openapi.components.schemas["ErrorCode"]?.enum as string[];
    expect([...codeEnum].sort()).toEqual(Object.keys(errorCatalogue).sort());
  });
});

describe("README", () => {
  test.each([
    ["auth", authEnv],
    ["workspace", workspaceEnv],
    ["task", taskEnv],
    ["notify", notifyEnv],
    ["export", exportEnv],
    ["gateway", gatewayEnv],
  ])("readme: documents every environment variable of %s with its default", (_, spec) => {
    for (const [name, schema] of Object.entries(spec)) {
      expect(readme, `README lacks ${name}`).toContain(`\`${name}\``);
      const parsed = (schema as { safeParse: (v: unknown) => { success: boolean; data?: unknown } }).safeParse(undefined);
      if (parsed.success && parsed.data !== undefined) {
        const row = readme.split("\n").find((line) => line.startsWith(`| \`${name}\` |`));
        expect(row, `README has no table row for ${name}`).toBeDefined();
        expect(row, `README row of ${name} lacks its default ${String(parsed.data)}`).toContain(String(parsed.data));
      }
    }
  });

  test("readme: names the two commands", () => {
    expect(readme).toContain("npm ci && npm run dev");
    expect(readme).toContain("npm test");
  });
});

describe("events", () => {
  test.each([
    ["task.created", "ws1", "r.tasks.ws1.created"],
    ["task.assigned", "ws1", "r.tasks.ws1.assigned"],
    ["comment.deleted", "ws1", "r.comments.ws1.deleted"],
    ["workspace.created", "ws1", "r.workspaces.ws1.created"],
    ["member.added", "ws1", "r.workspaces.ws1.member_added"],
    ["member.removed", "ws1", "r.workspaces.ws1.member_removed"],
    ["member.role_changed", "ws1", "r.workspaces.ws1.member_role_changed"],
    ["export.progress", "ws1", "r.exports.ws1.progress"],
    ["notification.failed", "ws1", "r.notifications.ws1.failed"],
    ["custom.message", "ws1", "r.realtime.ws1.custom"],
    ["presence.left", "ws1", "r.realtime.ws1.left"],
    ["user.registered", undefined, "r.auth.users.registered"],
  ])("subjects: %s is published on the subject of ARCHITECTURE.md", (type, workspace_id, subject) => {
    expect(new Subjects("r").of({ type, workspace_id })).toBe(subject);
  });

  test.each([
    ["workspace.deleted", "r.workspaces.*.deleted"],
    ["member.removed", "r.workspaces.*.member_removed"],
    ["task.created", "r.tasks.*.created"],
    ["comment.updated", "r.comments.*.updated"],
    ["user.deleted", "r.auth.users.deleted"],
  ] as const)("subjects: allOf(%s) is %s, and matches that type in every workspace", (type, filter) => {
    const subjects = new Subjects("r");
    expect(subjects.allOf(type)).toBe(filter);
    const pattern = new RegExp(`^${filter.replace(/\./g, "\\.").replace("*", "[^.]+")}$`);
    for (const ws of ["ws1", "0b5c2f9e-8d4e-4d67-9a51-3f2c1e7b8a90"]) expect(subjects.of({ type, workspace_id: ws })).toMatch(pattern);
    for (const other of Object.keys(eventCatalogue).filter((t) => t !== type)) {
      expect(subjects.of({ type: other, workspace_id: "ws1" })).not.toMatch(pattern);
    }
  });

  test("subjects: every catalogued type falls under the room filter of its workspace", () => {
    const subjects = new Subjects("r");
    const filter = new RegExp(`^${subjects.room("ws1").replace(/\./g, "\\.").replace("*", "[^.]+").replace(">", ".+")}$`);
    for (const type of Object.keys(eventCatalogue)) {
      if (type.startsWith("user.")) continue;
      expect(subjects.of({ type, workspace_id: "ws1" })).toMatch(filter);
    }
  });
});
