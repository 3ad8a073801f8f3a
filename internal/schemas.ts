import type { Logger } from "./platform/logger.js";
import { migrateSchema, readMigrations } from "./platform/migrate.js";
import { outboxMigrations } from "./platform/outbox.js";
import type { Sql } from "./platform/postgres.js";

/** Every service's Postgres schema and its migrations (one schema per service). */
export const serviceSchemas = {
  auth: new URL("./auth/migrations/", import.meta.url),
  workspace: new URL("./workspace/migrations/", import.meta.url),
  task: new URL("./task/migrations/", import.meta.url),
  export: new URL("./export/migrations/", import.meta.url),
  notify: new URL("./notify/migrations/", import.meta.url),
  webhooks: new URL("./webhooks/migrations/", import.meta.url),
} as const;

export type ServiceSchema = keyof typeof serviceSchemas;

/** Applies a service's migrations (its outbox tables first) under the schema's advisory lock. */
export async function migrateService(sql: Sql, schema: ServiceSchema, log: Logger): Promise<string[]> {
  const migrations = [...outboxMigrations, ...(await readMigrations(serviceSchemas[schema]))];
  return migrateSchema(sql, schema, migrations, log);
}

/** Applies every service's migrations (the Helm hook Job, test templates). */
export async function migrateAll(sql: Sql, log: Logger): Promise<void> {
  for (const schema of Object.keys(serviceSchemas) as ServiceSchema[]) await migrateService(sql, schema, log);
}
