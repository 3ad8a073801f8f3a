import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";
import { routeTable as gatewayRouteTable } from "../internal/gateway/routes/index.js";

let mesh: Mesh;
let user: SignedUp;
let workspaceId: string;
const ADMIN = { email: "edge-admin@example.com", password: "EdgeAdminPassw0rd" };

beforeAll(async () => {
  mesh = await Mesh.start({ env: { BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password } });
  user = await signUp(mesh.api, "Edge");
  workspaceId = (await user.api.post("/workspaces", { name: "Edge" })).body.id;
});

afterAll(() => mesh?.stop());

const countWorkspaces = async () => (await mesh.sql()`select count(*)::int as n from workspace.workspaces`)[0]!.n as number;

describe("bad input", () => {
  test("http: malformed JSON is 400 invalid_json and writes nothing", async () => {
    const before = await countWorkspaces();
    const res = await user.api.request("POST", "/workspaces", { rawBody: '{"name": "x"', headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { code: "invalid_json", message: expect.any(String) } });
    expect(await countWorkspaces()).toBe(before);
  });

  test("http: an empty body is 400 invalid_json", async () => {
    const res = await user.api.request("POST", "/workspaces", { rawBody: "", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_json");
  });

  test.each([
    ["a number for a string", { name: 123 }, "name must be a string"],
    ["an array body", [], ""],
    ["null", null, ""],
    ["an unknown field", { name: "ok", owner_id: "someone" }, "owner_id"],
    ["a too long name", { name: "x".repeat(101) }, "at most 100"],
    ["a blank name", { name: "   " }, "name is required"],
    ["a control character", { name: "bad\u0007name" }, "control characters"],
  ])("http: %s is 400 validation_failed with details", async (_, body, message) => {
    const before = await countWorkspaces();
    const res = await user.api.post("/workspaces", body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.message).toContain(message);
    expect(res.body.error.details.issues.length).toBeGreaterThan(0);
    expect(await countWorkspaces()).toBe(before);
  });

  test("http: a body over 1 MiB is 413, whether Content-Length says so or not", async () => {
    const big = JSON.stringify({ name: "x", description: "y".repeat(1_100_000) });
    const declared = await user.api.request("POST", "/workspaces", { rawBody: big, headers: { "content-type": "application/json" } });
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe("payload_too_large");
    // Chunked: no Content-Length, the limit is enforced while reading.
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 12; i++) controller.enqueue(new TextEncoder().encode(i === 0 ? '{"name":"' : "z".repeat(100_000)));
        controller.close();
      },
    });
    const chunked = await fetch(`${mesh.url}/workspaces`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${user.accessToken}` },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  test("http: a body that is not JSON is 415", async () => {
    const res = await user.api.request("POST", "/workspaces", { rawBody: "name=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe("unsupported_media_type");
  });

  test("http: a path id that is not a UUID is 400, an unknown route 404, both JSON", async () => {
    const bad = await user.api.get("/workspaces/not-a-uuid");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("workspace_id must be a UUID");
    const missing = await user.api.get("/no/such/route", { undocumented: "an unknown route" });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
  });

  test("http: bad list parameters are 400", async () => {
    expect((await user.api.get("/workspaces?limit=0")).status).toBe(400);
    expect((await user.api.get("/workspaces?limit=201")).status).toBe(400);
    expect((await user.api.get("/workspaces?limit=abc")).status).toBe(400);
    expect((await user.api.get("/workspaces?cursor=%%%")).status).toBe(400);
    expect((await user.api.get("/workspaces?cursor=bm90LWEtY3Vyc29y")).status).toBe(400);
  });

  test("http: every route with a body answers 4xx, never 5xx or a stack trace, to hostile bodies", async () => {
    const bodies: unknown[] = [null, [], "text", 42, true, {}, { a: { b: { c: [1, 2, { d: null }] } } }, { ["__proto__"]: { admin: true } }];
    const ids: Record<string, string> = { workspace_id: workspaceId, user_id: user.id, task_id: user.id, comment_id: user.id, job_id: user.id };
    for (const route of gatewayRouteTable().filter((r) => r.body)) {
      const path = route.path.replace(/\{([a-z_]+)\}/g, (_, name: string) => ids[name]!);
      for (const body of bodies) {
        const res = await user.api.request(route.method.toUpperCase(), path, { body });
        expect(res.status, `${route.method} ${route.path} with ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${route.method} ${route.path} with ${JSON.stringify(body)}`).toBeLessThan(500);
        expect(res.text).not.toMatch(/at .+\.(ts|js):\d+/);
      }
    }
  });

  test("http: a 2 MB body without a token on a route that needs one is 413 or 401, and the gateway stays up", async () => {
    const big = "x".repeat(2 * 1024 * 1024);
    const variants: Record<string, string>[] = [{ "content-type": "application/json" }, { "content-type": "application/json", authorization: "Bearer not.a.token" }, {}];
    for (const headers of variants) {
      const res = await mesh.api.request("POST", "/workspaces", { rawBody: big, headers, token: null });
      expect([401, 413]).toContain(res.status);
    }
    // The same without Content-Length (chunked): the body read fails after the token check failed.
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("y".repeat(100_000)));
        controller.close();
      },
    });
    const chunked = await fetch(`${mesh.url}/workspaces`, { method: "POST", headers: { "content-type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    expect([401, 413]).toContain(chunked.status);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await mesh.api.get("/health")).status).toBe(200);
    expect(mesh.gateways[0]!.process.hasExited(), "the gateway is still running").toBe(false);
  });

  test("http: a cursor beyond a bigint is 400 on every list, never 500", async () => {
    const huge = Buffer.from("v1:9999999999999999999").toString("base64url");
    const taskId = (await user.api.post(`/workspaces/${workspaceId}/tasks`, { title: "cursor target" })).body.id as string;
    for (const path of ["/workspaces", `/workspaces/${workspaceId}/members`, `/workspaces/${workspaceId}/tasks`, `/tasks/${taskId}/comments`, `/workspaces/${workspaceId}/exports`, `/workspaces/${workspaceId}/events`]) {
      const res = await user.api.get(`${path}?cursor=${huge}`);
      expect(res.status, path).toBe(400);
      expect(res.body.error.message, path).toContain("cursor");
    }
  });

  test.each([
    ["due_date in year 0", "post", "tasks", { title: "t", due_date: "0000-01-01T00:00:00Z" }, "due_date must be between"],
    ["due_date after year 9999", "post", "tasks", { title: "t", due_date: "+010000-01-01T00:00:00Z" }, "due_date"],
  ])("http: %s is 400 and writes nothing", async (_, method, resource, body, message) => {
    const count = async () => (await mesh.sql()`select count(*)::int as n from task.tasks`)[0]!.n as number;
    const before = await count();
    const res = await user.api.request(method.toUpperCase(), `/workspaces/${workspaceId}/${resource}`, { body });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
    expect(await count()).toBe(before);
  });

  test("http: a year-0 date in a list filter is 400", async () => {
    for (const filter of ["due_before", "due_after"]) {
      const res = await user.api.get(`/workspaces/${workspaceId}/tasks?${filter}=0000-01-01T00:00:00Z`);
      expect(res.status, filter).toBe(400);
      expect(res.body.error.message).toContain(filter);
    }
  });

  test("http: a NUL character in a body, a query or a login e-mail is 400, never 500", async () => {
    const login = await mesh.api.post("/auth/login", { email: "a\u0000@example.com", password: "Passw0rd-long" });
    expect(login.status).toBe(400);
    expect(login.body.error.message).toContain("NUL");
    const register = await mesh.api.post("/auth/register", { name: "Nul\u0000", email: "nul@example.com", password: "Passw0rd-long" });
    expect(register.status).toBe(400);
    const query = await user.api.get(`/workspaces/${workspaceId}/tasks?q=a%00b`);
    expect(query.status).toBe(400);
    const nested = await user.api.post(`/workspaces/${workspaceId}/tasks`, { title: "ok", description: "fine\u0000" });
    expect(nested.status).toBe(400);
  });

  test("http: every response carries a request id, and a sane incoming one is kept", async () => {
    const res = await user.api.get("/workspaces", { headers: { "x-request-id": "trace-abc.123" } });
    expect(res.headers.get("x-request-id")).toBe("trace-abc.123");
    const fresh = await user.api.get("/workspaces", { headers: { "x-request-id": "bad id with spaces" } });
    expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("nesting", () => {
  test("http: a body nested thousands of levels deep is 400, not a crash (found by the fuzz suite)", async () => {
    for (const body of ["[".repeat(5_000) + "]".repeat(5_000), '{"a":'.repeat(5_000) + "1" + "}".repeat(5_000)]) {
      const res = await user.api.post("/workspaces", undefined, { rawBody: body, headers: { "content-type": "application/json" } });
      expect(res.status).toBe(400);
    }
    const nested = await user.api.post("/workspaces", { name: "Deep", description: "x", extra: JSON.parse("[".repeat(40) + "]".repeat(40)) });
    expect(nested.status).toBe(400);
    expect(nested.body.error.message).toMatch(/nested more than 32 levels/);
  });
});

describe("system", () => {
  test("system: public /health says only ok or degraded; a system admin sees every dependency", async () => {
    const res = await mesh.api.get("/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok" });
    const user = await signUp(mesh.api, "Curious");
    expect((await user.api.get("/health")).body).toEqual({ status: "ok" });
    expect((await mesh.api.get("/health", { token: "not-a-token" })).body).toEqual({ status: "ok" });
    const admin = await mesh.api.post("/auth/login", { email: ADMIN.email, password: ADMIN.password });
    expect(admin.status).toBe(200);
    const full = await mesh.api.get("/health", { token: admin.body.access_token });
    expect(full.body).toEqual({ status: "ok", dependencies: { nats: "ok", redis: "ok", auth: "ok", workspace: "ok", task: "ok", export: "ok", webhooks: "ok" } });
  });

  test("system: every answer carries the security headers (JSON, errors, pages, files)", async () => {
    for (const path of ["/workspaces", "/health", "/", "/openapi.yaml", "/no-such-route"]) {
      const res = await user.api.get(path, path === "/no-such-route" ? { undocumented: "an unknown route" } : {});
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(res.headers.get("referrer-policy"), path).toBe("no-referrer");
      expect(res.headers.get("x-frame-options"), path).toBe("DENY");
      expect(res.headers.get("strict-transport-security"), path).toMatch(/^max-age=\d+/);
    }
  });

  test("system: the test page runs only its own module scripts: /app.js and the compiled SDK at /sdk/ (nothing else under it)", async () => {
    const page = await fetch(`${mesh.url}/`);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(csp).toMatch(/style-src 'self';/);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/\son[a-z]+=/i); // no inline event handler
    expect(html).not.toMatch(/<style|\sstyle=/i); // no inline style
    const css = await fetch(`${mesh.url}/app.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");

    const app = await fetch(`${mesh.url}/app.js`);
    expect(app.status).toBe(200);
    expect(app.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(app.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await app.text()).toContain(`from '/sdk/index.js'`);

    for (const file of ["index.js", "client.js", "realtime.js", "operations.gen.js"]) {
      const res = await fetch(`${mesh.url}/sdk/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toBe("text/javascript; charset=utf-8");
      expect(res.headers.get("cache-control"), file).toBe("public, max-age=86400");
      expect(res.headers.get("x-content-type-options"), file).toBe("nosniff");
      expect(await res.text(), file).toBe(readFileSync(new URL(`../dist/api/client/${file}`, import.meta.url), "utf8"));
    }
    // Only the SDK's own compiled modules: no test, map, manifest, other name or path outside it.
    for (const path of [
      "/sdk/client.test.js",
      "/sdk/index.js.map",
      "/sdk/package.json",
      "/sdk/README.md",
      "/sdk/nope.js",
      "/sdk/..%2F..%2Fpackage.json",
      "/sdk/..%2Fcontracts%2Ftask.js",
      "/sdk/%2e%2e%2Fcontracts%2Ftask.js",
      "/sdk/",
      "/sdk/index.js/x",
    ]) {
      const res = await fetch(`${mesh.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type") ?? "", path).not.toContain("javascript");
      await res.body?.cancel();
    }
  });

  test("system: /openapi.yaml and /docs are served", async () => {
    const spec = await mesh.api.get("/openapi.yaml");
    expect(spec.status).toBe(200);
    expect(spec.text).toMatch(/^openapi: 3\.1/m);
    const docs = await mesh.api.get("/docs");
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('<script src="/docs.js">');
    expect(docs.text).not.toMatch(/<script>/);
    const start = await fetch(`${mesh.url}/docs.js`);
    expect(start.status).toBe(200);
    expect(start.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(await start.text()).toContain("/openapi.yaml");
    const bundle = await fetch(`${mesh.url}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await fetch(`${mesh.url}/docs/assets/..%2F..%2Fpackage.json`)).status).toBe(404);
  });
});
