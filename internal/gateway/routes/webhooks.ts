import { pageQuery } from "../../../api/contracts/fields.js";
import { CreateWebhook, Delivery, DeliveryList, UpdateWebhook, Webhook, WebhookCreated, WebhookList } from "../../../api/contracts/webhook.js";
import { presenter } from "../../../api/contracts/shape.js";
import { json, noContent, route, type Route } from "../router.js";
import { presentPage } from "../presenters.js";
import { onBehalfOf, type Services } from "../services.js";

const presentWebhook = presenter(Webhook);
const presentCreated = presenter(WebhookCreated);
const presentDelivery = presenter(Delivery);
const who = "Who: owner, admin (of the webhook's workspace).";

/** Webhooks (API.md "Webhooks"): the webhooks service keeps them and sends the deliveries. */
export function webhookRoutes(services: Services): Route[] {
  const webhooks = services.webhooks;
  return [
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/webhooks",
      auth: "user",
      body: CreateWebhook,
      doc: {
        operationId: "createWebhook",
        summary: "Register a webhook",
        description: `${who} The answer carries \`secret\`, this once: it signs every delivery (\`Taskboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>\`). The URL must be https and resolve to public addresses only (422), unless WEBHOOK_ALLOW_PRIVATE is set; at most WEBHOOK_MAX_PER_WORKSPACE (10) webhooks (422).`,
        tag: "Webhooks",
        ok: { status: 201, description: "The webhook, with its secret.", schema: WebhookCreated },
        errors: [422],
      },
      handle: async (ctx) =>
        json(201, presentCreated(await webhooks.call("createWebhook", { ...ctx.body, workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/webhooks",
      auth: "user",
      doc: { operationId: "listWebhooks", summary: "List a workspace's webhooks", description: who, tag: "Webhooks", ok: { status: 200, description: "The webhooks.", schema: WebhookList } },
      handle: async (ctx) => {
        const { items } = await webhooks.call("listWebhooks", { workspace_id: ctx.params.workspace_id! }, onBehalfOf(ctx));
        return json(200, { items: items.map(presentWebhook) });
      },
    }),
    route({
      method: "get",
      path: "/webhooks/{webhook_id}",
      auth: "user",
      doc: { operationId: "getWebhook", summary: "Get a webhook", description: who, tag: "Webhooks", ok: { status: 200, description: "The webhook.", schema: Webhook } },
      handle: async (ctx) => json(200, presentWebhook(await webhooks.call("getWebhook", { webhook_id: ctx.params.webhook_id! }, onBehalfOf(ctx)))),
    }),
    route({
      method: "put",
      path: "/webhooks/{webhook_id}",
      auth: "user",
      body: UpdateWebhook,
      doc: {
        operationId: "updateWebhook",
        summary: "Change a webhook",
        description: `${who} \`active: true\` switches a deactivated webhook on again; its pending deliveries then go out.`,
        tag: "Webhooks",
        ok: { status: 200, description: "The webhook.", schema: Webhook },
        errors: [422],
      },
      handle: async (ctx) => {
        const request = { webhook_id: ctx.params.webhook_id!, url: ctx.body.url, events: ctx.body.events ?? [], set_events: ctx.body.events !== undefined, active: ctx.body.active };
        return json(200, presentWebhook(await webhooks.call("updateWebhook", request, onBehalfOf(ctx))));
      },
    }),
    route({
      method: "delete",
      path: "/webhooks/{webhook_id}",
      auth: "user",
      doc: { operationId: "deleteWebhook", summary: "Delete a webhook (and its delivery log)", description: who, tag: "Webhooks", ok: { status: 204, description: "Deleted." } },
      handle: async (ctx) => {
        await webhooks.call("deleteWebhook", { webhook_id: ctx.params.webhook_id! }, onBehalfOf(ctx));
        return noContent();
      },
    }),
    route({
      method: "get",
      path: "/webhooks/{webhook_id}/deliveries",
      auth: "user",
      query: pageQuery,
      doc: { operationId: "listDeliveries", summary: "A webhook's delivery log", description: `${who} Latest first.`, tag: "Webhooks", ok: { status: 200, description: "A page of deliveries.", schema: DeliveryList } },
      handle: async (ctx) => {
        const page = { limit: ctx.query.limit ?? 0, cursor: ctx.query.cursor ?? "" };
        return json(200, presentPage(await webhooks.call("listDeliveries", { webhook_id: ctx.params.webhook_id!, page }, onBehalfOf(ctx)), presentDelivery));
      },
    }),
    route({
      method: "post",
      path: "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
      auth: "user",
      doc: {
        operationId: "redeliver",
        summary: "Send a delivery again",
        description: `${who} Queues it at once with a fresh retry window, under the same \`Taskboard-Delivery\` id; 409 when the webhook is not active.`,
        tag: "Webhooks",
        ok: { status: 202, description: "The delivery, queued.", schema: Delivery },
        errors: [409],
      },
      handle: async (ctx) =>
        json(202, presentDelivery(await webhooks.call("redeliver", { webhook_id: ctx.params.webhook_id!, delivery_id: ctx.params.delivery_id! }, onBehalfOf(ctx)))),
    }),
  ];
}
