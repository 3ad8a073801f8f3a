import type { Redis } from "../../platform/redis.js";
import type { Logger } from "../../platform/logger.js";

// KEYS[1] presence hash of a workspace. ARGV: field (user|replica), value, now, user id, key ttl ms.
// Sets this replica's entry and answers whether the user was already present elsewhere.
const JOIN = `
local was = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local field, value = entries[i], entries[i + 1]
  if field ~= ARGV[1] and string.sub(field, 1, #ARGV[4] + 1) == ARGV[4] .. '|' then
    local expires = tonumber(string.match(value, '"expires_at":(%d+)'))
    if expires and expires > tonumber(ARGV[3]) then was = 1 end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return was
`;

// KEYS[1] presence hash. ARGV: field, now, user id. Removes this replica's entry and
// answers whether the user is still present elsewhere.
const LEAVE = `
redis.call('HDEL', KEYS[1], ARGV[1])
local still = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local field, value = entries[i], entries[i + 1]
  if string.sub(field, 1, #ARGV[3] + 1) == ARGV[3] .. '|' then
    local expires = tonumber(string.match(value, '"expires_at":(%d+)'))
    if expires and expires > tonumber(ARGV[2]) then still = 1 end
  end
end
return still
`;

export interface PresenceEntry {
  user_id: string;
  name: string;
  connections: number;
  connected_at: string;
}

interface Local {
  name: string;
  connections: number;
  connectedAt: number;
  /** A pending leave, cancelled by a quick reconnect. */
  leaving: NodeJS.Timeout | undefined;
}

export interface PresenceOptions {
  replicaId: string;
  /** A crashed replica's entries disappear after this long. */
  ttlMs: number;
  /** How long a user may be gone before presence.left (a quick reconnect is not a leave). */
  debounceMs: number;
}

/**
 * Who is connected to each workspace, across every gateway replica: one Redis
 * hash per workspace with one entry per (user, replica), refreshed while the
 * replica lives and expiring when it does not. Joins and leaves (debounced)
 * become presence.joined / presence.left events. A user's first and last
 * connection here write at once; connection counts in between go out with the
 * heartbeat (every third of the TTL).
 */
export class Presence {
  private readonly local = new Map<string, Map<string, Local>>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly options: PresenceOptions,
    private readonly announce: (type: "presence.joined" | "presence.left", workspaceId: string, user: { id: string; name: string }) => Promise<void>,
    private readonly log: Logger,
  ) {
    this.heartbeat = setInterval(() => void this.refresh(), Math.max(1_000, options.ttlMs / 3));
    this.heartbeat.unref();
  }

  async connected(workspaceId: string, user: { id: string; name: string }): Promise<void> {
    const room = this.room(workspaceId);
    const entry = room.get(user.id);
    if (entry) {
      // Already present from here: the new count goes out with the next heartbeat.
      entry.connections++;
      if (entry.leaving) {
        clearTimeout(entry.leaving);
        entry.leaving = undefined;
      }
      return;
    }
    const fresh: Local = { name: user.name, connections: 1, connectedAt: Date.now(), leaving: undefined };
    room.set(user.id, fresh);
    const was = (await this.redis.eval(
      JOIN,
      1,
      this.key(workspaceId),
      this.field(user.id),
      this.value(fresh),
      String(Date.now()),
      user.id,
      String(this.options.ttlMs),
    )) as number;
    if (!was) await this.announce("presence.joined", workspaceId, user);
  }

  disconnected(workspaceId: string, userId: string): void {
    const entry = this.local.get(workspaceId)?.get(userId);
    if (!entry) return;
    entry.connections--;
    if (entry.connections > 0) return;
    entry.leaving = setTimeout(() => void this.leave(workspaceId, userId, entry), this.options.debounceMs);
  }

  /** Everyone connected to a workspace now, on any replica. */
  async list(workspaceId: string): Promise<PresenceEntry[]> {
    const entries = await this.redis.hgetall(this.key(workspaceId));
    const now = Date.now();
    const users = new Map<string, PresenceEntry>();
    for (const [field, raw] of Object.entries(entries)) {
      const value = parseEntry(raw);
      if (!value || value.expires_at <= now || value.connections <= 0) continue;
      const userId = field.split("|")[0]!;
      const seen = users.get(userId);
      if (seen) {
        seen.connections += value.connections;
        if (value.connected_at < Date.parse(seen.connected_at)) seen.connected_at = new Date(value.connected_at).toISOString();
      } else {
        users.set(userId, {
          user_id: userId,
          name: value.name,
          connections: value.connections,
          connected_at: new Date(value.connected_at).toISOString(),
        });
      }
    }
    return [...users.values()].sort((a, b) => a.connected_at.localeCompare(b.connected_at));
  }

  /** Stops the heartbeat; entries expire on their own (clients reconnect elsewhere meanwhile). */
  close(): void {
    clearInterval(this.heartbeat);
    for (const room of this.local.values()) for (const entry of room.values()) clearTimeout(entry.leaving);
  }

  private async leave(workspaceId: string, userId: string, entry: Local): Promise<void> {
    const room = this.local.get(workspaceId);
    if (room?.get(userId) !== entry || entry.connections > 0) return;
    room.delete(userId);
    if (room.size === 0) this.local.delete(workspaceId);
    try {
      const still = (await this.redis.eval(LEAVE, 1, this.key(workspaceId), this.field(userId), String(Date.now()), userId)) as number;
      if (!still) await this.announce("presence.left", workspaceId, { id: userId, name: entry.name });
    } catch (error) {
      this.log.warn({ err: error, workspace_id: workspaceId }, "presence leave failed");
    }
  }

  private async refresh(): Promise<void> {
    if (this.local.size === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [workspaceId, room] of this.local) {
      const fields: string[] = [];
      for (const [userId, entry] of room) if (entry.connections > 0) fields.push(this.field(userId), this.value(entry));
      if (fields.length === 0) continue;
      pipeline.hset(this.key(workspaceId), ...fields).pexpire(this.key(workspaceId), this.options.ttlMs);
    }
    await pipeline.exec().catch((error: unknown) => this.log.warn({ err: error }, "presence heartbeat failed"));
  }

  private room(workspaceId: string): Map<string, Local> {
    let room = this.local.get(workspaceId);
    if (!room) {
      room = new Map();
      this.local.set(workspaceId, room);
    }
    return room;
  }

  private key(workspaceId: string): string {
    return `presence:${workspaceId}`;
  }

  private field(userId: string): string {
    return `${userId}|${this.options.replicaId}`;
  }

  private value(entry: Local): string {
    return JSON.stringify({
      name: entry.name,
      connections: entry.connections,
      connected_at: entry.connectedAt,
      expires_at: Date.now() + this.options.ttlMs,
    });
  }
}

interface StoredEntry {
  name: string;
  connections: number;
  connected_at: number;
  expires_at: number;
}

/** An entry as a replica wrote it, or undefined for a value that is not one (skipped). */
function parseEntry(raw: string): StoredEntry | undefined {
  try {
    const value = JSON.parse(raw) as Partial<StoredEntry> | null;
    return typeof value?.expires_at === "number" && typeof value.connections === "number" ? (value as StoredEntry) : undefined;
  } catch {
    return undefined; // not JSON: not written by a replica
  }
}
