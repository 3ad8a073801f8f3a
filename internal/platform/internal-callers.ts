import { createHash } from "node:crypto";
import { CALLERS, type Caller } from "./principal.js";

/**
 * Internal credentials (README "Security model"): each process presents its own
 * secret (INTERNAL_SECRET) in `x-internal-token`; a server knows the callers by
 * the SHA-256 digests of theirs (INTERNAL_CALLERS), so holding the list opens
 * nothing, and each method admits only the callers it names (principal.ts).
 */

/** The digest a server knows a caller's secret by (hex). */
export function credentialDigest(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * Parses INTERNAL_CALLERS: `name:digest` pairs separated by commas, e.g.
 * `gateway:9f86…,notify:2c26…`. A name may appear twice while its secret is rotated.
 * Returns digest → caller; throws a one-line message for a bad entry.
 */
export function parseCallers(value: string): ReadonlyMap<string, Caller> {
  const callers = new Map<string, Caller>();
  for (const entry of value.split(",").map((e) => e.trim()).filter(Boolean)) {
    const [name, digest, extra] = entry.split(":");
    if (!CALLERS.includes(name as Caller)) throw new Error(`unknown caller "${name}" (known: ${CALLERS.join(", ")})`);
    if (extra !== undefined || !/^[0-9a-f]{64}$/.test(digest ?? "")) throw new Error(`the entry of ${name} must be ${name}:<64 hex digits>`);
    if (callers.has(digest!)) throw new Error(`${name} shares its secret with ${callers.get(digest!)}`);
    callers.set(digest!, name as Caller);
  }
  return callers;
}

/** INTERNAL_CALLERS for a set of secrets (the dev runner and tests; the chart writes the same). */
export function formatCallers(secrets: Readonly<Partial<Record<Caller, string>>>): string {
  return Object.entries(secrets)
    .map(([name, secret]) => `${name}:${credentialDigest(secret!)}`)
    .join(",");
}
