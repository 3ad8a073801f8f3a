import type { NatsConnection } from "nats";
import type { Event, Subjects } from "../platform/events.js";
import type { Logger } from "../platform/logger.js";
import type { MembershipChanges } from "./service.js";

/**
 * Announces additions, removals, role changes and workspace deletions on core
 * NATS and waits until the server holds them (flush), before the change's call
 * answers. Services that cache memberships (gateway, task, export, notify) evict at once,
 * instead of when the outbox relay gets the stored event out some time after
 * commit. Best effort: a failure is logged, and the stored event still
 * follows.
 */
export class NatsMembershipChanges implements MembershipChanges {
  private readonly subject: string;
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly nc: NatsConnection,
    subjects: Subjects,
    private readonly log: Logger,
    private readonly timeoutMs = 1_000,
  ) {
    this.subject = subjects.membershipChanges;
  }

  async announce(events: Event[]): Promise<void> {
    if (events.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.nc.isClosed()) throw new Error("nats connection closed");
      for (const event of events) this.nc.publish(this.subject, this.encoder.encode(JSON.stringify(event)));
      await Promise.race([
        this.nc.flush(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no flush within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } catch (error) {
      this.log.warn({ err: error, events: events.map((e) => e.id) }, "membership change not announced; caches learn it from the stored event");
    } finally {
      clearTimeout(timer);
    }
  }
}
