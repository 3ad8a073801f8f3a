/** The access and refresh tokens the client holds. */
export interface Tokens {
  access_token: string;
  refresh_token?: string | undefined;
}

/** The claims of a JWT's payload the client reads (no verification: the server verifies). */
export interface TokenTimes {
  /** Expiry, epoch seconds. */
  exp: number | undefined;
  /** Issued at, epoch seconds. */
  iat: number | undefined;
}

/** `exp` and `iat` of a JWT, or undefineds when it is not one. */
export function tokenTimes(token: string): TokenTimes {
  const payload = token.split(".")[1];
  if (!payload) return { exp: undefined, iat: undefined };
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const json = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)))) as Record<string, unknown>;
    const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
    return { exp: num(json["exp"]), iat: num(json["iat"]) };
  } catch {
    return { exp: undefined, iat: undefined }; // opaque token: no expiry known, refreshed only after a 401
  }
}

/**
 * When to refresh an access token, epoch ms: shortly before it expires, by a fifth of
 * its lifetime, at least 1 s and at most `maxLeadSeconds`; undefined when it has no `exp`.
 */
export function refreshDueAt(token: string, maxLeadSeconds = 30): number | undefined {
  const { exp, iat } = tokenTimes(token);
  if (exp === undefined) return undefined;
  const lifetime = iat !== undefined && exp > iat ? exp - iat : 900;
  const lead = Math.min(maxLeadSeconds, Math.max(1, lifetime / 5));
  return (exp - lead) * 1000;
}
