import { createHash, randomBytes } from "node:crypto";
import { unauthorized } from "../../platform/errors.js";
import type { Redis } from "../../platform/redis.js";

/** Who a ticket admits, where, and until when their access token lasts. */
export interface TicketHolder {
  userId: string;
  name: string;
  workspaceId: string;
  /** Expiry of the access token the ticket was bought with (epoch ms): the connection's expiry. */
  expiresAt: number;
}

/**
 * Single-use tickets for the real-time endpoints: browsers put a ticket in
 * the WebSocket or SSE URL instead of a JWT (URLs end up in proxy logs). A
 * ticket is 32 random bytes, stored in Redis under its SHA-256 (a leaked key
 * list admits no one) for `ttlSeconds`, bound to one user and one workspace,
 * and spent atomically (GETDEL): the first redemption wins, any other fails.
 */
export class Tickets {
  constructor(
    private readonly redis: Redis,
    readonly ttlSeconds: number,
  ) {}

  async issue(holder: TicketHolder): Promise<string> {
    const ticket = randomBytes(32).toString("base64url");
    await this.redis.set(key(ticket), JSON.stringify(holder), "EX", this.ttlSeconds);
    return ticket;
  }

  /** Spends a ticket for `workspaceId`: 401 when it is unknown, spent, expired or for another workspace. */
  async redeem(ticket: string, workspaceId: string): Promise<TicketHolder> {
    const stored = ticket.length <= 64 ? await this.redis.getdel(key(ticket)) : null;
    const holder = stored ? parseHolder(stored) : undefined;
    if (!holder || holder.workspaceId !== workspaceId) throw unauthorized("invalid, spent or expired ticket");
    if (holder.expiresAt <= Date.now()) throw unauthorized("the token this ticket was issued for has expired");
    return holder;
  }
}

function key(ticket: string): string {
  return `ticket:${createHash("sha256").update(ticket).digest("base64url")}`;
}

function parseHolder(raw: string): TicketHolder | undefined {
  try {
    const value = JSON.parse(raw) as Partial<TicketHolder> | null;
    return typeof value?.userId === "string" && typeof value.workspaceId === "string" && typeof value.expiresAt === "number"
      ? (value as TicketHolder)
      : undefined;
  } catch {
    return undefined;
  }
}
