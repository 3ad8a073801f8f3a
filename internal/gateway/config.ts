import { z } from "zod";
import { commonEnv, env, natsEnv, parseEnv, redisEnv, type Env } from "../platform/config.js";

export const gatewayEnv = {
  ...commonEnv,
  ...natsEnv,
  ...redisEnv,
  GATEWAY_PORT: env.port(8080),
  ADMIN_PORT: env.port(9090),
  AUTH_ADDR: env.address("127.0.0.1:50051"),
  WORKSPACE_ADDR: env.address("127.0.0.1:50052"),
  TASK_ADDR: env.address("127.0.0.1:50053"),
  EXPORT_ADDR: env.address("127.0.0.1:50054"),
  WEBHOOKS_ADDR: env.address("127.0.0.1:50055"),
  /** Deadline of calls to services. */
  GRPC_TIMEOUT_MS: env.int(5_000, 100),
  /** Largest accepted request body. */
  MAX_BODY_BYTES: env.int(1_048_576, 1_024),
  /** Take the client address from X-Forwarded-For (only behind a trusted proxy). */
  TRUST_PROXY: env.bool(false),
  /** Origins (comma-separated `scheme://host[:port]`) allowed cross-origin access to the API; empty: none. */
  CORS_ORIGINS: z
    .string()
    .default("")
    .refine((v) => originsOf(v).every((o) => /^https?:\/\/[^/\s]+$/.test(o)), "must be a comma-separated list of origins like https://app.example.com"),
  /** Authenticated API requests a user may make a minute, across every replica (429 with Retry-After beyond). */
  RATE_LIMIT_API_PER_USER: env.int(1_200, 1),
  /** `custom.message` frames a user may send a minute over all their sockets. */
  RATE_LIMIT_WS_MESSAGES_PER_USER: env.int(600, 1),
  /** Log every request (otherwise only failures). */
  ACCESS_LOG: env.bool(false),
  /** Client frames larger than this get an error frame (four times larger closes the socket). */
  WS_MAX_FRAME_BYTES: env.int(65_536, 1_024),
  /** Bytes buffered for a client beyond which it is too slow and is closed with 1013. */
  WS_MAX_BACKPRESSURE_BYTES: env.int(1_048_576, 16_384),
  /** Idle seconds before a socket is closed; protocol pings keep live clients under it. */
  WS_IDLE_TIMEOUT_SECONDS: env.int(120, 8, 960),
  /** Client frames per second a socket may send, and the burst above it. */
  WS_CLIENT_RATE: env.int(20, 1),
  WS_CLIENT_BURST: env.int(40, 1),
  /** Recent events each room keeps in memory for clients that resume with `since` (by count and bytes). */
  WS_ROOM_HISTORY_EVENTS: env.int(5_000, 1),
  WS_ROOM_HISTORY_BYTES: env.int(8 * 1024 * 1024, 1_024),
  /** Idle heartbeat of a room's JetStream feed; three missed ones restart it. */
  WS_FEED_HEARTBEAT_MS: env.int(2_000, 100),
  /** Open real-time connections (WebSocket and SSE) a user may hold across every replica; 429 beyond. */
  WS_MAX_CONNECTIONS_PER_USER: env.int(20, 1),
  /** Seconds between `: ping` comments on an idle SSE stream. */
  SSE_HEARTBEAT_SECONDS: env.int(15, 1, 300),
  /** How long a real-time ticket stays valid unused. */
  REALTIME_TICKET_SECONDS: env.int(30, 5, 300),
  /** A crashed replica's presence entries (and connection slots) disappear after this long. */
  PRESENCE_TTL_SECONDS: env.int(30, 3),
  /** A user gone for less than this (a quick reconnect) does not leave. */
  PRESENCE_DEBOUNCE_MS: env.int(5_000, 0),
};

/** The origins of a CORS_ORIGINS value. */
export function originsOf(value: string): string[] {
  return value
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
}

export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;

export function loadGatewayConfig(source: Env) {
  return parseEnv(gatewayEnv, source);
}
