import { z } from "zod";
import { commonEnv, ConfigError, env, natsEnv, parseEnv, postgresEnv, type Env } from "../platform/config.js";

/** Test-only fault switches (never set in a deployment): see NotifyService. */
export const NOTIFY_FAULTS = ["exit-after-record", "exit-after-claim"] as const;
export type NotifyFault = (typeof NOTIFY_FAULTS)[number];

export const notifyEnv = {
  ...commonEnv,
  ...postgresEnv,
  ...natsEnv,
  ADMIN_PORT: env.port(9095),
  /** Users: e-mail addresses, names and the email_notifications preference. */
  AUTH_ADDR: env.address("127.0.0.1:50051"),
  /** Workspaces: who is a member at send time. */
  WORKSPACE_ADDR: env.address("127.0.0.1:50052"),
  /** Tasks and comments: a comment's task, its creator, assignee and earlier commenters. */
  TASK_ADDR: env.address("127.0.0.1:50053"),
  /** Deadline of calls to other services. */
  GRPC_TIMEOUT_MS: env.int(5_000, 100),
  /** Where the links in e-mails point (the gateway's public address). */
  APP_URL: env.url("http://localhost:8080", ["http:", "https:"]),
  /** SES v2 API endpoint: the local stand-in by default; https://email.<region>.amazonaws.com for AWS. */
  SES_ENDPOINT: env.url("http://127.0.0.1:8005", ["http:", "https:"]),
  SES_REGION: env.string("us-east-1"),
  /** The From header of every mail (the address must be a verified SES identity). */
  SES_FROM: env.string("Taskboard <no-reply@taskboard.local>"),
  /** Time limit of one SendEmail request. */
  SES_TIMEOUT_MS: env.int(10_000, 100),
  /**
   * With AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE, or
   * AWS_WEB_IDENTITY_TOKEN_FILE set, the SDK's default credential chain signs
   * the requests; with none of them, dummy credentials that only the stand-in accepts.
   */
  AWS_ACCESS_KEY_ID: env.optionalString(),
  AWS_PROFILE: env.optionalString(),
  AWS_WEB_IDENTITY_TOKEN_FILE: env.optionalString(),
  /** SendEmail attempts within one delivery of an event, for throttling (429) and 5xx. */
  NOTIFY_SEND_ATTEMPTS: env.int(3, 1, 10),
  /** First pause between those attempts; doubled each time, with jitter. */
  NOTIFY_RETRY_BASE_MS: env.int(250, 1),
  /** JetStream deliveries of an event before its remaining mails are recorded as failed. */
  NOTIFY_MAX_DELIVER: env.int(8, 1, 100),
  /** Redelivery delay after a failed delivery of an event (JetStream nak), by delivery. */
  NOTIFY_REDELIVERY_MS: env.int(2_000, 10),
  /** An event not acknowledged within this time (a dead replica) is delivered again. */
  NOTIFY_ACK_WAIT_MS: env.int(30_000, 1_000),
  /** How long a claim on a mail holds; a claim older than this (its replica died) may be taken over. */
  NOTIFY_CLAIM_TTL_MS: env.int(60_000, 500),
  /** TEST ONLY: kill the process with SIGKILL at one point of a delivery, to prove the idempotency record. */
  NOTIFY_FAULT: z.enum(NOTIFY_FAULTS, `must be one of ${NOTIFY_FAULTS.join(", ")}`).optional(),
};

export type NotifyConfig = ReturnType<typeof loadNotifyConfig>;

export function loadNotifyConfig(source: Env) {
  const config = parseEnv(notifyEnv, source);
  // A claim must outlive any send its holder may still have in flight (see NotifyService).
  if (config.NOTIFY_CLAIM_TTL_MS < 2 * config.SES_TIMEOUT_MS) {
    throw new ConfigError(
      `config: NOTIFY_CLAIM_TTL_MS=${config.NOTIFY_CLAIM_TTL_MS} is invalid: must be at least twice SES_TIMEOUT_MS (${config.SES_TIMEOUT_MS})`,
    );
  }
  return {
    ...config,
    APP_URL: config.APP_URL.replace(/\/+$/, ""),
    /** Use the SDK's default credential chain (true) or the stand-in's dummy credentials. */
    awsCredentialsFromEnvironment: Boolean(config.AWS_ACCESS_KEY_ID || config.AWS_PROFILE || config.AWS_WEB_IDENTITY_TOKEN_FILE),
  };
}
