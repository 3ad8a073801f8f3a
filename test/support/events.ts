import type { NatsConnection, Subscription } from "nats";
import type { Event } from "../../internal/platform/events.js";
import { waitFor } from "./wait.js";

export interface Seen {
  subject: string;
  event: Event;
}

/** Records every event published under the mesh's subject root, for assertions. */
export class EventTap {
  readonly seen: Seen[] = [];
  private readonly subscription: Subscription;

  constructor(nc: NatsConnection, root: string) {
    this.subscription = nc.subscribe(`${root}.>`, {
      callback: (_error, message) => {
        this.seen.push({ subject: message.subject, event: JSON.parse(new TextDecoder().decode(message.data)) as Event });
      },
    });
  }

  /** Resolves with the first event matching `predicate`, or fails naming `what`. */
  waitFor(what: string, predicate: (seen: Seen) => boolean, timeoutMs = 10_000): Promise<Seen> {
    return waitFor(`event: ${what}`, () => this.seen.find(predicate), timeoutMs);
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}
