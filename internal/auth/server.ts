import { AuthServiceService } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { CallContext, Handlers } from "../platform/grpc-server.js";
import type { AuthService } from "./service.js";

/** gRPC handlers of taskboard.auth.v1.AuthService. */
export function authHandlers(service: AuthService): Handlers<typeof AuthServiceService> {
  return {
    register: { access: "public", handle: (req, ctx) => service.register({ ...req, client_ip: clientIp(req.client_ip, ctx) }) },
    login: { access: "public", handle: (req, ctx) => service.login({ ...req, client_ip: clientIp(req.client_ip, ctx) }) },
    refresh: { access: "public", handle: (req) => service.refresh(req.refresh_token) },
    logout: {
      access: "user",
      handle: async (req, ctx) => {
        await service.logout(ctx.principal, req.refresh_token);
        return {};
      },
    },
    getJwks: { access: "public", handle: async () => ({ json: service.jwks() }) },
    requestPasswordReset: {
      access: "public",
      handle: async (req, ctx) => {
        await service.requestPasswordReset({ email: req.email, client_ip: clientIp(req.client_ip, ctx) });
        return {};
      },
    },
    confirmPasswordReset: {
      access: "public",
      handle: async (req, ctx) => {
        await service.confirmPasswordReset({ ...req, client_ip: clientIp(req.client_ip, ctx) });
        return {};
      },
    },
    unsubscribe: { access: "public", handle: (req) => service.unsubscribe(req.token) },
    createUser: { access: "user", handle: (req, ctx) => service.createUser(ctx.principal, req) },
    listUsers: { access: "user", handle: (req, ctx) => service.listUsers(ctx.principal, req) },
    getUser: { access: "user", handle: (req, ctx) => service.getUser(ctx.principal, req.user_id) },
    updateUser: { access: "user", handle: (req, ctx) => service.updateUser(ctx.principal, req) },
    deleteUser: {
      access: "user",
      handle: async (req, ctx) => {
        await service.deleteUser(ctx.principal, req.user_id);
        return {};
      },
    },
    // Profiles by id or e-mail, for the workspace service (members) and notify (recipients);
    // never users, who could learn from it whether an address has an account.
    lookupUsers: {
      access: { callers: ["workspace", "notify"] },
      handle: async (req) => ({ items: await service.lookupUsers(req.user_ids, req.emails), next_cursor: "" }),
    },
    // The secrets of account mails, which notify sends.
    issuePasswordReset: { access: { callers: ["notify"] }, handle: (req) => service.issuePasswordReset(req.user_id) },
    unsubscribeTokens: { access: { callers: ["notify"] }, handle: async (req) => ({ items: service.unsubscribeTokens(req.user_ids) }) },
  };
}

/**
 * The address the per-IP limits count: the one the gateway forwards, but only
 * from the gateway, known by its own internal credential; anyone else who reaches the
 * gRPC port is counted by its own address, whatever `client_ip` it claims.
 */
function clientIp(claimed: string, ctx: CallContext): string {
  return ctx.principal.kind === "internal" && ctx.principal.caller === "gateway" && claimed ? claimed : ctx.peerAddress;
}
