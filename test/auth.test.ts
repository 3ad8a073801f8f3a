import { generateKeyPairSync, randomUUID } from "node:crypto";
import { AuthServiceClient } from "../api/gen/taskboard/auth/v1/auth.js";
import { createLocalJWKSet, generateKeyPair, importPKCS8, jwtVerify, SignJWT, type JSONWebKeySet } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EventTap } from "./support/events.js";
import { logIn, signUp, type SignedUp } from "./support/http.js";
import { Mesh } from "./support/mesh.js";

// A known signing key, so the test can mint expired and tampered tokens with it.
const { privateKey: signingKeyPem } = generateKeyPairSync("ed25519", {
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const ADMIN = { email: "root@example.com", password: "RootPassw0rd" };

let mesh: Mesh;
let tap: EventTap;

beforeAll(async () => {
  mesh = await Mesh.start({
    env: { JWT_PRIVATE_KEY: signingKeyPem, BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password },
  });
  tap = new EventTap(await mesh.nats(), mesh.id);
});

afterAll(async () => {
  tap?.close();
  await mesh?.stop();
});

describe("register and log in", () => {
  test("auth: register answers 201 with the user, never a password hash, and publishes user.registered", async () => {
    const email = `New.Person.${Date.now()}@Example.com`;
    const res = await mesh.api.post("/auth/register", { name: "New Person", email, password: "Str0ngPassword" });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      name: "New Person",
      email: email.toLowerCase(),
      role: "user",
      email_notifications: true,
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/),
    });
    expect(res.text).not.toMatch(/password|argon/i);
    const seen = await tap.waitFor("user.registered", (s) => s.event.type === "user.registered" && s.event.aggregate_id === res.body.id);
    expect(seen.subject).toBe(`${mesh.id}.auth.users.registered`);
    expect(seen.event).toMatchObject({ id: expect.any(String), user_id: res.body.id, data: { id: res.body.id, email: email.toLowerCase() } });
    expect(JSON.stringify(seen.event)).not.toMatch(/password/i);
  });

  test("auth: registering an address that has an account (in any letter case) answers as for a new one, and writes, publishes and changes nothing", async () => {
    const user = await signUp(mesh.api, "Dup");
    const taken = user.email.toUpperCase();
    const fresh = `fresh.${Date.now()}@EXAMPLE.com`;
    const [known, unknown] = await Promise.all([
      mesh.api.post("/auth/register", { name: "Other", email: taken, password: "Passw0rd-2" }),
      mesh.api.post("/auth/register", { name: "Other", email: fresh, password: "Passw0rd-2" }),
    ]);
    // The same status, headers that matter and body shape; only the address and the id differ.
    expect([known.status, unknown.status]).toEqual([201, 201]);
    expect(known.headers.get("content-type")).toBe(unknown.headers.get("content-type"));
    const shape = (body: Record<string, unknown>) => ({ ...body, id: typeof body.id, email: typeof body.email, created_at: typeof body.created_at });
    expect(shape(known.body)).toEqual(shape(unknown.body));
    expect(known.body.email).toBe(taken.toLowerCase());
    expect(known.body.id).not.toBe(user.id);
    // Nothing stored or published for it, and the account keeps its password.
    const rows = await mesh.sql()`select count(*)::int as n from auth.users where lower(email) = ${user.email}`;
    expect(rows[0]!.n).toBe(1);
    await tap.waitFor("the fresh user.registered", (s) => s.event.type === "user.registered" && s.event.aggregate_id === unknown.body.id);
    expect(tap.seen.filter((s) => s.event.aggregate_id === known.body.id)).toEqual([]);
    expect((await mesh.api.post("/auth/login", { email: user.email, password: "Passw0rd-2" })).status).toBe(401);
    expect((await mesh.api.post("/auth/login", { email: user.email, password: user.password })).status).toBe(200);
  });

  test("auth: login answers a wrong password and an unknown address the same way (status and body)", async () => {
    const user = await signUp(mesh.api, "Known");
    const wrong = await mesh.api.post("/auth/login", { email: user.email, password: "Wrong-passw0rd" });
    const unknown = await mesh.api.post("/auth/login", { email: `nobody.${Date.now()}@example.com`, password: "Wrong-passw0rd" });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.text).toBe(unknown.text);
  });

  test.each([
    ["shorter than 8 characters", "Ab1defg", "at least 8 characters"],
    ["without an upper-case letter", "abcdefg1", "upper-case"],
    ["without a digit", "Abcdefgh", "digit"],
    ["not a string", 12345678, "must be a string"],
  ])("auth: the password policy refuses a password %s", async (_, password, message) => {
    const email = `policy.${Date.now()}.${Math.random()}@example.com`;
    const res = await mesh.api.post("/auth/register", { name: "P", email, password });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.message).toContain(message);
    const login = await mesh.api.post("/auth/login", { email, password: "Whatever1" });
    expect(login.status).toBe(401);
  });

  test("auth: login answers a bearer pair whose access token verifies against the published JWKS", async () => {
    const user = await signUp(mesh.api, "Keys");
    const jwks = await mesh.api.get("/.well-known/jwks.json");
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", kid: expect.any(String) });
    expect(jwks.body.keys[0].d).toBeUndefined();
    const { payload } = await jwtVerify(user.accessToken, createLocalJWKSet(jwks.body as JSONWebKeySet), {
      issuer: "taskboard",
      audience: "taskboard",
    });
    expect(payload.sub).toBe(user.id);
    expect(payload["role"]).toBe("user");
    expect(payload.exp! - payload.iat!).toBe(900);
  });

  test("auth: a wrong password or an unknown e-mail is 401 with the same message", async () => {
    const user = await signUp(mesh.api, "Wrong");
    const wrong = await mesh.api.post("/auth/login", { email: user.email, password: "Not-the-password1" });
    const unknown = await mesh.api.post("/auth/login", { email: "nobody@example.com", password: "Not-the-password1" });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.error.message).toBe(unknown.body.error.message);
  });
});

describe("refresh tokens", () => {
  test("auth: refresh answers a new pair and spends the old refresh token", async () => {
    const user = await signUp(mesh.api, "Rotate");
    const first = await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ token_type: "Bearer", expires_in: 900 });
    expect(first.body.refresh_token).not.toBe(user.refreshToken);
    const me = await mesh.api.get(`/users/${user.id}`, { token: first.body.access_token });
    expect(me.status).toBe(200);
    const second = await mesh.api.post("/auth/refresh", { refresh_token: first.body.refresh_token });
    expect(second.status).toBe(200);
  });

  test("auth: presenting a spent refresh token revokes its whole family", async () => {
    const user = await signUp(mesh.api, "Reuse");
    const rotated = await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken });
    expect(rotated.status).toBe(200);
    const replay = await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken });
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/reuse/);
    // The thief's replay also killed the legitimate holder's newer token.
    const newer = await mesh.api.post("/auth/refresh", { refresh_token: rotated.body.refresh_token });
    expect(newer.status).toBe(401);
    // Another login (another family) is unaffected.
    const again = await logIn(mesh.api, user);
    expect((await mesh.api.post("/auth/refresh", { refresh_token: again.refreshToken })).status).toBe(200);
  });

  test("auth: logout answers 204 and revokes the family", async () => {
    const user = await signUp(mesh.api, "Logout");
    const rotated = await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken });
    const res = await user.api.post("/auth/logout", { refresh_token: rotated.body.refresh_token });
    expect(res.status).toBe(204);
    expect((await mesh.api.post("/auth/refresh", { refresh_token: rotated.body.refresh_token })).status).toBe(401);
  });

  test("auth: logout needs a bearer token and cannot revoke another user's session", async () => {
    const alice = await signUp(mesh.api, "Alice");
    const mallory = await signUp(mesh.api, "Mallory");
    expect((await mesh.api.post("/auth/logout", { refresh_token: alice.refreshToken })).status).toBe(401);
    expect((await mallory.api.post("/auth/logout", { refresh_token: alice.refreshToken })).status).toBe(401);
    expect((await mesh.api.post("/auth/refresh", { refresh_token: alice.refreshToken })).status).toBe(200);
  });

  test.each([["garbage"], ["a.b"], [""], ["x".repeat(600)]])("auth: refresh with a malformed token %# is 4xx, never 500", async (token) => {
    const res = await mesh.api.post("/auth/refresh", { refresh_token: token });
    expect([400, 401]).toContain(res.status);
  });
});

describe("forged access tokens", () => {
  let victim: SignedUp;
  let realKey: Awaited<ReturnType<typeof importPKCS8>>;

  beforeAll(async () => {
    victim = await signUp(mesh.api, "Victim");
    realKey = await importPKCS8(signingKeyPem, "EdDSA");
  });

  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const claims = () => ({
    sub: victim.id,
    role: "admin",
    iss: "taskboard",
    aud: "taskboard",
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 600,
  });

  const forgeries: [string, () => Promise<string>][] = [
    ["alg none", async () => `${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}.`],
    [
      "HS256 with a guessed secret",
      () => new SignJWT(claims()).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("secret")),
    ],
    [
      "another Ed25519 key",
      async () => {
        const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
        return new SignJWT(claims()).setProtectedHeader({ alg: "EdDSA" }).sign(privateKey);
      },
    ],
    [
      "a tampered payload (role raised to admin)",
      async () => {
        const [header, , signature] = victim.accessToken.split(".");
        return `${header}.${b64(claims())}.${signature}`;
      },
    ],
    [
      "an expired token signed with the real key",
      () =>
        new SignJWT({ ...claims(), role: "user", iat: Math.floor(Date.now() / 1000) - 3600, exp: Math.floor(Date.now() / 1000) - 60 })
          .setProtectedHeader({ alg: "EdDSA" })
          .sign(realKey),
    ],
    [
      "an issue time a year in the future, signed with the real key",
      () =>
        new SignJWT({ ...claims(), role: "user", iat: Math.floor(Date.now() / 1000) + 365 * 86_400, exp: Math.floor(Date.now() / 1000) + 365 * 86_400 + 600 })
          .setProtectedHeader({ alg: "EdDSA" })
          .sign(realKey),
    ],
    [
      "a lifetime of ten years, signed with the real key",
      () =>
        new SignJWT({ ...claims(), role: "user", exp: Math.floor(Date.now() / 1000) + 10 * 365 * 86_400 })
          .setProtectedHeader({ alg: "EdDSA" })
          .sign(realKey),
    ],
    [
      "a token for another audience",
      () => new SignJWT({ ...claims(), role: "user", aud: "elsewhere" }).setProtectedHeader({ alg: "EdDSA" }).sign(realKey),
    ],
  ];

  test.each(forgeries)("auth: a token with %s is refused with 401", async (_, forge) => {
    const token = await forge();
    const res = await mesh.api.get(`/users/${victim.id}`, { token });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthorized");
    expect((await mesh.api.get("/users", { token })).status).toBe(401);
  });

  test("auth: a correctly signed token is accepted (the forgeries fail for their flaw, not the harness)", async () => {
    const token = await new SignJWT({ ...claims(), role: "user" }).setProtectedHeader({ alg: "EdDSA" }).sign(realKey);
    expect((await mesh.api.get(`/users/${victim.id}`, { token })).status).toBe(200);
  });

  test("auth: a missing or malformed Authorization header is 401", async () => {
    expect((await mesh.api.get("/workspaces", { token: null })).status).toBe(401);
    const res = await mesh.api.get("/workspaces", { token: null, headers: { authorization: "Basic abc" } });
    expect(res.status).toBe(401);
  });
});

describe("users", () => {
  let admin: SignedUp;

  beforeAll(async () => {
    admin = await logIn(mesh.api, { id: "", name: "Administrator", ...ADMIN });
  });

  test("users: the bootstrap admin exists with role admin", async () => {
    const payload = JSON.parse(Buffer.from(admin.accessToken.split(".")[1]!, "base64url").toString());
    expect(payload.role).toBe("admin");
  });

  test.each([
    ["POST /users", "post", "/users"],
    ["GET /users", "get", "/users"],
  ] as const)("users: %s is admin only (403 for a user)", async (_, method, path) => {
    const user = await signUp(mesh.api, "Plain");
    const body = { name: "X", email: `x.${Date.now()}@example.com`, password: "Passw0rd-x" };
    const res = method === "post" ? await user.api.post(path, body) : await user.api.get(path);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("forbidden");
  });

  test("users: an admin creates users (with a role) and lists them page by page", async () => {
    const email = `made.${Date.now()}@example.com`;
    const created = await admin.api.post("/users", { name: "Made", email, password: "Passw0rd-m", role: "admin" });
    expect(created.status).toBe(201);
    expect(created.body.role).toBe("admin");
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: { items: { id: string }[]; next_cursor: string | null } } = await admin.api.get(`/users?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      for (const u of page.body.items) {
        expect(seen.has(u.id)).toBe(false);
        seen.add(u.id);
      }
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen.has(created.body.id)).toBe(true);
    expect(pages).toBeGreaterThan(1);
  });

  test("users: a user reads and updates themself but not another user (403)", async () => {
    const me = await signUp(mesh.api, "Me");
    const other = await signUp(mesh.api, "Other");
    expect((await me.api.get(`/users/${me.id}`)).status).toBe(200);
    const updated = await me.api.put(`/users/${me.id}`, { name: "Me Renamed", email_notifications: false });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ name: "Me Renamed", email_notifications: false });
    await tap.waitFor("user.updated", (s) => s.event.type === "user.updated" && s.event.aggregate_id === me.id);
    expect((await me.api.get(`/users/${other.id}`)).status).toBe(403);
    expect((await me.api.put(`/users/${other.id}`, { name: "Hacked" })).status).toBe(403);
    expect((await me.api.delete(`/users/${other.id}`)).status).toBe(403);
    expect((await admin.api.get(`/users/${other.id}`)).body.name).toBe("Other");
  });

  test("users: GET /users/me answers the caller's own user (no need to decode the token); without a token 401; deleted 404", async () => {
    const me = await signUp(mesh.api, "Myself");
    const res = await me.api.get("/users/me");
    expect(res.status).toBe(200);
    expect(res.body).toEqual((await me.api.get(`/users/${me.id}`)).body);
    expect(res.body).toMatchObject({ id: me.id, name: "Myself", email: me.email, role: "user" });
    expect((await admin.api.get("/users/me")).body.role).toBe("admin");
    expect((await mesh.api.get("/users/me")).status).toBe(401);
    expect((await me.api.delete(`/users/${me.id}`)).status).toBe(204);
    expect((await me.api.get("/users/me")).status).toBe(404);
  });

  test("users: no self role escalation, while an admin can change a role", async () => {
    const user = await signUp(mesh.api, "Climber");
    const attempt = await user.api.put(`/users/${user.id}`, { role: "admin" });
    expect(attempt.status).toBe(403);
    expect((await admin.api.get(`/users/${user.id}`)).body.role).toBe("user");
    const promoted = await admin.api.put(`/users/${user.id}`, { role: "admin" });
    expect(promoted.status).toBe(200);
    expect(promoted.body.role).toBe("admin");
  });

  test("users: changing to a taken e-mail is 409; a new password works and ends old sessions", async () => {
    const user = await signUp(mesh.api, "Mover");
    const other = await signUp(mesh.api, "Taken");
    expect((await user.api.put(`/users/${user.id}`, { email: other.email })).status).toBe(409);
    const changed = await user.api.put(`/users/${user.id}`, { password: "Brand-new-pass9" });
    expect(changed.status).toBe(200);
    expect((await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken })).status).toBe(401);
    expect((await mesh.api.post("/auth/login", { email: user.email, password: user.password })).status).toBe(401);
    expect((await mesh.api.post("/auth/login", { email: user.email, password: "Brand-new-pass9" })).status).toBe(200);
  });

  test("users: deleting oneself answers 204, publishes user.deleted and ends the account", async () => {
    const user = await signUp(mesh.api, "Leaver");
    expect((await user.api.delete(`/users/${user.id}`)).status).toBe(204);
    const seen = await tap.waitFor("user.deleted", (s) => s.event.type === "user.deleted" && s.event.aggregate_id === user.id);
    expect(seen.subject).toBe(`${mesh.id}.auth.users.deleted`);
    expect(seen.event.data).toEqual({ id: user.id });
    expect((await mesh.api.post("/auth/login", { email: user.email, password: user.password })).status).toBe(401);
    expect((await mesh.api.post("/auth/refresh", { refresh_token: user.refreshToken })).status).toBe(401);
    expect((await admin.api.get(`/users/${user.id}`)).status).toBe(404);
  });
});

describe("internal lookups", () => {
  test("auth: LookupUsers answers known users and refuses unbounded requests (at most 500 ids and addresses)", async () => {
    const user = await signUp(mesh.api, "Looked up");
    const client = mesh.grpcClient(AuthServiceClient, "auth", "notify");
    try {
      const found = await client.call("lookupUsers", { user_ids: [user.id], emails: [] }, { internal: true });
      expect(found.items.map((u) => u.id)).toEqual([user.id]);
      const many = Array.from({ length: 501 }, () => randomUUID());
      await expect(client.call("lookupUsers", { user_ids: many, emails: [] }, { internal: true })).rejects.toMatchObject({ code: "validation_failed" });
      await expect(client.call("lookupUsers", { user_ids: [], emails: [`${"a".repeat(250)}@example.com`] }, { internal: true })).rejects.toMatchObject({
        code: "validation_failed",
      });
    } finally {
      client.close();
    }
  });
});
