import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../../api/contracts/fields.js";
import { badRequest } from "./errors.js";

/** Positions are Postgres bigint values (and stream sequences, which are smaller). */
const MAX_POSITION = 9_223_372_036_854_775_807n;

/** A page size within the API's bounds (0 means the default). */
export function pageSize(limit: number): number {
  if (!limit) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw badRequest(`limit must be between 1 and ${MAX_PAGE_SIZE}`);
  }
  return limit;
}

/** Opaque keyset cursor over a bigint column; "" for none. */
export function encodeCursor(position: string | number | bigint): string {
  return Buffer.from(`v1:${position}`).toString("base64url");
}

/** The position inside a cursor, or undefined for the first page. */
export function decodeCursor(cursor: string): string | undefined {
  if (!cursor) return undefined;
  const text = Buffer.from(cursor, "base64url").toString();
  const match = /^v1:(\d{1,19})$/.exec(text);
  if (!match || BigInt(match[1]!) > MAX_POSITION) throw badRequest("invalid cursor");
  return match[1];
}

/** Splits `limit + 1` fetched rows into a page and the cursor of the next one. */
export function pageOf<T>(rows: T[], limit: number, position: (row: T) => string | number | bigint) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(position(last)) : "" };
}
