import type { JetStreamClient } from "nats";
import { newEvent, type Event, type NewEvent, type Subjects } from "../../platform/events.js";
import { traceMessageHeaders } from "../../platform/tracing.js";

/** Publishes events that start at the gateway (custom messages, broadcasts, presence) straight to JetStream. */
export class EventPublisher {
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
  ) {}

  async publish(input: NewEvent): Promise<Event & { seq: number }> {
    const event = newEvent(input);
    const ack = await this.js.publish(this.subjects.of(event), this.encoder.encode(JSON.stringify(event)), { msgID: event.id, headers: traceMessageHeaders() });
    return { ...event, seq: ack.seq };
  }
}
