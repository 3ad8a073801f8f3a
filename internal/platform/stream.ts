import type { JetStreamManager, StreamConfig } from "nats";
import { RetentionPolicy, StorageType, DiscardPolicy } from "nats";
import type { Subjects } from "./events.js";
import type { Logger } from "./logger.js";

export interface StreamOptions {
  name: string;
  maxAgeHours: number;
  replicas: number;
}

const NANOS_PER_SECOND = 1_000_000_000;

/** The one stream of every domain event (ARCHITECTURE.md "Data and infrastructure"). */
export function streamConfig(subjects: Subjects, options: StreamOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: options.name,
    subjects: subjects.stream,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: options.maxAgeHours * 3600 * NANOS_PER_SECOND,
    duplicate_window: 120 * NANOS_PER_SECOND,
    num_replicas: options.replicas,
    republish: subjects.republished,
    allow_direct: true,
  };
}

/** Creates the stream, or updates it to this configuration; safe to run concurrently. */
export async function ensureStream(jsm: JetStreamManager, subjects: Subjects, options: StreamOptions, log: Logger) {
  const config = streamConfig(subjects, options);
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.streams.info(config.name).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (!info) {
        await jsm.streams.add(config);
        log.info({ stream: config.name }, "stream created");
      } else if (differs(info.config, config)) {
        await jsm.streams.update(config.name, config);
        log.info({ stream: config.name }, "stream updated");
      }
      return;
    } catch (error) {
      // Another process created it between our info and add: look again.
      if (attempt < 3 && String((error as Error).message).includes("already in use")) continue;
      throw new Error(`cannot create or update stream ${config.name}`, { cause: error });
    }
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { code?: string; api_error?: { err_code?: number } };
  return e?.code === "404" || e?.api_error?.err_code === 10059;
}

function differs(current: Partial<StreamConfig>, wanted: Partial<StreamConfig>): boolean {
  return (Object.keys(wanted) as (keyof StreamConfig)[]).some(
    (key) => JSON.stringify(current[key]) !== JSON.stringify(wanted[key]),
  );
}
