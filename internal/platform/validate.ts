import { z } from "zod";
import { badRequest } from "./errors.js";

/** Parses `value` with `schema`; invalid input becomes validation_failed naming the first problem. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  const first = issues[0]!;
  // Field messages name their field; others get the path in front.
  const named = !first.path || first.message.startsWith(first.path.split(".").pop()!);
  throw badRequest(named ? first.message : `${first.path}: ${first.message}`, { issues });
}
