import { afterAll, beforeAll, expect, test } from "vitest";
import { AuthServiceClient } from "../api/gen/taskboard/auth/v1/auth.js";
import { signUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

let mesh: Mesh;

beforeAll(async () => {
  mesh = await Mesh.start({ env: { RATE_LIMIT_PER_IP: "6", RATE_LIMIT_PER_EMAIL: "3", RATE_LIMIT_WINDOW_SECONDS: "60" } });
});

afterAll(() => mesh?.stop());

test("rate limits: login attempts per e-mail beyond the limit are 429 with Retry-After", async () => {
  const user = await signUp(mesh.api, "Target");
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    statuses.push((await mesh.api.post("/auth/login", { email: user.email, password: "Wrong-guess1" })).status);
  }
  // signUp logged in once: two wrong guesses fit in the limit of 3, the third and fourth do not.
  expect(statuses).toEqual([401, 401, 429, 429]);
  const limited = await mesh.api.post("/auth/login", { email: user.email, password: user.password });
  expect(limited.status).toBe(429);
  expect(limited.body.error.code).toBe("rate_limited");
  const retryAfter = Number(limited.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(60);
});

test("rate limits: registrations per client IP beyond the limit are 429 and create nobody", async () => {
  // Each test file has its own Redis prefix, but this file's earlier test used 1 register + 5 logins (counted apart).
  const results: number[] = [];
  for (let i = 0; i < 7; i++) {
    const email = `burst.${i}.${Date.now()}@example.com`;
    results.push((await mesh.api.post("/auth/register", { name: "Burst", email, password: "Passw0rd-b" })).status);
  }
  expect(results.filter((s) => s === 201)).toHaveLength(5);
  expect(results.slice(5)).toEqual([429, 429]);
  const rows = await mesh.sql()`select count(*)::int as n from auth.users where name = 'Burst'`;
  expect(rows[0]!.n).toBe(5);
});

test.each([
  ["without a credential", {}],
  ["with another process's credential (notify's)", { internal: true }],
])("rate limits: a caller of auth's gRPC port %s cannot choose the address it is counted by", async (_, as) => {
  const client = mesh.grpcClient(AuthServiceClient, "auth", "notify");
  try {
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      // A fresh address and e-mail each time: were client_ip believed, no limit would ever apply.
      const email = `spoof.${i}.${Date.now()}@example.com`;
      outcomes.push(
        await client.call("register", { name: "Spoof", email, password: "Passw0rd-b", client_ip: `203.0.113.${i + 1}` }, as).then(
          () => "created",
          (error: { code?: string }) => error.code ?? "error",
        ),
      );
    }
    expect(outcomes).toContain("rate_limited");
  } finally {
    client.close();
  }
});
