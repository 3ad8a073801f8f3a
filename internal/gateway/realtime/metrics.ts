import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** What an operator asks first of the real-time path, per replica. */
export class RealtimeMetrics {
  readonly connections: Gauge;
  readonly rooms: Gauge;
  readonly eventsReceived: Counter;
  readonly deliveries: Counter;
  readonly messagesIn: Counter;
  readonly droppedSlowClients: Counter;
  readonly closedFlooding: Counter;
  readonly connectsRefused: Counter<"status">;
  readonly publishToSend: Histogram;
  readonly caughtUp: Counter<"source">;
  readonly historyReads: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connections = new Gauge({ name: "taskboard_ws_connections", help: "Open WebSocket connections", registers });
    this.rooms = new Gauge({ name: "taskboard_ws_rooms", help: "Rooms (workspaces) with local clients", registers });
    this.eventsReceived = new Counter({
      name: "taskboard_ws_events_received_total",
      help: "Events received from NATS for hosted rooms",
      registers,
    });
    this.deliveries = new Counter({
      name: "taskboard_ws_deliveries_total",
      help: "Event frames sent to clients (events × live subscribers)",
      registers,
    });
    this.messagesIn = new Counter({ name: "taskboard_ws_messages_in_total", help: "Frames received from clients", registers });
    this.droppedSlowClients = new Counter({
      name: "taskboard_ws_dropped_slow_clients_total",
      help: "Clients closed with 1013 because they could not keep up",
      registers,
    });
    this.closedFlooding = new Counter({
      name: "taskboard_ws_closed_flooding_total",
      help: "Clients closed for sending too many frames",
      registers,
    });
    this.connectsRefused = new Counter({
      name: "taskboard_ws_upgrades_refused_total",
      help: "WebSocket upgrades refused, by HTTP status",
      labelNames: ["status"],
      registers,
    });
    this.publishToSend = new Histogram({
      name: "taskboard_ws_publish_to_send_seconds",
      help: "From JetStream storing an event to the gateway handing it to its clients",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.caughtUp = new Counter({
      name: "taskboard_ws_catchup_events_total",
      help: "Events sent to clients catching up, by where they came from (memory or a JetStream read)",
      labelNames: ["source"],
      registers,
    });
    this.historyReads = new Counter({
      name: "taskboard_ws_history_reads_total",
      help: "JetStream reads of a room's events below its memory (each shared by the clients that need it)",
      registers,
    });
  }

  /** One event published to a room's topic with `subscribers` live clients. */
  delivered(subscribers: number, storedAt: number): void {
    if (subscribers > 0) this.deliveries.inc(subscribers);
    this.publishToSend.observe(Math.max(0, Date.now() - storedAt) / 1000);
  }
}
