import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { WebhookServiceService } from "../../api/gen/taskboard/webhooks/v1/webhooks.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { runService } from "../../internal/platform/bootstrap.js";
import { workspaceDeletions } from "../../internal/platform/durable-consumer.js";
import { Tenancy } from "../../internal/platform/tenancy.js";
import { loadWebhooksConfig } from "../../internal/webhooks/config.js";
import { Dispatcher } from "../../internal/webhooks/dispatcher.js";
import { webhookHandlers } from "../../internal/webhooks/server.js";
import { WebhookService } from "../../internal/webhooks/service.js";
import { WebhookStore } from "../../internal/webhooks/store.js";

// Webhooks have a process of their own: registrations need a gRPC API and a schema, and
// sending to URLs outside the cluster is contained in one pod (the only one whose network
// policy lets it reach the internet), where a hanging receiver slows nothing else.
runService("webhooks", loadWebhooksConfig, async (platform, config) => {
  if (config.WEBHOOK_ALLOW_PRIVATE) platform.log.warn("WEBHOOK_ALLOW_PRIVATE is set: webhooks may reach private addresses (dev and tests only)");
  const sql = await platform.postgres("webhooks");
  const { subjects } = await platform.nats();
  const auth = platform.client(AuthServiceClient, config.AUTH_ADDR);
  const memberships = await platform.memberships(platform.client(WorkspaceServiceClient, config.WORKSPACE_ADDR));
  const store = new WebhookStore(sql);
  const outbox = await platform.outbox(sql, "webhooks");
  const retryWindowMs = config.WEBHOOK_RETRY_HOURS * 3_600_000;
  const service = new WebhookService(store, outbox, new Tenancy(memberships), {
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    maxPerWorkspace: config.WEBHOOK_MAX_PER_WORKSPACE,
    retryWindowMs,
  });
  const dispatcher = new Dispatcher(
    store,
    outbox,
    {
      pollMs: config.WEBHOOK_POLL_MS,
      concurrency: config.WEBHOOK_CONCURRENCY,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    },
    platform.log,
    platform.registry,
  );
  // Every event of the stream: one delivery record per matching webhook, then the dispatcher sends.
  await platform.consume({
    durable: "webhooks",
    filterSubject: `${subjects.root}.>`,
    startAt: "new",
    // Deliveries are independent of each other: several events are recorded at once.
    concurrency: 8,
    handle: async (event, delivery) => {
      if ((await service.record(event, delivery.seq)) > 0) dispatcher.wake();
    },
  });
  await platform.consume(workspaceDeletions(subjects, "webhooks-workspace-deleted", async (id) => ({ webhooks: await store.deleteWorkspace(id) }), platform.log));
  dispatcher.start();
  platform.onStop("consumers", "webhook dispatch", () => dispatcher.close());

  platform.tokens(auth);
  platform.grpc().add(WebhookServiceService, webhookHandlers(service));
  return platform.serve({ grpcPort: config.GRPC_PORT });
});
