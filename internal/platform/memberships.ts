import { LRUCache } from "lru-cache";
import type { NatsConnection, Subscription } from "nats";
import { Counter, type Registry } from "prom-client";
import type { WorkspaceServiceClient } from "../../api/gen/taskboard/workspace/v1/workspace.js";
import { AppError } from "./errors.js";
import { decodeEvent, type Subjects } from "./events.js";
import type { OutgoingCall, ServiceClient } from "./grpc-client.js";
import type { Logger } from "./logger.js";
/** A member's role in a workspace. */
export type { WorkspaceRole } from "../../api/contracts/workspace.js";
import type { WorkspaceRole } from "../../api/contracts/workspace.js";

/** Who belongs to which workspace, with which role. */
export interface Memberships {
  /** The user's role in the workspace, or undefined when they are not a member. */
  roleOf(workspaceId: string, userId: string, call: OutgoingCall): Promise<WorkspaceRole | undefined>;
}

export interface MembershipCacheOptions {
  max?: number;
  ttlMs?: number;
  registry?: Registry;
}

const ROLES = new Set<string>(["owner", "admin", "member"]);

/**
 * Memberships as the workspace service knows them (GetMembership), with the
 * positive answers cached in memory so most task calls cost no extra hop; and
 * the member lists of workspaces (ListMemberIds), for notify's recipients.
 *
 * Why the cache is safe: an entry must never outlive the membership it
 * describes by more than the time a change takes to reach us, and a removed
 * member's next call must already be refused. Two feeds evict entries:
 *   1. the workspace service announces every addition, removal, role change
 *      and workspace deletion on a core NATS subject and flushes it to the server
 *      BEFORE it answers the call that made the change (see
 *      internal/workspace/membership-changes.ts). The DELETE returns only once
 *      NATS holds the announcement, which then reaches us over an open
 *      connection well before the client's next HTTP → gateway → gRPC round
 *      trip can; the stored event alone could not promise that, since the
 *      outbox relay publishes it some time after commit;
 *   2. the stored events, republished by the stream (`rt.<root>...`), as a
 *      backstop for announcements that were lost (the workspace process lost
 *      NATS at that moment, or the change came from a consumer).
 * Around them: nothing is cached while the feed is not connected, the whole
 * cache is dropped on every disconnect and reconnect (messages may have been
 * missed), a lookup that was in flight when an eviction arrived is not cached
 * (its answer may predate the change), and entries expire after `ttlMs`
 * anyway, which bounds the damage of any missed message. Negative answers are
 * never cached, so a new member has access at once; a member list is evicted
 * by an addition as by any other change, so a new member gets mail at once.
 */
export class CachedMemberships implements Memberships {
  private readonly cache: LRUCache<string, WorkspaceRole>;
  /** Every member id of a workspace (notify's recipients), evicted by any change in it, additions included. */
  private readonly lists: LRUCache<string, ReadonlySet<string>>;
  /** Lookups under way, by membership, then by the credentials they were made with. */
  private readonly inflight = new Map<string, Map<string, Promise<WorkspaceRole | undefined>>>();
  private readonly subscriptions: Subscription[] = [];
  private readonly lookups: Counter<"source">;
  /** Bumped by every eviction: a lookup that started in an older epoch is answered but not cached. */
  private epoch = 0;
  /** True while the invalidation feed is subscribed and connected. */
  private live = false;
  /** Bumped by every disconnect, so a late reconnect confirmation cannot re-enable a dead feed. */
  private connection = 0;
  private closed = false;

  constructor(
    private readonly workspace: ServiceClient<WorkspaceServiceClient>,
    private readonly log: Logger,
    options: MembershipCacheOptions = {},
  ) {
    this.cache = new LRUCache({ max: options.max ?? 100_000, ttl: options.ttlMs ?? 30_000 });
    this.lists = new LRUCache({ max: 10_000, ttl: options.ttlMs ?? 30_000 });
    this.lookups = new Counter({
      name: "taskboard_membership_lookups_total",
      help: "Membership checks, by where the answer came from (cache, or the workspace service)",
      labelNames: ["source"],
      registers: options.registry ? [options.registry] : [],
    });
  }

  async roleOf(workspaceId: string, userId: string, call: OutgoingCall): Promise<WorkspaceRole | undefined> {
    const key = cacheKey(workspaceId, userId);
    const cached = this.cache.get(key);
    if (cached) {
      this.lookups.inc({ source: "cache" });
      return cached;
    }
    // Concurrent calls for the same membership with the same credentials share one lookup.
    // Only the same credentials: a lookup made with one caller's bad or expired token fails,
    // and must not fail another caller (an internal check of the same user, say).
    const asked = this.inflight.get(key) ?? new Map<string, Promise<WorkspaceRole | undefined>>();
    const credentials = call.internal ? "internal" : (call.token ?? "");
    let pending = asked.get(credentials);
    if (!pending) {
      const lookup = this.lookup(key, workspaceId, userId, call);
      pending = lookup;
      asked.set(credentials, lookup);
      this.inflight.set(key, asked);
      void lookup.then(
        () => this.forget(key, credentials, lookup),
        () => this.forget(key, credentials, lookup),
      );
    }
    return pending;
  }

  /** The ids of every member of the workspace (none when it does not exist); cached like roles. */
  async memberIds(workspaceId: string): Promise<ReadonlySet<string>> {
    const cached = this.lists.get(workspaceId);
    if (cached) {
      this.lookups.inc({ source: "cache" });
      return cached;
    }
    const epoch = this.epoch;
    this.lookups.inc({ source: "workspace" });
    const ids = new Set((await this.workspace.call("listMemberIds", { workspace_id: workspaceId }, { internal: true })).user_ids);
    if (this.live && epoch === this.epoch) this.lists.set(workspaceId, ids);
    return ids;
  }

  /** Follows every feed of membership changes (see the class comment). */
  followChanges(nc: NatsConnection, subjects: Subjects): Promise<void> {
    return this.follow(nc, [
      subjects.membershipChanges,
      subjects.liveAll("member.added"),
      subjects.liveAll("member.removed"),
      subjects.liveAll("member.role_changed"),
      subjects.liveAll("workspace.deleted"),
    ]);
  }

  /**
   * Follows the subjects that announce membership changes (each message is an
   * event envelope in JSON) and the connection's state; caching starts once
   * the server has registered the subscriptions.
   */
  async follow(nc: NatsConnection, subjects: string[]): Promise<void> {
    for (const subject of subjects) {
      this.subscriptions.push(
        nc.subscribe(subject, {
          callback: (error, message) => {
            if (error) {
              this.log.warn({ err: error, subject }, "membership feed failed; cache cleared");
              this.clear();
              return;
            }
            this.apply(message.data);
          },
        }),
      );
    }
    await nc.flush();
    this.live = !nc.isClosed();
    void this.watch(nc);
  }

  /** Drops what one change makes stale: a user's membership, or all of a workspace's. */
  evict(workspaceId: string, userId?: string): void {
    this.epoch++;
    this.lists.delete(workspaceId);
    if (userId) {
      const key = cacheKey(workspaceId, userId);
      this.cache.delete(key);
      this.inflight.delete(key);
      return;
    }
    const prefix = cacheKey(workspaceId, "");
    for (const key of this.cache.keys()) if (key.startsWith(prefix)) this.cache.delete(key);
    for (const key of this.inflight.keys()) if (key.startsWith(prefix)) this.inflight.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.cache.clear();
    this.lists.clear();
    this.inflight.clear();
  }

  close(): void {
    this.closed = true;
    this.live = false;
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    this.clear();
  }

  private async lookup(key: string, workspaceId: string, userId: string, call: OutgoingCall): Promise<WorkspaceRole | undefined> {
    const epoch = this.epoch;
    this.lookups.inc({ source: "workspace" });
    let role: string;
    try {
      role = (await this.workspace.call("getMembership", { workspace_id: workspaceId, user_id: userId }, call)).role;
    } catch (error) {
      if (error instanceof AppError && error.code === "not_found") return undefined;
      throw error;
    }
    if (!ROLES.has(role)) throw new Error(`workspace service answered an unknown role ${JSON.stringify(role)}`);
    if (this.live && epoch === this.epoch) this.cache.set(key, role as WorkspaceRole);
    return role as WorkspaceRole;
  }

  private forget(key: string, credentials: string, lookup: Promise<unknown>): void {
    const asked = this.inflight.get(key);
    if (asked?.get(credentials) !== lookup) return;
    asked.delete(credentials);
    if (asked.size === 0) this.inflight.delete(key);
  }

  private apply(data: Uint8Array): void {
    const event = decodeEvent(data);
    if (!event) {
      this.log.warn("undecodable membership change; cache cleared");
      this.clear();
      return;
    }
    const workspaceId = event.workspace_id;
    if (!workspaceId) return;
    switch (event.type) {
      case "member.removed": {
        const userId = typeof event.data?.["user_id"] === "string" ? (event.data["user_id"] as string) : event.aggregate_id;
        this.evict(workspaceId, userId);
        break;
      }
      case "member.added":
      case "member.role_changed":
        this.evict(workspaceId, event.aggregate_id);
        break;
      case "workspace.deleted":
        this.evict(workspaceId);
        break;
      default:
        return;
    }
    this.log.debug({ type: event.type, workspace_id: workspaceId, event_id: event.id }, "membership cache evicted");
  }

  /** While disconnected, changes can be missed: cache nothing, and start afresh on reconnect. */
  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.closed) return;
      if (status.type === "disconnect" || status.type === "staleConnection" || status.type === "reconnecting") {
        this.connection++;
        this.live = false;
        this.clear();
      } else if (status.type === "reconnect") {
        this.clear();
        const connection = this.connection;
        // The client re-subscribes on reconnect; cache again once the server has them.
        nc.flush().then(
          () => {
            if (!this.closed && !nc.isClosed() && connection === this.connection) {
              this.clear();
              this.live = true;
            }
          },
          (error: unknown) => this.log.warn({ err: error }, "membership feed not confirmed after reconnect"),
        );
      }
    }
    this.live = false;
  }
}

function cacheKey(workspaceId: string, userId: string): string {
  return `${workspaceId}/${userId}`;
}
