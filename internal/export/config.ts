import { commonEnv, env, grpcServerEnv, natsEnv, parseEnv, postgresEnv, type Env } from "../platform/config.js";

export const exportEnv = {
  ...commonEnv,
  ...grpcServerEnv,
  ...postgresEnv,
  ...natsEnv,
  GRPC_PORT: env.port(50054),
  ADMIN_PORT: env.port(9094),
  /** The auth service: its public key set verifies access tokens. */
  AUTH_ADDR: env.address("127.0.0.1:50051"),
  /** The workspace service: who is a member of which workspace. */
  WORKSPACE_ADDR: env.address("127.0.0.1:50052"),
  /** The task service: the rows of an export come from its internal streams. */
  TASK_ADDR: env.address("127.0.0.1:50053"),
  /** Deadline of unary calls to other services. */
  GRPC_TIMEOUT_MS: env.int(5_000, 100),
  /** Jobs one replica runs at the same time. */
  EXPORT_CONCURRENCY: env.int(2, 1, 64),
  /**
   * JetStream ack wait of a job message. A running job heartbeats (in Postgres and
   * with msg.working()) every third of it; a claim whose heartbeat is older than
   * this is stale and another worker may take the job over.
   */
  EXPORT_ACK_WAIT_MS: env.int(30_000, 1_000),
  /** Attempts (claims) before a job that keeps failing ends `failed`. */
  EXPORT_MAX_ATTEMPTS: env.int(3, 1, 100),
  /** Size of the chunks a file is stored in. */
  EXPORT_CHUNK_BYTES: env.int(262_144, 1_024, 4_000_000),
  /** How long a job and its file are kept. */
  EXPORT_RETENTION_HOURS: env.int(168, 1),
  /** Pending and running export jobs a workspace may have at once; creating another is 429. */
  EXPORT_MAX_ACTIVE_PER_WORKSPACE: env.int(5, 1),
  /** How often expired jobs and files are deleted. */
  EXPORT_CLEANUP_INTERVAL_MS: env.int(3_600_000, 1_000),
  /** Longest a single attempt may stream rows (the deadline of the task stream). */
  EXPORT_JOB_TIMEOUT_MS: env.int(3_600_000, 1_000),
};

export type ExportConfig = ReturnType<typeof loadExportConfig>;

export function loadExportConfig(source: Env) {
  return parseEnv(exportEnv, source);
}
