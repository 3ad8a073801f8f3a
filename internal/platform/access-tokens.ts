import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from "jose";
import { LRUCache } from "lru-cache";
import { AppError, unauthorized } from "./errors.js";
import type { UserRole } from "./principal.js";

/** The token of an `Authorization: Bearer <token>` header (HTTP or gRPC metadata); undefined when it is not one. */
export function bearerToken(header: string): string | undefined {
  return /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header)?.[1];
}

export const TOKEN_ISSUER = "taskboard";
export const TOKEN_AUDIENCE = "taskboard";
export const TOKEN_ALGORITHM = "EdDSA";
/** No access token is valid for longer than this, whatever its `exp` says (the auth service issues far shorter ones). */
export const MAX_TOKEN_LIFETIME_SECONDS = 86_400;
/** Clock difference between processes tolerated on `iat`. */
const CLOCK_TOLERANCE_SECONDS = 30;

export interface AccessClaims {
  userId: string;
  role: UserRole;
  name: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/**
 * Verifies access tokens against the public JWKS of the auth service: EdDSA
 * only (no "none", no HMAC), issuer and audience checked, expiry enforced, an
 * issue time in the future or a lifetime over a day refused.
 * Verified tokens are cached until they expire, so the per-request cost is a
 * map lookup; an unknown key id reloads the key set (at most every 10 s).
 */
export class AccessTokenVerifier {
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private loading: Promise<void> | undefined;
  private lastLoad = 0;
  private readonly cache = new LRUCache<string, AccessClaims>({ max: 50_000 });

  constructor(private readonly loadJwks: () => Promise<JSONWebKeySet>) {}

  async verify(token: string): Promise<AccessClaims> {
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.expiresAt > Date.now()) return cached;
      this.cache.delete(token);
      throw unauthorized("token expired");
    }
    if (token.length > 4096) throw unauthorized("invalid token");
    const claims = await this.verifyWithKeys(token, true);
    this.cache.set(token, claims, { ttl: Math.max(1, claims.expiresAt - Date.now()) });
    return claims;
  }

  private async verifyWithKeys(token: string, mayReload: boolean): Promise<AccessClaims> {
    if (!this.keys) await this.reload();
    try {
      const { payload } = await jwtVerify(token, this.keys!, {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
        algorithms: [TOKEN_ALGORITHM],
        requiredClaims: ["sub", "exp", "iat"],
        // jose refuses an `iat` in the future (beyond the tolerance) and one older than this.
        maxTokenAge: MAX_TOKEN_LIFETIME_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      if (payload.exp! - payload.iat! > MAX_TOKEN_LIFETIME_SECONDS) throw unauthorized("invalid token");
      const role = payload["role"];
      if (typeof payload.sub !== "string" || (role !== "user" && role !== "admin")) throw unauthorized("invalid token");
      return {
        userId: payload.sub,
        role,
        name: typeof payload["name"] === "string" ? payload["name"] : "",
        expiresAt: (payload.exp ?? 0) * 1000,
      };
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof joseErrors.JWKSNoMatchingKey && mayReload && Date.now() - this.lastLoad > 10_000) {
        await this.reload();
        return this.verifyWithKeys(token, false);
      }
      if (error instanceof joseErrors.JWTExpired) throw unauthorized("token expired");
      throw unauthorized("invalid token");
    }
  }

  private async reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const jwks = await this.loadJwks();
        this.keys = createLocalJWKSet(jwks);
        this.lastLoad = Date.now();
      } catch (error) {
        throw new AppError("dependency_unavailable", "cannot load the token verification keys", undefined, { cause: error });
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}
