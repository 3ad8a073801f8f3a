import type { AuthKeys } from "../../platform/auth-keys.js";
import { json, noContent, route, type Route } from "../router.js";
import { presentTokens, presentUser } from "../presenters.js";
import { Jwks } from "../../../api/contracts/system.js";
import { Login, RefreshToken, Register, TokenPair, User } from "../../../api/contracts/user.js";
import { asGateway, onBehalfOf, type Services } from "../services.js";

export function authRoutes(services: Services, keys: AuthKeys): Route[] {
  return [
    route({
      method: "post",
      path: "/auth/register",
      auth: "public",
      body: Register,
      doc: {
        operationId: "register",
        summary: "Register a new user",
        description:
          "Public. Creates a user with system role `user`. Rate limited per IP and per e-mail. An address that already has an account is answered the same way (201, a user of the same shape) but nothing is created: register tells nobody whether an address is taken.",
        tag: "Auth",
        ok: { status: 201, description: "The new user.", schema: User },
        errors: [429, 503],
      },
      handle: async (ctx) =>
        json(201, presentUser(await services.auth.call("register", { ...ctx.body, client_ip: ctx.ip }, asGateway(ctx)))),
    }),
    route({
      method: "post",
      path: "/auth/login",
      auth: "public",
      body: Login,
      doc: {
        operationId: "login",
        summary: "Log in with e-mail and password",
        description: "Public. Rate limited per IP and per e-mail. 401 for wrong credentials.",
        tag: "Auth",
        ok: { status: 200, description: "A new token pair.", schema: TokenPair },
        errors: [401, 429, 503],
      },
      handle: async (ctx) =>
        json(200, presentTokens(await services.auth.call("login", { ...ctx.body, client_ip: ctx.ip }, asGateway(ctx)))),
    }),
    route({
      method: "post",
      path: "/auth/refresh",
      auth: "public",
      body: RefreshToken,
      doc: {
        operationId: "refreshTokens",
        summary: "Exchange a refresh token for a new pair",
        description: "Public. The presented refresh token is spent; presenting a spent one revokes its whole family and answers 401.",
        tag: "Auth",
        ok: { status: 200, description: "A new token pair.", schema: TokenPair },
        errors: [401, 503],
      },
      handle: async (ctx) => json(200, presentTokens(await services.auth.call("refresh", ctx.body, onBehalfOf(ctx)))),
    }),
    route({
      method: "post",
      path: "/auth/logout",
      auth: "user",
      body: RefreshToken,
      doc: {
        operationId: "logout",
        summary: "Log out",
        description: "Any authenticated user. Revokes the family of the given refresh token.",
        tag: "Auth",
        ok: { status: 204, description: "Logged out; the refresh-token family is revoked." },
      },
      handle: async (ctx) => {
        await services.auth.call("logout", ctx.body, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "get",
      path: "/.well-known/jwks.json",
      auth: "public",
      doc: {
        operationId: "getJwks",
        summary: "Public keys that verify access tokens",
        description: "Public.",
        tag: "Auth",
        ok: { status: 200, description: "The JSON Web Key Set.", schema: Jwks },
        errors: [503],
      },
      handle: async () => json(200, await keys.jwks(), { "cache-control": "public, max-age=300" }),
    }),
  ];
}
