import type { AuthKeys } from "../../platform/auth-keys.js";
import { json, noContent, route, type Route } from "../router.js";
import { presentTokens, presentUser } from "../presenters.js";
import { loginBody, refreshTokenBody, registerBody } from "../schemas.js";
import { onBehalfOf, type Services } from "../services.js";

export function authRoutes(services: Services, keys: AuthKeys): Route[] {
  return [
    route({
      method: "post",
      path: "/auth/register",
      auth: "public",
      body: registerBody,
      handle: async (ctx) =>
        json(201, presentUser(await services.auth.call("register", { ...ctx.body, client_ip: ctx.ip }, onBehalfOf(ctx)))),
    }),
    route({
      method: "post",
      path: "/auth/login",
      auth: "public",
      body: loginBody,
      handle: async (ctx) =>
        json(200, presentTokens(await services.auth.call("login", { ...ctx.body, client_ip: ctx.ip }, onBehalfOf(ctx)))),
    }),
    route({
      method: "post",
      path: "/auth/refresh",
      auth: "public",
      body: refreshTokenBody,
      handle: async (ctx) => json(200, presentTokens(await services.auth.call("refresh", ctx.body, onBehalfOf(ctx)))),
    }),
    route({
      method: "post",
      path: "/auth/logout",
      auth: "user",
      body: refreshTokenBody,
      handle: async (ctx) => {
        await services.auth.call("logout", ctx.body, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "get",
      path: "/.well-known/jwks.json",
      auth: "public",
      handle: async () => json(200, await keys.jwks(), { "cache-control": "public, max-age=300" }),
    }),
  ];
}
