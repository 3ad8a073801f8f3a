import { z } from "zod";
import { commonEnv, env, grpcServerEnv, natsEnv, parseEnv, postgresEnv, type Env } from "../platform/config.js";

export const taskEnv = {
  ...commonEnv,
  ...grpcServerEnv,
  ...postgresEnv,
  ...natsEnv,
  GRPC_PORT: env.port(50053),
  ADMIN_PORT: env.port(9093),
  /** The auth service: its public key set verifies access tokens. */
  AUTH_ADDR: env.address("127.0.0.1:50051"),
  /** The workspace service: who is a member of which workspace. */
  WORKSPACE_ADDR: env.address("127.0.0.1:50052"),
  /** How long before a task's due date its assignee is reminded (task.due_soon); decimals allowed. */
  REMINDER_LEAD_MINUTES: z.coerce.number("must be a number").min(0).max(525_600).default(1_440),
  /** How often each replica looks for reminders whose time has come. */
  REMINDER_POLL_MS: env.int(1_000, 100, 60_000),
  /** Deadline of calls to other services. */
  GRPC_TIMEOUT_MS: env.int(5_000, 100),
};

export type TaskConfig = ReturnType<typeof loadTaskConfig>;

export function loadTaskConfig(source: Env) {
  return parseEnv(taskEnv, source);
}
