import { readdir, readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import type { Sql } from "./postgres.js";
import type { Logger } from "./logger.js";

export interface Migration {
  version: string;
  sql: string;
}

/** Reads `NNN_name.sql` files of a directory, in name order. */
export async function readMigrations(dir: URL): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".sql")).sort();
  return Promise.all(
    names.map(async (name) => ({ version: name.replace(/\.sql$/, ""), sql: await readFile(new URL(name, dir), "utf8") })),
  );
}

function lockKey(schema: string): bigint {
  return createHash("sha256").update(`taskboard:migrate:${schema}`).digest().readBigInt64BE(0);
}

/**
 * Applies the pending migrations of one schema, each in its own transaction,
 * under an advisory lock so concurrent starters (replicas, the Helm hook Job)
 * apply each migration exactly once. `search_path` is the schema, so files
 * name their tables without it.
 */
export async function migrateSchema(sql: Sql, schema: string, migrations: Migration[], log: Logger): Promise<string[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const conn = await sql.reserve();
  const key = lockKey(schema);
  const applied: string[] = [];
  try {
    await conn`select pg_advisory_lock(${key.toString()}::bigint)`;
    await conn.unsafe(`create schema if not exists ${schema}`);
    await conn.unsafe(
      `create table if not exists ${schema}.schema_migrations (version text primary key, applied_at timestamptz not null default now())`,
    );
    const done = new Set(
      (await conn.unsafe<{ version: string }[]>(`select version from ${schema}.schema_migrations`)).map((r) => r.version),
    );
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await conn.unsafe("begin");
      try {
        await conn.unsafe(`set local search_path to ${schema}`);
        await conn.unsafe(migration.sql);
        await conn.unsafe(`insert into ${schema}.schema_migrations (version) values ($1)`, [migration.version]);
        await conn.unsafe("commit");
      } catch (error) {
        await conn.unsafe("rollback");
        throw new Error(`migration ${schema}/${migration.version} failed`, { cause: error });
      }
      applied.push(migration.version);
      log.info({ schema, version: migration.version }, "migration applied");
    }
  } finally {
    await conn`select pg_advisory_unlock(${key.toString()}::bigint)`.catch(() => undefined);
    conn.release();
  }
  return applied;
}
