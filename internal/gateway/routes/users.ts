import { json, noContent, route, type Route } from "../router.js";
import { presentPage, presentUser } from "../presenters.js";
import { pageQuery } from "../../../api/contracts/fields.js";
import { CreateUser, UpdateUser, User, UserList } from "../../../api/contracts/user.js";
import { onBehalfOf, type Services } from "../services.js";

export function userRoutes(services: Services): Route[] {
  return [
    route({
      method: "post",
      path: "/users",
      auth: "user",
      body: CreateUser,
      doc: {
        operationId: "createUser",
        summary: "Create a user",
        description: "Who: admin (system admin). May set `role`.",
        tag: "Users",
        ok: { status: 201, description: "The new user.", schema: User },
        errors: [409],
      },
      handle: async (ctx) => json(201, presentUser(await services.auth.call("createUser", ctx.body, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/users",
      auth: "user",
      query: pageQuery,
      doc: {
        operationId: "listUsers",
        summary: "List users",
        description: "Who: admin (system admin).",
        tag: "Users",
        ok: { status: 200, description: "A page of users.", schema: UserList },
      },
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
      path: "/users/me",
      auth: "user",
      doc: {
        operationId: "getMe",
        summary: "Get the calling user",
        description: "Who: any signed-in user. The user the access token belongs to (404 once the account is deleted).",
        tag: "Users",
        ok: { status: 200, description: "The caller's user.", schema: User },
        errors: [404],
      },
      handle: async (ctx) => json(200, presentUser(await services.auth.call("getUser", { user_id: ctx.caller.userId }, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/users/{user_id}",
      auth: "user",
      doc: {
        operationId: "getUser",
        summary: "Get a user",
        description: "Who: self, admin (system admin).",
        tag: "Users",
        ok: { status: 200, description: "The user.", schema: User },
      },
      handle: async (ctx) =>
        json(200, presentUser(await services.auth.call("getUser", { user_id: ctx.params.user_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/users/{user_id}",
      auth: "user",
      body: UpdateUser,
      doc: {
        operationId: "updateUser",
        summary: "Update a user",
        description: "Who: self, admin (system admin). Partial update; `role` only by an admin (403 otherwise). 409 `email_taken` when the new e-mail belongs to another user.",
        tag: "Users",
        ok: { status: 200, description: "The updated user.", schema: User },
        errors: [409],
      },
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
      doc: {
        operationId: "deleteUser",
        summary: "Delete a user",
        description: "Who: self, admin (system admin).",
        tag: "Users",
        ok: { status: 204, description: "Deleted." },
      },
      handle: async (ctx) => {
        await services.auth.call("deleteUser", { user_id: ctx.params.user_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
  ];
}
