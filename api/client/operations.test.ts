import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { renderClient } from "../../scripts/client.js";
import { routeTable } from "../../internal/gateway/routes/index.js";
import { operations } from "./operations.gen.js";

describe("generated operations", () => {
  test("client: api/client/operations.gen.ts is what the routes and contracts generate (run npm run client)", async () => {
    const committed = readFileSync(new URL("./operations.gen.ts", import.meta.url), "utf8");
    expect(committed).toBe(await renderClient(new URL("../contracts/", import.meta.url)));
  });

  test("client: one operation per route, with its method, path and auth", () => {
    const routes = routeTable();
    expect(Object.keys(operations).sort()).toEqual(routes.map((r) => r.doc.operationId).sort());
    for (const route of routes) {
      const op = operations[route.doc.operationId as keyof typeof operations];
      expect({ method: op.method, path: op.path, auth: op.auth }).toEqual({ method: route.method.toUpperCase(), path: route.path, auth: route.auth });
    }
  });
});
