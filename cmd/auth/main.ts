import { AuthServiceService } from "../../api/gen/taskboard/auth/v1/auth.js";
import { PasswordResets, UnsubscribeTokens } from "../../internal/auth/account-tokens.js";
import { loadAuthConfig } from "../../internal/auth/config.js";
import { RefreshTokenFamilies } from "../../internal/auth/refresh-tokens.js";
import { authHandlers } from "../../internal/auth/server.js";
import { AuthService } from "../../internal/auth/service.js";
import { SigningKey } from "../../internal/auth/signing-key.js";
import { UserStore } from "../../internal/auth/store.js";
import { runService } from "../../internal/platform/bootstrap.js";
import { RateLimiter } from "../../internal/platform/rate-limit.js";

runService("auth", loadAuthConfig, async (platform, config) => {
  const key = await SigningKey.load(config.JWT_PRIVATE_KEY, config.NODE_ENV !== "production");
  if (!config.JWT_PRIVATE_KEY) platform.log.warn("JWT_PRIVATE_KEY unset: signing with a key generated for this run");
  const sql = await platform.postgres("auth");
  const redis = await platform.redis();
  const service = new AuthService(
    new UserStore(sql),
    await platform.outbox(sql, "auth"),
    key,
    new RefreshTokenFamilies(redis, config.REFRESH_TOKEN_TTL_SECONDS),
    new RateLimiter(redis),
    {
      accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
      rateLimitWindowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
      rateLimitPerIp: config.RATE_LIMIT_PER_IP,
      rateLimitPerEmail: config.RATE_LIMIT_PER_EMAIL,
      emailChangesPerHour: config.RATE_LIMIT_EMAIL_CHANGES_PER_HOUR,
    },
    {
      resets: new PasswordResets(redis, config.PASSWORD_RESET_TTL_SECONDS),
      unsubscribe: new UnsubscribeTokens(key.derive("unsubscribe v1")),
    },
    platform.log,
  );
  if (config.BOOTSTRAP_ADMIN_EMAIL && config.BOOTSTRAP_ADMIN_PASSWORD) {
    const admin = await service.bootstrapAdmin(config.BOOTSTRAP_ADMIN_EMAIL, config.BOOTSTRAP_ADMIN_PASSWORD);
    platform.log.info({ user_id: admin.id }, "bootstrap admin ready");
  }

  platform.tokens(async () => key.jwks);
  platform.grpc().add(AuthServiceService, authHandlers(service));
  return platform.serve({ grpcPort: config.GRPC_PORT });
});
