import { describe, expect, test } from "vitest";
import { refreshDueAt, tokenTimes } from "./tokens.js";
import { expandPath, joinUrl, queryString, websocketUrl } from "./url.js";

describe("URLs", () => {
  test("url: path parameters are substituted and encoded; a missing one throws", () => {
    expect(expandPath("/workspaces/{workspace_id}/members/{user_id}", { workspace_id: "w 1", user_id: "u/2" })).toBe("/workspaces/w%201/members/u%2F2");
    expect(() => expandPath("/tasks/{task_id}", {})).toThrow(/task_id/);
  });

  test("url: arrays repeat the name, undefined and null are left out, values encoded", () => {
    expect(queryString({ label: ["launch", "docs & more"], status: "pending", limit: 10, cursor: undefined, q: null })).toBe(
      "?label=launch&label=docs+%26+more&status=pending&limit=10",
    );
    expect(queryString({})).toBe("");
    expect(queryString(undefined)).toBe("");
    expect(queryString({ label: [] })).toBe("");
  });

  test("url: base URLs with or without a trailing slash, relative ones kept relative", () => {
    expect(joinUrl("http://h:8080/", "/tasks/1")).toBe("http://h:8080/tasks/1");
    expect(joinUrl("http://h:8080/api", "/tasks/1")).toBe("http://h:8080/api/tasks/1");
    expect(joinUrl("", "/tasks/1")).toBe("/tasks/1");
    expect(joinUrl("/api/", "/tasks/1")).toBe("/api/tasks/1");
  });

  test("url: WebSocket addresses: http → ws, https → wss, relative against the page", () => {
    expect(websocketUrl("http://127.0.0.1:8080", "/ws/w1?ticket=t&since=4")).toBe("ws://127.0.0.1:8080/ws/w1?ticket=t&since=4");
    expect(websocketUrl("https://example.com/api/", "/ws/w1")).toBe("wss://example.com/api/ws/w1");
    expect(websocketUrl("/api", "/ws/w1", { href: "https://app.example.com/board" })).toBe("wss://app.example.com/api/ws/w1");
    expect(websocketUrl("", "/ws/w1", { href: "http://localhost:8080/" })).toBe("ws://localhost:8080/ws/w1");
    expect(() => websocketUrl("/api", "/ws/w1")).toThrow(/relative/);
  });
});

describe("tokens", () => {
  const jwt = (payload: object) => `e30.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.sig`;

  test("tokens: exp and iat from the payload, undefined for an opaque token", () => {
    expect(tokenTimes(jwt({ sub: "u", exp: 2000, iat: 1100 }))).toEqual({ exp: 2000, iat: 1100 });
    expect(tokenTimes("opaque")).toEqual({ exp: undefined, iat: undefined });
    expect(tokenTimes("a.%%%.b")).toEqual({ exp: undefined, iat: undefined });
  });

  test("tokens: refreshed 30 s before expiry, or a fifth of a short lifetime", () => {
    expect(refreshDueAt(jwt({ exp: 10_000, iat: 10_000 - 900 }))).toBe((10_000 - 30) * 1000);
    expect(refreshDueAt(jwt({ exp: 10_000, iat: 10_000 - 10 }))).toBe((10_000 - 2) * 1000);
    expect(refreshDueAt("opaque")).toBeUndefined();
  });
});
