import { commonEnv, env, grpcServerEnv, natsEnv, parseEnv, postgresEnv, type Env } from "../platform/config.js";

export const workspaceEnv = {
  ...commonEnv,
  ...grpcServerEnv,
  ...postgresEnv,
  ...natsEnv,
  GRPC_PORT: env.port(50052),
  ADMIN_PORT: env.port(9092),
  AUTH_ADDR: env.address("127.0.0.1:50051"),
  /** Deadline of calls to other services. */
  GRPC_TIMEOUT_MS: env.int(5_000, 100),
};

export type WorkspaceConfig = ReturnType<typeof loadWorkspaceConfig>;

export function loadWorkspaceConfig(source: Env) {
  return parseEnv(workspaceEnv, source);
}
