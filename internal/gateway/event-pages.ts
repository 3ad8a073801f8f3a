import { encodeCursor } from "../platform/cursor.js";
import { decodeEvent, type Event } from "../platform/events.js";
import type { StartAt, StreamReader } from "./realtime/stream-reader.js";

/** How many stored events one page may scan for matches. */
export const SCAN_LIMIT = 2_000;

/**
 * One page of stored events of `filter` (oldest first, each with its `seq`) that
 * `keep` accepts: at most `limit` of them, scanning at most SCAN_LIMIT events;
 * `next_cursor` continues after the last one looked at.
 */
export async function readEventPage(
  reader: Pick<StreamReader, "lastSeq" | "read">,
  filter: string,
  start: StartAt,
  limit: number,
  keep: (event: Event) => boolean | Promise<boolean>,
): Promise<{ items: Record<string, unknown>[]; next_cursor: string | null }> {
  const items: Record<string, unknown>[] = [];
  // Nothing stored after the start: answer at once rather than wait on an empty read.
  const latest = await reader.lastSeq(filter);
  if (latest === 0 || ("afterSeq" in start && latest <= start.afterSeq)) return { items, next_cursor: null };
  let scanned = 0;
  for await (const message of reader.read(filter, start)) {
    scanned++;
    const event = decodeEvent(message.data);
    if (event && (await keep(event))) items.push({ ...event, seq: message.seq });
    const more = message.pending > 0;
    if (more && (items.length === limit || scanned === SCAN_LIMIT)) return { items, next_cursor: encodeCursor(message.seq) };
    if (!more) break;
  }
  return { items, next_cursor: null };
}
