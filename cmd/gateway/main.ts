import { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import { ExportServiceClient } from "../../api/gen/taskboard/export/v1/export.js";
import { TaskServiceClient } from "../../api/gen/taskboard/task/v1/task.js";
import { WebhookServiceClient } from "../../api/gen/taskboard/webhooks/v1/webhooks.js";
import { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { loadGatewayConfig, originsOf } from "../../internal/gateway/config.js";
import { setUpRealtime } from "../../internal/gateway/realtime/setup.js";
import { Router } from "../../internal/gateway/router.js";
import { gatewayRoutes } from "../../internal/gateway/routes/index.js";
import { GatewayServer } from "../../internal/gateway/server.js";
import type { Services } from "../../internal/gateway/services.js";
import { StaticFiles } from "../../internal/gateway/static-files.js";
import { TaskBatches } from "../../internal/gateway/task-batches.js";
import { AuthKeys } from "../../internal/platform/auth-keys.js";
import { runService } from "../../internal/platform/bootstrap.js";

runService("gateway", loadGatewayConfig, async (platform, config) => {
  // The gateway is not ready while a service it calls is unreachable.
  const clients = {
    auth: platform.client(AuthServiceClient, config.AUTH_ADDR, { health: "auth" }),
    workspace: platform.client(WorkspaceServiceClient, config.WORKSPACE_ADDR, { health: "workspace" }),
    task: platform.client(TaskServiceClient, config.TASK_ADDR, { health: "task" }),
    export: platform.client(ExportServiceClient, config.EXPORT_ADDR, { health: "export" }),
    webhooks: platform.client(WebhookServiceClient, config.WEBHOOKS_ADDR, { health: "webhooks" }),
  };
  const memberships = await platform.memberships(clients.workspace);
  const services: Services = { ...clients, taskBatches: new TaskBatches(clients.task), memberships };
  const keys = new AuthKeys(services.auth);
  const verifier = platform.tokens(() => keys.jwks(true));

  const server = new GatewayServer(platform.log);
  // The listener closes first (no new connections), then the sockets, then the app (open requests finish between).
  platform.onStop("listeners", "http listener", () => server.stopListening());
  const realtime = await setUpRealtime(platform, config, server.app, memberships, clients.workspace, verifier);
  const { log, registry, health } = platform;
  const router = new Router({
    log,
    registry,
    verify: (token) => verifier.verify(token),
    maxBodyBytes: config.MAX_BODY_BYTES,
    trustProxy: config.TRUST_PROXY,
    accessLog: config.ACCESS_LOG,
    corsOrigins: new Set(originsOf(config.CORS_ORIGINS)),
    limitUser: (userId) => realtime.limiter.hit([{ key: `api:user:${userId}`, max: config.RATE_LIMIT_API_PER_USER, windowMs: 60_000 }]),
  });
  const files = new StaticFiles();
  router.add(...gatewayRoutes({ ...realtime, services, health, files, keys, streamName: config.NATS_STREAM }));
  server.mount(router, files, realtime.sockets);
  platform.onStop("listeners", "http", () => server.close());
  const httpPort = await server.listen(config.GATEWAY_PORT);
  return platform.serve({ extra: { http_port: httpPort, replica_id: realtime.replicaId } });
});
