import { z } from "zod";
import { errorCatalogue } from "../../internal/platform/errors.js";
import { out } from "./fields.js";

/** The bodies of the system, realtime and statistics routes, and the error body every route may answer. */

export const ErrorCode = z.enum(Object.keys(errorCatalogue) as [keyof typeof errorCatalogue]).meta({ id: "ErrorCode" });

export const ErrorBody = z
  .object({
    error: z.object({
      code: ErrorCode,
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: "Error" });

export const Health = z
  .object({
    status: z.enum(["ok", "degraded", "starting", "stopping"]),
    dependencies: z.record(z.string(), z.enum(["ok", "down"])).optional().meta({ description: "Each dependency's state: for system admins only." }),
  })
  .meta({ id: "Health" });

export const Jwks = z
  .object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional(), alg: z.string().optional() })) })
  .meta({ id: "Jwks" });

export const PresenceList = z
  .object({
    items: z.array(z.object({ user_id: out.id(), name: z.string(), connections: z.int().min(1), connected_at: out.time() })),
  })
  .meta({ id: "PresenceList" });

const counters = {
  connections: z.int().min(0),
  rooms: z.int().min(0),
  events_received: z.int().min(0),
  messages_in: z.int().min(0),
  messages_out: z.int().min(0),
  dropped_slow_clients: z.int().min(0),
};

export const RealtimeStats = z
  .object({
    replicas: z.array(z.object({ replica_id: z.string(), ...counters, closed_flooding: z.int().min(0), uptime_seconds: z.number().min(0) })),
    totals: z.object({ replicas: z.int().min(0), ...counters }),
  })
  .meta({ id: "RealtimeStats" });

export const EventStats = z
  .object({
    stream: z.object({ name: z.string(), messages: z.int(), bytes: z.int(), first_seq: z.int(), last_seq: z.int() }),
    published: z.int().min(0).meta({ description: "Events stored in the stream: its last sequence." }),
    delivered: z.int().min(0).meta({ description: "Messages the gateway replicas sent to real-time clients." }),
    failed: z.int().min(0).meta({ description: "Slow clients the gateway replicas dropped." }),
    consumers: z.array(
      z.object({
        name: z.string(),
        filter_subject: z.string().nullable(),
        delivered_seq: z.int(),
        num_pending: z.int(),
        num_ack_pending: z.int(),
        num_redelivered: z.int(),
      }),
    ),
    subscribers: z
      .object({ replicas: z.int().min(0), rooms: z.int().min(0), connections: z.int().min(0) })
      .meta({ description: "Who receives the events live: the gateway replicas, their workspace rooms and real-time connections (WebSocket and SSE), summed." }),
  })
  .meta({ id: "EventStats" });
