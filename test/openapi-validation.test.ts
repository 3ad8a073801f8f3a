import { describe, expect, test } from "vitest";
import { openApiDocument, type SeenResponse } from "./support/openapi.js";

// The check the test HTTP client applies to every response (test/support/openapi.ts),
// against api/openapi.yaml: it passes what the document declares and fails, readably,
// what it does not.

const json = (status: number, path: string, body: unknown, method = "GET", headers: Record<string, string> = {}): SeenResponse => ({
  method,
  path,
  status,
  headers: new Headers({ "content-type": "application/json; charset=utf-8", ...headers }),
  text: JSON.stringify(body),
});

const id = "0b5c2f9e-8d4e-4d67-9a51-3f2c1e7b8a90";
const user = { id, name: "Ann", email: "ann@example.com", role: "user", email_notifications: true, created_at: "2026-12-01T10:00:00.000Z" };
const document = openApiDocument();

describe("OpenAPI response check", () => {
  test("a documented answer passes: /users/me is its own operation, not /users/{user_id}", () => {
    expect(document.problems(json(200, "/users/me", user))).toEqual([]);
    expect(document.problems(json(200, `/users/${id}?x=1`, user))).toEqual([]);
  });

  test("a body that is not the schema fails with the operation, the status and the JSON pointer of each error", () => {
    const problems = document.problems(json(200, "/users/me", { ...user, role: "root", email_notifications: "yes" }));
    expect(problems[0]).toBe("OpenAPI: GET /users/me → 200 does not match operation getMe (GET /users/me)");
    expect(problems).toContainEqual(expect.stringMatching(/^status 200 application\/json body at \/role: must be equal to one of the allowed values \("user", "admin"\)/));
    expect(problems).toContainEqual(expect.stringMatching(/^status 200 application\/json body at \/email_notifications: must be boolean/));
    expect(() => document.check(json(200, "/users/me", { ...user, role: "root" }))).toThrow(/getMe[\s\S]*body at \/role/);
  });

  test("a field the document does not name fails (objects are read closed), also inside lists", () => {
    expect(document.problems(json(200, "/users/me", { ...user, password_hash: "x" }))).toContainEqual(
      expect.stringMatching(/^status 200 application\/json body at \/: has the undeclared property "password_hash"/),
    );
    expect(document.problems(json(200, "/users", { items: [user, { ...user, extra: 1 }], next_cursor: null }))).toContainEqual(
      expect.stringMatching(/body at \/items\/1: has the undeclared property "extra"/),
    );
  });

  test("formats count: an id that is not a UUID fails", () => {
    expect(document.problems(json(200, "/users/me", { ...user, id: "42" }))).toContainEqual(expect.stringMatching(/body at \/id: must match format "uuid"/));
  });

  test("an undeclared status fails, an error body must be the Error schema", () => {
    expect(document.problems(json(418, "/users/me", { error: { code: "forbidden", message: "no" } }))[1]).toMatch(/^status 418 is not declared \(declared: 200, 401, 403, 404, 429, 500, 503\)/);
    expect(document.problems(json(404, "/users/me", { error: { code: "not_found", message: "gone" } }))).toEqual([]);
    expect(document.problems(json(404, "/users/me", { error: "gone" }))).toContainEqual(expect.stringMatching(/body at \/error: must be object/));
  });

  test("a 429 without Retry-After fails", () => {
    const limited = { error: { code: "rate_limited", message: "slow down" } };
    expect(document.problems(json(429, "/users/me", limited))).toContainEqual("status 429: required header Retry-After is missing");
    expect(document.problems(json(429, "/users/me", limited, "GET", { "retry-after": "3" }))).toEqual([]);
  });

  test("an undocumented path or method fails", () => {
    expect(document.problems(json(404, "/no-such-route", {}))).toEqual(["OpenAPI: GET /no-such-route → 404: no path of the document matches /no-such-route"]);
    expect(document.problems(json(404, "/users/me", {}, "PATCH"))[0]).toMatch(/has no PATCH operation for \/users\/me \(it has GET \/users\/me, GET \/users\/\{user_id\}, PUT \/users\/\{user_id\}, DELETE \/users\/\{user_id\}\)/);
  });

  test("the content type must be declared, and a response declared without a body has none", () => {
    const html: SeenResponse = { method: "GET", path: "/users/me", status: 200, headers: new Headers({ "content-type": "text/html" }), text: "<p>" };
    expect(document.problems(html)).toContainEqual('status 200: content type "text/html" is not declared (declared: application/json)');
    const noContent: SeenResponse = { method: "DELETE", path: `/tasks/${id}`, status: 204, headers: new Headers(), text: "" };
    expect(document.problems(noContent)).toEqual([]);
    expect(document.problems({ ...noContent, text: "{}" })).toContainEqual("status 204 is declared without a body, but one came: {}");
  });

  test("a JSON answer that does not parse fails", () => {
    expect(document.problems({ ...json(200, "/users/me", user), text: '{"id": ' })).toContainEqual(expect.stringMatching(/^status 200 application\/json body does not parse: /));
  });
});
