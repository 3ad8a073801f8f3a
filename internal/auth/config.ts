import { commonEnv, env, grpcServerEnv, natsEnv, parseEnv, postgresEnv, redisEnv, type Env } from "../platform/config.js";

export const authEnv = {
  ...commonEnv,
  ...grpcServerEnv,
  ...postgresEnv,
  ...redisEnv,
  ...natsEnv,
  NODE_ENV: env.string("development"),
  GRPC_PORT: env.port(50051),
  ADMIN_PORT: env.port(9091),
  /** PKCS#8 PEM of the Ed25519 signing key; generated at start when unset outside production. */
  JWT_PRIVATE_KEY: env.optionalString(),
  ACCESS_TOKEN_TTL_SECONDS: env.int(900, 10, 86_400),
  REFRESH_TOKEN_TTL_SECONDS: env.int(604_800, 60),
  /** How long a password-reset link works (single use). */
  PASSWORD_RESET_TTL_SECONDS: env.int(1_800, 60, 86_400),
  BOOTSTRAP_ADMIN_EMAIL: env.optionalString(),
  BOOTSTRAP_ADMIN_PASSWORD: env.optionalString(),
  RATE_LIMIT_WINDOW_SECONDS: env.int(60, 1),
  /** Login or register attempts per client IP per window (each counted separately). */
  RATE_LIMIT_PER_IP: env.int(30, 1),
  /** Login or register attempts per e-mail address per window. */
  RATE_LIMIT_PER_EMAIL: env.int(10, 1),
  /**
   * Changes of a user's own e-mail address per hour. A change to an address that has an
   * account is refused (409), which tells that it has one: few attempts keep that from
   * being a way to test lists of addresses.
   */
  RATE_LIMIT_EMAIL_CHANGES_PER_HOUR: env.int(5, 1),
};

export type AuthConfig = ReturnType<typeof loadAuthConfig>;

export function loadAuthConfig(source: Env) {
  return parseEnv(authEnv, source);
}
