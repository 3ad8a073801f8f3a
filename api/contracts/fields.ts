import { z } from "zod";

/**
 * Field shapes shared by every contract: how an id, a text or a time is
 * written and checked, with messages that name the field.
 */

const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

/** The dates the API takes: years 1 to 9999, which Postgres stores and RFC 3339 writes. */
const EARLIEST = Date.parse("0001-01-01T00:00:00Z");
const LATEST = Date.parse("9999-12-31T23:59:59.999Z");

export const field = {
  /** A UUID in input, named in its message. */
  id: (name: string) => z.uuid(`${name} must be a UUID`),
  /** A required single-line-ish text: trimmed, 1 to `max` characters, no control characters. */
  text: (name: string, max: number) =>
    z
      .string(`${name} must be a string`)
      .trim()
      .min(1, `${name} is required`)
      .max(max, `${name} must be at most ${max} characters`)
      .refine((v) => !CONTROL_CHARACTERS.test(v), `${name} contains control characters`),
  /** A text that may be empty: up to `max` characters, no control characters. */
  optionalText: (name: string, max: number) =>
    z
      .string(`${name} must be a string`)
      .max(max, `${name} must be at most ${max} characters`)
      .refine((v) => !CONTROL_CHARACTERS.test(v), `${name} contains control characters`),
  /** An RFC 3339 date-time (Z or an offset) in years 1–9999, normalised to UTC ISO with milliseconds. */
  dateTime: (name: string) =>
    z.iso
      .datetime({ offset: true, error: `${name} must be an RFC 3339 date-time, e.g. 2030-01-31T17:00:00Z` })
      .refine((v) => !Number.isNaN(Date.parse(v)), `${name} must be an RFC 3339 date-time, e.g. 2030-01-31T17:00:00Z`)
      .refine((v) => Date.parse(v) >= EARLIEST && Date.parse(v) <= LATEST, `${name} must be between 0001-01-01 and 9999-12-31`)
      .transform((v) => new Date(v).toISOString()),
};

/** Shapes the API writes (resources): what a client can rely on. */
export const out = {
  id: () => z.uuid(),
  time: () => z.iso.datetime().meta({ description: "RFC 3339, UTC" }),
};

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** `?limit=&cursor=` of every list (API.md "Lists"). */
export const pageQuery = z.object({
  limit: z.coerce
    .number("limit must be a number")
    .int("limit must be an integer")
    .min(1, "limit must be at least 1")
    .max(MAX_PAGE_SIZE, `limit must be at most ${MAX_PAGE_SIZE}`)
    .optional()
    .meta({ description: `Items per page, 1–${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE}).` }),
  cursor: z.string().max(512, "cursor is too long").optional().meta({ description: "Opaque cursor from the previous page." }),
});

/** A page of a list: `next_cursor` is null on the last page. */
export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() }).meta({ id });
}

/** A partial update's body: the given fields, unknown ones refused, at least one. */
export function partialUpdate<S extends z.core.$ZodLooseShape>(shape: S, id: string) {
  return z
    .strictObject(shape)
    .refine((value) => Object.values(value).some((v) => v !== undefined), { message: "at least one field is required" })
    .meta({ id, minProperties: 1 });
}
