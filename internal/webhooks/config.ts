import { z } from "zod";
import { commonEnv, env, grpcServerEnv, natsEnv, parseEnv, postgresEnv, type Env } from "../platform/config.js";

export const webhooksEnv = {
  ...commonEnv,
  ...grpcServerEnv,
  ...postgresEnv,
  ...natsEnv,
  GRPC_PORT: env.port(50055),
  ADMIN_PORT: env.port(9096),
  /** The auth service: its public key set verifies access tokens. */
  AUTH_ADDR: env.address("127.0.0.1:50051"),
  /** The workspace service: who may manage a workspace's webhooks. */
  WORKSPACE_ADDR: env.address("127.0.0.1:50052"),
  GRPC_TIMEOUT_MS: env.int(5_000, 100),
  /** Admit http and private, loopback and link-local addresses (dev and tests only). */
  WEBHOOK_ALLOW_PRIVATE: env.bool(false),
  /** Webhooks a workspace may have. */
  WEBHOOK_MAX_PER_WORKSPACE: env.int(10, 1, 1_000),
  /** A delivery's answer must come within this (2xx: delivered). */
  WEBHOOK_TIMEOUT_MS: env.int(10_000, 100, 60_000),
  /** How long failed deliveries are retried before the webhook is deactivated; decimals allowed. */
  WEBHOOK_RETRY_HOURS: z.coerce.number("must be a number").positive("must be positive").max(720).default(24),
  /** The first retry's delay; doubled for each further one, up to an hour. */
  WEBHOOK_RETRY_BASE_MS: env.int(10_000, 10, 3_600_000),
  /** How often each replica looks for deliveries that are due. */
  WEBHOOK_POLL_MS: env.int(1_000, 50, 60_000),
  /** Deliveries one replica sends at the same time. */
  WEBHOOK_CONCURRENCY: env.int(16, 1, 256),
};

export type WebhooksConfig = ReturnType<typeof loadWebhooksConfig>;

export function loadWebhooksConfig(source: Env) {
  return parseEnv(webhooksEnv, source);
}
