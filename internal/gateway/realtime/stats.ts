import { RequestStrategy, type NatsConnection, type Subscription } from "nats";
import type { Counter } from "prom-client";
import type { Subjects } from "../../platform/events.js";
import type { RoomHub } from "./hub.js";
import type { RealtimeMetrics } from "./metrics.js";

export interface ReplicaStats {
  replica_id: string;
  connections: number;
  rooms: number;
  events_received: number;
  messages_in: number;
  messages_out: number;
  dropped_slow_clients: number;
  closed_flooding: number;
  uptime_seconds: number;
}

const counterValue = async (counter: Counter) => (await counter.get()).values[0]?.value ?? 0;

/**
 * Each gateway replica answers stats requests on an internal NATS subject, so
 * any replica can report on all of them (GET /realtime/stats, /events/stats).
 */
export class ReplicaStatsReporter {
  private readonly subscription: Subscription;
  private readonly startedAt = Date.now();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    readonly replicaId: string,
    private readonly hub: RoomHub,
    private readonly metrics: RealtimeMetrics,
  ) {
    this.subscription = nc.subscribe(subjects.internal("gateway.stats"), {
      callback: (error, message) => {
        if (error) return;
        // A reply that cannot go out (NATS reconnecting) is simply not counted by the asker.
        this.local()
          .then((stats) => message.respond(new TextEncoder().encode(JSON.stringify(stats))))
          .catch(() => undefined);
      },
    });
  }

  async local(): Promise<ReplicaStats> {
    return {
      replica_id: this.replicaId,
      connections: this.hub.connectionCount,
      rooms: this.hub.roomCount,
      events_received: await counterValue(this.metrics.eventsReceived),
      messages_in: await counterValue(this.metrics.messagesIn),
      messages_out: await counterValue(this.metrics.deliveries),
      dropped_slow_clients: await counterValue(this.metrics.droppedSlowClients),
      closed_flooding: await counterValue(this.metrics.closedFlooding),
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  /** Every replica's stats (this one's included), collected for up to `waitMs`. */
  async all(waitMs = 300): Promise<ReplicaStats[]> {
    const replies = await this.nc.requestMany(this.subjects.internal("gateway.stats"), new Uint8Array(), {
      maxWait: waitMs,
      strategy: RequestStrategy.Timer,
    });
    const stats: ReplicaStats[] = [];
    for await (const reply of replies) {
      const parsed = parseStats(reply.data);
      if (parsed) stats.push(parsed);
    }
    if (!stats.some((s) => s.replica_id === this.replicaId)) stats.push(await this.local());
    return stats.sort((a, b) => a.replica_id.localeCompare(b.replica_id));
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

/** A replica's answer, or undefined for anything that is not one. */
function parseStats(data: Uint8Array): ReplicaStats | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as Partial<ReplicaStats> | null;
    return typeof value?.replica_id === "string" ? (value as ReplicaStats) : undefined;
  } catch {
    return undefined; // not JSON: not a replica's answer
  }
}
