import type { AuthKeys } from "../../platform/auth-keys.js";
import { json, noContent, route, type Route } from "../router.js";
import { presentTokens, presentUser } from "../presenters.js";
import { Jwks } from "../../../api/contracts/system.js";
import {
  Login,
  PasswordResetAccepted,
  PasswordResetConfirmation,
  PasswordResetRequest,
  RefreshToken,
  Register,
  TokenPair,
  UnsubscribeQuery,
  Unsubscribed,
  User,
} from "../../../api/contracts/user.js";
import { escapeHtml } from "../../platform/html.js";
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
      method: "post",
      path: "/auth/password-reset",
      auth: "public",
      body: PasswordResetRequest,
      doc: {
        operationId: "requestPasswordReset",
        summary: "Ask for a password-reset mail",
        description: `Public. 202 with the same body whether or not the address has an account (no enumeration); a known address gets a mail with \`<APP_URL>/?reset=<token>\`, valid 30 minutes (PASSWORD_RESET_TTL_SECONDS), single use. Rate limited like login.`,
        tag: "Auth",
        ok: { status: 202, description: "Accepted, for every address alike.", schema: PasswordResetAccepted },
        errors: [429, 503],
      },
      handle: async (ctx) => {
        await services.auth.call("requestPasswordReset", { email: ctx.body.email, client_ip: ctx.ip }, asGateway(ctx));
        return json(202, { message: "If the address has an account, a reset link is on its way." });
      },
    }),
    route({
      method: "post",
      path: "/auth/password-reset/confirm",
      auth: "public",
      body: PasswordResetConfirmation,
      doc: {
        operationId: "confirmPasswordReset",
        summary: "Set a new password with a reset token",
        description:
          "Public. The password policy applies (a refused password does not spend the token). Ends every session of the user (all refresh-token families) and spends every other reset link. 400 `invalid_token` for a bad, expired or used token.",
        tag: "Auth",
        ok: { status: 204, description: "The password is changed." },
        errors: [429, 503],
      },
      handle: async (ctx) => {
        await services.auth.call("confirmPasswordReset", { ...ctx.body, client_ip: ctx.ip }, asGateway(ctx));
        return noContent();
      },
    }),
    route({
      method: "get",
      path: "/unsubscribe",
      auth: "public",
      query: UnsubscribeQuery,
      doc: {
        operationId: "getUnsubscribePage",
        summary: "Confirm unsubscribing from e-mail notifications",
        description: "Public. The page a mail's unsubscribe link opens: one button that POSTs to the same address. Nothing changes until it is pressed.",
        tag: "Auth",
        ok: { status: 200, description: "The confirmation page.", contentType: "text/html" },
      },
      handle: async (ctx) => page(unsubscribePage(ctx.query.token)),
    }),
    route({
      method: "post",
      path: "/unsubscribe",
      auth: "public",
      query: UnsubscribeQuery,
      headers: ["accept"],
      doc: {
        operationId: "unsubscribe",
        summary: "Turn e-mail notifications off (one-click unsubscribe, RFC 8058)",
        description:
          "Public, with the token of the link in every mail's `List-Unsubscribe` header; any body (mail providers send `List-Unsubscribe=One-Click`) is ignored. Turns the user's `email_notifications` off. Answers HTML to a browser's form (`Accept: text/html`), JSON otherwise. 400 `invalid_token` for a forged link.",
        tag: "Auth",
        ok: { status: 200, description: "E-mail notifications are off.", schema: Unsubscribed },
        errors: [503],
      },
      handle: async (ctx) => {
        await services.auth.call("unsubscribe", { token: ctx.query.token }, onBehalfOf(ctx));
        if (ctx.headers["accept"]?.includes("text/html")) return page(unsubscribedPage());
        return json(200, { email_notifications: false });
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

// The unsubscribe pages: no script at all, so their policy allows none.
const pageSecurity = { "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'" };
const page = (markup: string) => ({ status: 200, raw: markup, contentType: "text/html; charset=utf-8", headers: pageSecurity });

function shell(body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Taskboard e-mail notifications</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #1f2328; line-height: 1.5">
${body}
</body>
</html>
`;
}

function unsubscribePage(token: string): string {
  return shell(`<h1 style="font-size: 1.4rem">Stop e-mail notifications?</h1>
<p>Taskboard will stop mailing you about tasks, assignments and comments. You can turn them on again in your settings on the Taskboard page.</p>
<form method="post" action="/unsubscribe?token=${escapeHtml(encodeURIComponent(token))}">
  <button type="submit" data-testid="unsubscribe-confirm" style="font-size: 1rem; padding: 0.5rem 1rem">Unsubscribe</button>
</form>`);
}

function unsubscribedPage(): string {
  return shell(`<h1 style="font-size: 1.4rem" data-testid="unsubscribed">You are unsubscribed</h1>
<p>Taskboard will not mail you notifications any more. Turn them on again in your settings on the Taskboard page.</p>`);
}
