import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { provideServers } from "../../internal/devenv/servers.js";
import { createLogger } from "../../internal/platform/logger.js";
import { migrateAll } from "../../internal/schemas.js";
import { withDatabase } from "./databases.js";

declare module "vitest" {
  export interface ProvidedContext {
    servers: { natsUrl: string; redisUrl: string; databaseUrl: string; sesEndpoint: string; templateDatabase: string };
  }
}

/**
 * Finds (or starts) NATS, Postgres and Redis once per run, in the order of
 * ARCHITECTURE.md, starts the run's SES stand-in, and builds a migrated template database that each test
 * file clones for itself.
 */
export default async function setup(project: TestProject) {
  const log = (line: string) => console.log(`[servers] ${line}`);
  const servers = await provideServers(process.env, ["nats", "postgres", "redis"], log);
  // The SES stand-in is this run's own (unless SES_ENDPOINT names one): one found on its
  // default port was started by another run, and stops when that run ends, mid-way through this one.
  const ses = await provideServers(process.env, ["ses"], log, { skipDefaultPorts: true }).catch(async (error: unknown) => {
    await servers.stop();
    throw error;
  });
  const templateDatabase = `tbtpl_${process.pid}`;
  const admin = postgres(withDatabase(servers.databaseUrl, "postgres"), { max: 1, onnotice: () => undefined });
  await admin.unsafe(`drop database if exists ${templateDatabase} with (force)`);
  await admin.unsafe(`create database ${templateDatabase}`);
  const template = postgres(withDatabase(servers.databaseUrl, templateDatabase), { max: 1, onnotice: () => undefined });
  await migrateAll(template, createLogger("test-setup", "warn"));
  await template.end();

  project.provide("servers", {
    natsUrl: servers.natsUrl,
    redisUrl: servers.redisUrl,
    databaseUrl: servers.databaseUrl,
    sesEndpoint: ses.sesEndpoint,
    templateDatabase,
  });

  return async () => {
    await admin.unsafe(`drop database if exists ${templateDatabase} with (force)`);
    await admin.end();
    await ses.stop();
    await servers.stop();
  };
}
