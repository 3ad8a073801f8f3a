import { json, noContent, route, type Route } from "../router.js";
import { presentPage, presentUser } from "../presenters.js";
import { createUserBody, pageQuery, updateUserBody } from "../schemas.js";
import { onBehalfOf, type Services } from "../services.js";

export function userRoutes(services: Services): Route[] {
  return [
    route({
      method: "post",
      path: "/users",
      auth: "user",
      body: createUserBody,
      handle: async (ctx) => json(201, presentUser(await services.auth.call("createUser", ctx.body, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/users",
      auth: "user",
      query: pageQuery,
      handle: async (ctx) => {
        const list = await services.auth.call(
          "listUsers",
          { limit: ctx.query.limit ?? 0, cursor: ctx.query.cursor ?? "" },
          onBehalfOf(ctx),
        );
        return json(200, presentPage(list, presentUser));
      },
    }),
    route({
      method: "get",
      path: "/users/{user_id}",
      auth: "user",
      handle: async (ctx) =>
        json(200, presentUser(await services.auth.call("getUser", { user_id: ctx.params.user_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/users/{user_id}",
      auth: "user",
      body: updateUserBody,
      handle: async (ctx) =>
        json(
          200,
          presentUser(await services.auth.call("updateUser", { ...ctx.body, user_id: ctx.params.user_id! }, onBehalfOf(ctx))),
        ),
    }),
    route({
      method: "delete",
      path: "/users/{user_id}",
      auth: "user",
      handle: async (ctx) => {
        await services.auth.call("deleteUser", { user_id: ctx.params.user_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
  ];
}
