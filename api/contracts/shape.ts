import { z } from "zod";

/**
 * What every resource gets from its contract instead of a hand-written copy:
 * its JSON presentation, its columns, and the translation of partial updates
 * to and from the protobuf messages between processes. A field added to a
 * contract's schema flows through all of them.
 */

type Shape = Record<string, z.ZodType>;

/** The JSON resource of a service message: exactly the schema's fields; a field the message leaves unset is null. */
export function presenter<S extends z.ZodObject<Shape>>(schema: S): (message: object) => z.output<S> {
  const keys = Object.keys(schema.shape);
  return (message) => {
    const source = message as Record<string, unknown>;
    const resource: Record<string, unknown> = {};
    for (const key of keys) resource[key] = source[key] ?? null;
    return resource as z.output<S>;
  };
}

/** The fields of a resource, in the contract's order (CSV columns, SQL column lists). */
export function fieldsOf(schema: z.ZodObject<Shape>): string[] {
  return Object.keys(schema.shape);
}

/**
 * Database rows as service messages: dates as RFC 3339 strings, NULL as unset
 * (protobuf `optional`), every field of the resource and nothing else.
 */
export function rowToMessage<T>(schema: z.ZodObject<Shape>): (row: object) => T {
  const keys = fieldsOf(schema);
  return (row) => {
    const source = row as Record<string, unknown>;
    const message: Record<string, unknown> = {};
    for (const key of keys) {
      const value = source[key];
      message[key] = value instanceof Date ? value.toISOString() : (value ?? undefined);
    }
    return message as T;
  };
}

/** A request body without its nulls, as protobuf `optional` fields take them (null and absent both mean "none"). */
export function withoutNulls<T extends object>(body: T): { [K in keyof T]: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null)) as { [K in keyof T]: Exclude<T[K], null> };
}

/** How a field of a partial update travels in protobuf: as it is, in a NullableString, or in a StringList. */
type PatchKind = "plain" | "nullable" | "list";

function patchKind(type: z.ZodType): PatchKind {
  let inner: z.ZodType = type;
  // Look through optional, default and transforms to the type the client writes.
  for (;;) {
    if (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault) inner = inner.unwrap() as z.ZodType;
    else if (inner instanceof z.ZodPipe) inner = inner.in as z.ZodType;
    else break;
  }
  if (inner instanceof z.ZodNullable) return "nullable";
  if (inner instanceof z.ZodArray) return "list";
  return "plain";
}

/**
 * A partial update as its protobuf request: fields absent stay absent; a
 * nullable field is `{value}` (null: `{}`); a list is `{values}`, so that an
 * empty list is told apart from no change.
 */
export function toPatch<M extends object>(schema: z.ZodObject<Shape>, body: Record<string, unknown>): M {
  const message: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined) continue;
    const kind = schema.shape[key] ? patchKind(schema.shape[key]) : "plain";
    message[key] = kind === "nullable" ? (value === null ? {} : { value }) : kind === "list" ? { values: value } : value;
  }
  return message as M;
}

/** The reverse of toPatch: a protobuf partial update as the contract's input (null for a cleared field). */
export function fromPatch(schema: z.ZodObject<Shape>, message: object): Record<string, unknown> {
  const source = message as Record<string, unknown>;
  const input: Record<string, unknown> = {};
  for (const [key, type] of Object.entries(schema.shape)) {
    const value = source[key];
    if (value === undefined) continue;
    const kind = patchKind(type);
    input[key] = kind === "nullable" ? ((value as { value?: unknown }).value ?? null) : kind === "list" ? (value as { values: unknown[] }).values : value;
  }
  return input;
}
