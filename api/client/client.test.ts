import { describe, expect, test } from "vitest";
import { TaskboardClient } from "./client.js";
import { TaskboardError } from "./errors.js";

const jwt = (expiresInSeconds: number, lifetimeSeconds = 900) => {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: "u1", iat: now + expiresInSeconds - lifetimeSeconds, exp: now + expiresInSeconds };
  return `e30.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.sig`;
};

/** A fetch that records requests and answers from `answer`. */
function recording(answer: (method: string, url: URL, init: RequestInit) => Response | Promise<Response>) {
  const seen: { method: string; url: string; authorization: string | undefined; body: unknown }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    const url = new URL(String(input));
    const headers = new Headers(init.headers);
    const method = init.method ?? "GET";
    seen.push({ method, url: url.pathname + url.search, authorization: headers.get("authorization") ?? undefined, body: init.body ? JSON.parse(String(init.body)) : undefined });
    return answer(method, url, init);
  };
  return { fetch, seen };
}

const pair = (access: string, refresh: string) => Response.json({ access_token: access, refresh_token: refresh, expires_in: 900, token_type: "Bearer" });

describe("TaskboardClient", () => {
  test("client: path parameters, repeated query names, JSON body, bearer token; login keeps the tokens", async () => {
    const access = jwt(900);
    const { fetch, seen } = recording((method, url) => {
      if (url.pathname.endsWith("/auth/login")) return pair(access, "r1");
      if (method === "GET") return Response.json({ items: [], next_cursor: null });
      return Response.json({ id: "t1" }, { status: 201 });
    });
    const saved: unknown[] = [];
    const client = new TaskboardClient({ baseUrl: "http://api.test/v1/", fetch, onTokens: (t) => saved.push(t) });
    await client.login({ email: "a@example.com", password: "x" });
    expect(saved).toEqual([{ access_token: access, refresh_token: "r1" }]);
    await client.listTasks("w 1", { label: ["a", "b"], status: "pending", limit: 5 });
    await client.createTask("w1", { title: "T" });
    expect(seen).toEqual([
      { method: "POST", url: "/v1/auth/login", authorization: undefined, body: { email: "a@example.com", password: "x" } },
      { method: "GET", url: "/v1/workspaces/w%201/tasks?label=a&label=b&status=pending&limit=5", authorization: `Bearer ${access}`, body: undefined },
      { method: "POST", url: "/v1/workspaces/w1/tasks", authorization: `Bearer ${access}`, body: { title: "T" } },
    ]);
  });

  test("client: an error answer is a TaskboardError with code, message, details and Retry-After", async () => {
    const { fetch } = recording(() =>
      Response.json({ error: { code: "rate_limited", message: "slow down", details: { limit: 10 } } }, { status: 429, headers: { "retry-after": "7", "x-request-id": "req-1" } }),
    );
    const client = new TaskboardClient({ baseUrl: "http://api.test", fetch, tokens: { access_token: jwt(900) } });
    const error = await client.listWorkspaces().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskboardError);
    expect(error).toMatchObject({ status: 429, code: "rate_limited", message: "slow down", details: { limit: 10 }, retryAfter: 7, requestId: "req-1" });
  });

  test("client: a body that is not the API's error gets code http_<status>; no answer at all is network_error", async () => {
    const html = new TaskboardClient({ baseUrl: "http://api.test", fetch: async () => new Response("<h1>Bad gateway</h1>", { status: 502, statusText: "Bad Gateway" }) });
    await expect(html.getHealth()).rejects.toMatchObject({ status: 502, code: "http_502" });
    const down = new TaskboardClient({ baseUrl: "http://api.test", fetch: async () => Promise.reject(new TypeError("fetch failed")) });
    await expect(down.getHealth()).rejects.toMatchObject({ status: 0, code: "network_error", cause: expect.any(TypeError) });
  });

  test("client: a token about to expire is refreshed first, once for concurrent calls", async () => {
    const fresh = jwt(900);
    const { fetch, seen } = recording((_m, url) => (url.pathname === "/auth/refresh" ? pair(fresh, "r2") : Response.json({ items: [], next_cursor: null })));
    const client = new TaskboardClient({ baseUrl: "http://api.test", fetch, tokens: { access_token: jwt(10), refresh_token: "r1" } });
    await Promise.all([client.listWorkspaces(), client.listWorkspaces(), client.listWorkspaces()]);
    expect(seen.filter((r) => r.url === "/auth/refresh")).toEqual([{ method: "POST", url: "/auth/refresh", authorization: undefined, body: { refresh_token: "r1" } }]);
    expect(seen.filter((r) => r.url === "/workspaces").map((r) => r.authorization)).toEqual(Array(3).fill(`Bearer ${fresh}`));
  });

  test("client: a 401 is retried once after a refresh; a refused refresh forgets the tokens", async () => {
    const fresh = jwt(900);
    let refreshes = 0;
    const { fetch, seen } = recording((_m, url, init) => {
      if (url.pathname === "/auth/refresh") {
        return ++refreshes === 1 ? pair(fresh, "r2") : Response.json({ error: { code: "unauthorized", message: "spent" } }, { status: 401 });
      }
      const auth = new Headers(init.headers).get("authorization");
      return auth === `Bearer ${fresh}` ? Response.json({ items: [], next_cursor: null }) : Response.json({ error: { code: "unauthorized", message: "expired" } }, { status: 401 });
    });
    const saved: unknown[] = [];
    const client = new TaskboardClient({ baseUrl: "http://api.test", fetch, tokens: { access_token: "opaque", refresh_token: "r1" }, onTokens: (t) => saved.push(t) });
    await client.listWorkspaces();
    expect(seen.map((r) => r.url)).toEqual(["/workspaces", "/auth/refresh", "/workspaces"]);

    client.setTokens({ access_token: "opaque-again", refresh_token: "r2" });
    await expect(client.listWorkspaces()).rejects.toMatchObject({ status: 401 });
    expect(client.tokens).toBeUndefined();
    expect(saved.at(-1)).toBeUndefined();
  });

  test("client: a refresh that gets no answer does not fail a call while the token still holds", async () => {
    const current = jwt(20, 60); // due (a fifth of 60 s before expiry), still valid
    const { fetch } = recording((_m, url) => (url.pathname === "/auth/refresh" ? Promise.reject(new TypeError("fetch failed")) : Response.json({ items: [], next_cursor: null })));
    const client = new TaskboardClient({ baseUrl: "http://api.test", fetch, tokens: { access_token: current, refresh_token: "r1" } });
    await expect(client.listWorkspaces()).resolves.toEqual({ items: [], next_cursor: null });
    expect(client.tokens?.access_token).toBe(current);
  });

  test("client: 204 answers undefined; documents answer text; logout forgets the tokens", async () => {
    const { fetch } = recording((_m, url) => (url.pathname === "/openapi.yaml" ? new Response("openapi: 3.1.0\n") : new Response(null, { status: 204 })));
    const client = new TaskboardClient({ baseUrl: "http://api.test", fetch, tokens: { access_token: jwt(900), refresh_token: "r1" } });
    expect(await client.deleteTask("t1")).toBeUndefined();
    expect(await client.getOpenApiDocument()).toBe("openapi: 3.1.0\n");
    await client.logout({ refresh_token: "r1" });
    expect(client.tokens).toBeUndefined();
  });
});
