import { z } from "zod";
import { parseCallers } from "./internal-callers.js";

/** The environment a process reads its configuration from; tests pass a plain object. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A bad or missing configuration value; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** One environment variable: how to parse it, and its default (undefined: required). */
export type EnvSpec = Record<string, z.ZodType>;

export type ParsedEnv<S extends EnvSpec> = { [K in keyof S]: z.output<S[K]> };

/**
 * A URL (or a comma-separated list of them) with every password replaced by
 * `***`: works on malformed URLs too, which is where it matters (error lines).
 */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:@/\s,]*:)[^@/\s,]*@/g, "$1***@");
}

/** Parses every variable of `spec` from `env`; throws ConfigError naming the first bad one. */
export function parseEnv<S extends EnvSpec>(spec: S, env: Env): ParsedEnv<S> {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(spec)) {
    const raw = env[name];
    const value = raw === "" ? undefined : raw;
    const result = schema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0];
      const shown = /KEY|TOKEN|PASSWORD|SECRET/.test(name) ? "(hidden)" : JSON.stringify(redactUrl(String(value)));
      throw new ConfigError(
        value === undefined
          ? `config: ${name} is required`
          : `config: ${name}=${shown} is invalid: ${issue?.message ?? "bad value"}`,
      );
    }
    out[name] = result.data;
  }
  return out as ParsedEnv<S>;
}

// Field builders: each names its default beside it.
export const env = {
  string: (fallback?: string) => (fallback === undefined ? z.string().min(1) : z.string().min(1).default(fallback)),
  optionalString: () => z.string().min(1).optional(),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int("must be an integer").min(min).max(max).default(fallback),
  port: (fallback: number) => z.coerce.number().int("must be an integer").min(0).max(65535).default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(["true", "false", "1", "0", "yes", "no"], "must be true or false")
      .optional()
      .transform((v) => (v === undefined ? fallback : v === "true" || v === "1" || v === "yes")),
  url: (fallback: string, protocols: string[]) =>
    z
      .string()
      .default(fallback)
      .refine((v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      }, `must be a URL with scheme ${protocols.join(" or ")}`),
  /** host:port, as gRPC targets are written. */
  address: (fallback: string) => z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port").default(fallback),
  oneOf: <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
    z.enum(values, `must be one of ${values.join(", ")}`).default(fallback),
  /** A NATS subject token: letters, digits, dash, underscore. */
  token: (fallback: string) => z.string().regex(/^[A-Za-z0-9_-]+$/, "must be letters, digits, - or _").default(fallback),
};

/** Variables every process reads. */
export const commonEnv = {
  LOG_LEVEL: env.oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
  /** How long a graceful shutdown may take before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 100),
  /** This process's own credential for calls to the others (internal-callers.ts). */
  INTERNAL_SECRET: z.string().min(32, "must be at least 32 characters"),
  /**
   * The address the gRPC and admin ports bind to: loopback unless the deployment says
   * otherwise (the chart binds the pod's IP). The gateway's public HTTP port listens on all.
   */
  LISTEN_HOST: z
    .string()
    .default("127.0.0.1")
    .refine((v) => /^[0-9a-fA-F:.]+$/.test(v) || /^[a-z0-9.-]+$/i.test(v), "must be an IP address or a host name"),
};

/** Variables of processes that serve gRPC. */
export const grpcServerEnv = {
  /** The processes admitted as internal callers: `name:sha256(secret)`, comma-separated (internal-callers.ts). */
  INTERNAL_CALLERS: z.string().transform((value, ctx) => {
    try {
      return parseCallers(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  }),
};

export const natsEnv = {
  /** One server or a comma-separated list: nats://[user:password@]host[:port], or host[:port]. */
  NATS_URL: z
    .string()
    .default("nats://127.0.0.1:4222")
    .refine(
      (v) => v.split(",").every((server) => /^((nats|tls|ws|wss):\/\/([^@/\s]+@)?)?[^:@/\s]+(:\d{1,5})?\/?$/.test(server.trim())),
      "must be nats://host[:port] (or a comma-separated list)",
    ),
  /** Root token of every subject (ARCHITECTURE.md subjects live under it). */
  NATS_SUBJECT_ROOT: env.token("taskboard"),
  NATS_STREAM: env.token("TASKBOARD"),
  NATS_STREAM_MAX_AGE_HOURS: env.int(168, 1),
  NATS_STREAM_REPLICAS: env.int(1, 1, 5),
};

export const postgresEnv = {
  DATABASE_URL: env.url("postgres://postgres@127.0.0.1:5432/taskboard", ["postgres:", "postgresql:"]),
  DATABASE_POOL_SIZE: env.int(10, 1, 200),
};

export const redisEnv = {
  REDIS_URL: env.url("redis://127.0.0.1:6379", ["redis:", "rediss:"]),
  /** Prefix of every Redis key, so deployments and tests can share a server. */
  REDIS_PREFIX: env.string("tb:"),
};
