import { WebhookServiceService } from "../../api/gen/taskboard/webhooks/v1/webhooks.js";
import type { Handlers } from "../platform/grpc-server.js";
import type { WebhookService } from "./service.js";

/** gRPC handlers of taskboard.webhooks.v1.WebhookService: every method for users (owners and admins, checked by the service). */
export function webhookHandlers(service: WebhookService): Handlers<typeof WebhookServiceService> {
  return {
    createWebhook: { access: "user", handle: (req, ctx) => service.create(ctx.principal, req) },
    listWebhooks: { access: "user", handle: (req, ctx) => service.list(ctx.principal, req) },
    getWebhook: { access: "user", handle: (req, ctx) => service.get(ctx.principal, req) },
    updateWebhook: { access: "user", handle: (req, ctx) => service.update(ctx.principal, req) },
    deleteWebhook: {
      access: "user",
      handle: async (req, ctx) => {
        await service.delete(ctx.principal, req);
        return {};
      },
    },
    listDeliveries: { access: "user", handle: (req, ctx) => service.deliveries(ctx.principal, req) },
    redeliver: { access: "user", handle: (req, ctx) => service.redeliver(ctx.principal, req) },
  };
}
