import type { AuthKeys } from "../../platform/auth-keys.js";
import type { Health } from "../../platform/health.js";
import type { Route } from "../router.js";
import type { Services } from "../services.js";
import type { StaticFiles } from "../static-files.js";
import { authRoutes } from "./auth.js";
import { commentRoutes } from "./comments.js";
import { exportRoutes } from "./exports.js";
import { groupRoutes } from "./groups.js";
import { webhookRoutes } from "./webhooks.js";
import { realtimeRoutes, type RealtimeRouteDeps } from "./realtime.js";
import { systemRoutes } from "./system.js";
import { taskRoutes } from "./tasks.js";
import { userRoutes } from "./users.js";
import { workspaceRoutes } from "./workspaces.js";

export interface RouteDeps extends RealtimeRouteDeps {
  health: Health;
  files: StaticFiles;
  keys: AuthKeys;
}

/** The gateway's whole REST route table: what it serves, and what the OpenAPI document describes. */
export function gatewayRoutes(deps: RouteDeps): Route[] {
  const { services } = deps;
  return [
    ...systemRoutes(deps.health, deps.files),
    ...authRoutes(services, deps.keys),
    ...userRoutes(services),
    ...workspaceRoutes(services),
    ...taskRoutes(services),
    ...commentRoutes(services),
    ...exportRoutes(services),
    ...realtimeRoutes(deps),
    ...groupRoutes(deps),
    ...webhookRoutes(services),
  ];
}

/** The route table with inert dependencies: for reading method, path, schemas and docs, never for serving. */
export function routeTable(): Route[] {
  // Only `services` is read while building the table (its clients are looked up, not called).
  return gatewayRoutes({ services: {} } as unknown as RouteDeps);
}
