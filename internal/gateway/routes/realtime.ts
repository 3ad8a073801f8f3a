import type { JetStreamManager } from "nats";
import { DEFAULT_PAGE_SIZE } from "../../../api/contracts/fields.js";
import { decodeCursor } from "../../platform/cursor.js";
import type { Subjects } from "../../platform/events.js";
import { readEventPage } from "../event-pages.js";
import { myGroups } from "../membership.js";
import { badRequest } from "../../platform/errors.js";
import { requireRole } from "../membership.js";
import { bearerToken } from "../../platform/access-tokens.js";
import type { Presence } from "../realtime/presence.js";
import type { SseEndpoint } from "../realtime/sse.js";
import type { Tickets } from "../realtime/tickets.js";
import type { EventPublisher } from "../realtime/publisher.js";
import type { ReplicaStatsReporter } from "../realtime/stats.js";
import type { StartAt, StreamReader } from "../realtime/stream-reader.js";
import { json, route, type Route } from "../router.js";
import { Broadcast, Event, EventList, EventsQuery } from "../../../api/contracts/event.js";
import { StreamQuery, Ticket, TicketRequest } from "../../../api/contracts/realtime.js";
import { EventStats, PresenceList, RealtimeStats } from "../../../api/contracts/system.js";
import type { Services } from "../services.js";

export interface RealtimeRouteDeps {
  services: Services;
  subjects: Subjects;
  streamName: string;
  jsm: JetStreamManager;
  reader: StreamReader;
  publisher: EventPublisher;
  presence: Presence;
  stats: ReplicaStatsReporter;
  tickets: Tickets;
  streams: SseEndpoint;
}

/** A cursor's position as a stream sequence (which JetStream keeps within 2^53). */
export function streamPosition(position: string | undefined): number {
  const seq = Number(position ?? 0);
  if (!Number.isSafeInteger(seq)) throw badRequest("invalid cursor");
  return seq;
}

export function realtimeRoutes(deps: RealtimeRouteDeps): Route[] {
  const { services, subjects, reader } = deps;
  return [
    route({
      method: "post",
      path: "/realtime/tickets",
      auth: "user",
      body: TicketRequest,
      doc: {
        operationId: "createRealtimeTicket",
        summary: "Get a ticket for the WebSocket or SSE endpoint",
        description:
          "Who: member. A single-use ticket, valid 30 s (`REALTIME_TICKET_SECONDS`), bound to the caller and the workspace: browsers put it in the WebSocket or SSE URL (`?ticket=`) instead of an access token. The connection it opens lasts as long as the access token it was bought with (a WebSocket client extends it with an `auth` frame). A spent, expired or foreign ticket is refused with 401.",
        tag: "Realtime",
        ok: { status: 201, description: "The ticket.", schema: Ticket },
        errors: [404],
      },
      handle: async (ctx) => {
        const workspaceId = ctx.body.workspace_id;
        await requireRole(services, ctx, workspaceId);
        const { userId, name, expiresAt } = ctx.caller;
        const ticket = await deps.tickets.issue({ userId, name, workspaceId, expiresAt });
        return json(201, { ticket, expires_in: deps.tickets.ttlSeconds });
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/stream",
      auth: "public",
      query: StreamQuery,
      headers: ["authorization", "last-event-id"],
      doc: {
        operationId: "streamEvents",
        summary: "The workspace's events as Server-Sent Events",
        description:
          "Who: member, with `?ticket=` or `Authorization: Bearer`. For clients and proxies without WebSocket; the same rules as `/ws/{workspace_id}`. First `event: connected` (the WebSocket's `connected` frame as data; its `id` is the position the events follow from), then one message per event: `id: <seq>`, `event: <type>`, `data: <envelope with seq>`; a `: ping` comment every 15 s (`SSE_HEARTBEAT_SECONDS`). Resumes after `Last-Event-ID` (or `?since=`), with the same order, no-gap, no-duplicate and `recovered` rules as the WebSocket. When the server ends the stream it sends `event: close` with `{code, reason}` (the WebSocket close code: 1012 restarting, 1013 too slow, 4001 token expired, 4003 removed, 4004 workspace deleted) and reconnecting with `Last-Event-ID` continues without a gap. At most `WS_MAX_CONNECTIONS_PER_USER` real-time connections per user (429).",
        tag: "Realtime",
        ok: { status: 200, description: "The event stream.", contentType: "text/event-stream" },
        errors: [401, 404, 429, 503],
      },
      handle: async (ctx) => {
        const { ticket, since, epoch } = ctx.query;
        const stream = await deps.streams.open(
          {
            workspaceId: ctx.params.workspace_id!,
            ticket,
            token: ticket ? undefined : bearerToken(ctx.headers.authorization!),
            since: ctx.headers["last-event-id"] || (since === undefined ? undefined : String(since)),
            epoch,
          },
          ctx.signal,
        );
        return { status: 200, stream, contentType: "text/event-stream; charset=utf-8", headers: { "cache-control": "no-store", "x-accel-buffering": "no" } };
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/presence",
      auth: "user",
      doc: {
        operationId: "getPresence",
        summary: "Who is connected now",
        description: "Who: member. Users connected to the workspace room, across all gateway replicas.",
        tag: "Realtime",
        ok: { status: 200, description: "The connected users.", schema: PresenceList },
      },
      handle: async (ctx) => {
        await requireRole(services, ctx, ctx.params.workspace_id!);
        return json(200, { items: await deps.presence.list(ctx.params.workspace_id!) });
      },
    }),
    route({
      method: "post",
      path: "/workspaces/{workspace_id}/broadcast",
      auth: "user",
      body: Broadcast,
      doc: {
        operationId: "broadcastMessage",
        summary: "Broadcast a message to the workspace room",
        description: "Who: owner, admin (workspace roles). Delivered to everyone in the room as a `custom.message` event.",
        tag: "Realtime",
        ok: { status: 202, description: "The published event.", schema: Event },
      },
      handle: async (ctx) => {
        const workspaceId = ctx.params.workspace_id!;
        await requireRole(services, ctx, workspaceId, ["owner", "admin"]);
        const event = await deps.publisher.publish({
          type: "custom.message",
          workspace_id: workspaceId,
          user_id: ctx.caller.userId,
          aggregate_id: workspaceId,
          data: { content: ctx.body.content, broadcast: true },
        });
        return json(202, event);
      },
    }),
    route({
      method: "get",
      path: "/workspaces/{workspace_id}/events",
      auth: "user",
      query: EventsQuery,
      doc: {
        operationId: "listEvents",
        summary: "List the stored events of a workspace",
        description: "Who: member. Oldest first, each with its stream `seq`.",
        tag: "Events",
        ok: { status: 200, description: "A page of events.", schema: EventList },
      },
      handle: async (ctx) => {
        const workspaceId = ctx.params.workspace_id!;
        await requireRole(services, ctx, workspaceId);
        const { type, aggregate_id, since, cursor } = ctx.query;
        const filter = type ? subjects.of({ type, workspace_id: workspaceId }) : subjects.room(workspaceId);
        const start: StartAt = cursor ? { afterSeq: streamPosition(decodeCursor(cursor)) } : (since ?? { afterSeq: 0 });
        // A group's messages only for its members (asked once, when the page holds one).
        let mine: Promise<ReadonlySet<string>> | undefined;
        const page = await readEventPage(reader, filter, start, ctx.query.limit ?? DEFAULT_PAGE_SIZE, async (event) => {
          if (aggregate_id && event.aggregate_id !== aggregate_id) return false;
          if (!event.group_id) return true;
          return (await (mine ??= myGroups(services, ctx, workspaceId))).has(event.group_id);
        });
        return json(200, page);
      },
    }),
    route({
      method: "get",
      path: "/realtime/stats",
      auth: "admin",
      doc: {
        operationId: "getRealtimeStats",
        summary: "Gateway statistics",
        description: "Who: admin (system admin).",
        tag: "Realtime",
        ok: { status: 200, description: "Connections, rooms, messages and dropped clients, per replica and in total.", schema: RealtimeStats },
      },
      handle: async () => {
        const replicas = await deps.stats.all();
        const sum = (key: "connections" | "rooms" | "messages_in" | "messages_out" | "dropped_slow_clients" | "events_received") =>
          replicas.reduce((total, r) => total + r[key], 0);
        return json(200, {
          replicas,
          totals: {
            replicas: replicas.length,
            connections: sum("connections"),
            rooms: sum("rooms"),
            events_received: sum("events_received"),
            messages_in: sum("messages_in"),
            messages_out: sum("messages_out"),
            dropped_slow_clients: sum("dropped_slow_clients"),
          },
        });
      },
    }),
    route({
      method: "get",
      path: "/events/stats",
      auth: "admin",
      doc: {
        operationId: "getEventStats",
        summary: "Event-mesh statistics",
        description: "Who: admin (system admin).",
        tag: "Events",
        ok: { status: 200, description: "The stream, published, delivered and failed counts, consumers and subscribers.", schema: EventStats },
      },
      handle: async () => {
        const [info, replicas] = await Promise.all([deps.jsm.streams.info(deps.streamName), deps.stats.all()]);
        const consumers = [];
        for await (const consumer of deps.jsm.consumers.list(deps.streamName)) {
          if (!consumer.config.durable_name) continue;
          consumers.push({
            name: consumer.name,
            filter_subject: consumer.config.filter_subject ?? null,
            delivered_seq: consumer.delivered.stream_seq,
            num_pending: consumer.num_pending,
            num_ack_pending: consumer.num_ack_pending,
            num_redelivered: consumer.num_redelivered,
          });
        }
        return json(200, {
          stream: {
            name: info.config.name,
            messages: info.state.messages,
            bytes: info.state.bytes,
            first_seq: info.state.first_seq,
            last_seq: info.state.last_seq,
          },
          published: info.state.last_seq,
          delivered: replicas.reduce((total, r) => total + r.messages_out, 0),
          failed: replicas.reduce((total, r) => total + r.dropped_slow_clients, 0),
          consumers,
          subscribers: {
            replicas: replicas.length,
            rooms: replicas.reduce((total, r) => total + r.rooms, 0),
            connections: replicas.reduce((total, r) => total + r.connections, 0),
          },
        });
      },
    }),
  ];
}
