import { commonEnv, ConfigError, parseEnv, postgresEnv } from "../../internal/platform/config.js";
import { createLogger } from "../../internal/platform/logger.js";
import { createPostgres, pingPostgres } from "../../internal/platform/postgres.js";
import { migrateAll } from "../../internal/schemas.js";

// Applies every schema's migrations and exits: the Helm pre-install/pre-upgrade hook.
// Services still migrate at start; the advisory locks make both safe together.
let config;
try {
  config = parseEnv({ LOG_LEVEL: commonEnv.LOG_LEVEL, ...postgresEnv }, process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`migrate: ${error.message}\n`);
  process.exit(1);
}
const log = createLogger("migrate", config.LOG_LEVEL);
const sql = createPostgres(config.DATABASE_URL, { poolSize: 2, applicationName: "migrate", log });
try {
  await pingPostgres(sql);
  await migrateAll(sql, log);
  log.info("migrations complete");
} catch (error) {
  log.fatal({ err: error }, "migrations failed");
  process.exitCode = 1;
} finally {
  await sql.end({ timeout: 2 });
}
