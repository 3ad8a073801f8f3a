import type { Subscription } from "../platform/durable-consumer.js";
import type { Subjects } from "../platform/events.js";
import { exponentialBackoff } from "../platform/retry.js";
import { NOTIFIED_TYPES, type NotifiedType, type NotifyService } from "./service.js";

export interface NotifyConsumerOptions {
  maxDeliver: number;
  ackWaitMs: number;
  /** First redelivery delay after a failed delivery; doubled for each further one (up to 5 minutes). */
  redeliveryMs: number;
}

/** The durable name of one notified type: every notify replica uses the same, so they share the work. */
export function durableName(type: NotifiedType): string {
  return `notify-${type.replace(".", "-")}`;
}

/**
 * notify's entry points (what server.ts is to a gRPC service): one durable
 * consumer per notified type, since a NATS 2.9 consumer has a single filter
 * subject, all calling the same handler. A durable created for the first time
 * starts at new events: a fresh deployment must not mail about a week of history.
 */
export function notifySubscriptions(subjects: Subjects, service: NotifyService, options: NotifyConsumerOptions): Subscription[] {
  const retry = exponentialBackoff(options.redeliveryMs, 300_000);
  return NOTIFIED_TYPES.map((type) => ({
    durable: durableName(type),
    filterSubject: subjects.allOf(type),
    startAt: "new",
    maxDeliver: options.maxDeliver,
    ackWaitMs: options.ackWaitMs,
    retry,
    handle: (event, delivery) => service.handle(event, delivery.attempt),
  }));
}
