import type { Sql, TransactionSql } from "../platform/postgres.js";

/** One mail: an event and one of its recipients (the idempotency key). */
export interface DeliveryKey {
  workspace_id: string;
  event_id: string;
  recipient_id: string;
}

/** What a claim attempt found. */
export type Claim =
  /**
   * This replica holds the claim; `claims` counts this one. `inDoubt`: taken over
   * from a holder that died while its send may have reached SES.
   */
  | { kind: "held"; claims: number; inDoubt: boolean }
  /** Already sent or permanently failed: nothing more to do (a duplicate delivery). */
  | { kind: "done"; state: "sent" | "failed" }
  /** Another replica holds a live claim for about `remainingMs` more. */
  | { kind: "busy"; holder: string; remainingMs: number };

const MAX_ERROR_LENGTH = 1_000;

/** SQL of the `notify` schema: the idempotency record of each mail. */
export class DeliveryStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Claims one mail for `replica` for `ttlMs`: creates the record, or takes a
   * free one (released after a transient failure) or one whose claim expired
   * (its holder died). One statement, so two replicas cannot both win.
   */
  async claim(key: DeliveryKey, eventType: string, replica: string, ttlMs: number): Promise<Claim> {
    const [won] = await this.sql<{ claims: number; in_doubt: boolean }[]>`
      insert into notify.deliveries as d
        (workspace_id, event_id, recipient_id, event_type, state, claimed_by, claimed_until)
      values
        (${key.workspace_id}, ${key.event_id}, ${key.recipient_id}, ${eventType}, 'claimed', ${replica},
         clock_timestamp() + ${ttlMs}::int * interval '1 millisecond')
      on conflict (workspace_id, event_id, recipient_id) do update
        set claimed_by = excluded.claimed_by,
            claimed_until = excluded.claimed_until,
            claims = d.claims + 1,
            resent_in_doubt = d.resent_in_doubt or d.sending_since is not null,
            sending_since = null,
            updated_at = clock_timestamp()
        where d.state = 'claimed' and (d.claimed_by is null or d.claimed_until < clock_timestamp())
      returning d.claims, d.resent_in_doubt as in_doubt`;
    if (won) return { kind: "held", claims: won.claims, inDoubt: won.in_doubt };
    const [row] = await this.sql<{ state: "claimed" | "sent" | "failed"; claimed_by: string | null; remaining_ms: number | null }[]>`
      select state, claimed_by,
             (extract(epoch from (claimed_until - clock_timestamp())) * 1000)::float8 as remaining_ms
      from notify.deliveries
      where workspace_id = ${key.workspace_id} and event_id = ${key.event_id} and recipient_id = ${key.recipient_id}`;
    if (row && row.state !== "claimed") return { kind: "done", state: row.state };
    // Still claimed by someone else, or it changed in between: look again shortly.
    return { kind: "busy", holder: row?.claimed_by ?? "unknown", remainingMs: Math.max(0, row?.remaining_ms ?? 0) };
  }

  /**
   * Right before a send: extends this replica's claim and marks the mail as
   * possibly reaching SES from now on; false when it no longer holds the claim.
   */
  async markSending(key: DeliveryKey, replica: string, ttlMs: number): Promise<boolean> {
    const rows = await this.sql`
      update notify.deliveries
      set claimed_until = clock_timestamp() + ${ttlMs}::int * interval '1 millisecond',
          sending_since = clock_timestamp(), updated_at = clock_timestamp()
      where workspace_id = ${key.workspace_id} and event_id = ${key.event_id} and recipient_id = ${key.recipient_id}
        and state = 'claimed' and claimed_by = ${replica}`;
    return rows.count === 1;
  }

  /**
   * Gives the claim back after a transient failure, so the next delivery (on any
   * replica) takes it at once. `refused`: SES definitely did not take the last
   * attempt, so the next one is not a resend in doubt.
   */
  async release(key: DeliveryKey, replica: string, error: string, refused: boolean): Promise<void> {
    await this.sql`
      update notify.deliveries
      set claimed_by = null, claimed_until = null, error = ${clip(error)}, updated_at = clock_timestamp(),
          sending_since = case when ${refused} then null else sending_since end
      where workspace_id = ${key.workspace_id} and event_id = ${key.event_id} and recipient_id = ${key.recipient_id}
        and state = 'claimed' and claimed_by = ${replica}`;
  }

  /**
   * Records the mail as sent, in the caller's transaction (with its event).
   * False when it was already recorded (by a replica that took over an
   * expired claim): the caller then emits nothing.
   */
  async markSent(tx: TransactionSql, key: DeliveryKey, messageId: string): Promise<boolean> {
    const rows = await tx`
      update notify.deliveries
      set state = 'sent', message_id = ${messageId}, claimed_by = null, claimed_until = null, error = null,
          updated_at = clock_timestamp()
      where workspace_id = ${key.workspace_id} and event_id = ${key.event_id} and recipient_id = ${key.recipient_id}
        and state = 'claimed'`;
    return rows.count === 1;
  }

  /** Records a permanent failure, in the caller's transaction (with its event); false when this replica lost the claim. */
  async markFailed(tx: TransactionSql, key: DeliveryKey, replica: string, error: string): Promise<boolean> {
    const rows = await tx`
      update notify.deliveries
      set state = 'failed', error = ${clip(error)}, claimed_by = null, claimed_until = null, updated_at = clock_timestamp()
      where workspace_id = ${key.workspace_id} and event_id = ${key.event_id} and recipient_id = ${key.recipient_id}
        and state = 'claimed' and claimed_by = ${replica}`;
    return rows.count === 1;
  }
}

function clip(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}
