import type { Route } from "../../internal/gateway/router.js";
import { authRoutes } from "../../internal/gateway/routes/auth.js";
import { systemRoutes } from "../../internal/gateway/routes/system.js";
import { userRoutes } from "../../internal/gateway/routes/users.js";
import { workspaceRoutes } from "../../internal/gateway/routes/workspaces.js";
import { taskRoutes } from "../../internal/gateway/routes/tasks.js";
import { commentRoutes } from "../../internal/gateway/routes/comments.js";
import { exportRoutes } from "../../internal/gateway/routes/exports.js";
import { realtimeRoutes } from "../../internal/gateway/routes/realtime.js";

/** The gateway's route table, built with inert dependencies: only method, path and body are read. */
export function gatewayRouteTable(): Route[] {
  const none = {} as never;
  return [...systemRoutes(none, none), ...authRoutes(none, none), ...userRoutes(none), ...workspaceRoutes(none), ...taskRoutes(none), ...commentRoutes(none), ...exportRoutes(none), ...realtimeRoutes(none)];
}
