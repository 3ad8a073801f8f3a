import type { JSONWebKeySet } from "jose";
import type { AuthServiceClient } from "../../api/gen/taskboard/auth/v1/auth.js";
import type { ServiceClient } from "./grpc-client.js";

/** The auth service's public key set, fetched over gRPC and kept for `maxAgeMs`. */
export class AuthKeys {
  private cached: { jwks: JSONWebKeySet; at: number } | undefined;

  constructor(
    private readonly auth: ServiceClient<AuthServiceClient>,
    private readonly maxAgeMs = 60_000,
  ) {}

  async jwks(fresh = false): Promise<JSONWebKeySet> {
    if (!fresh && this.cached && Date.now() - this.cached.at < this.maxAgeMs) return this.cached.jwks;
    const { json } = await this.auth.call("getJwks", {}, {});
    const jwks = JSON.parse(json) as JSONWebKeySet;
    this.cached = { jwks, at: Date.now() };
    return jwks;
  }
}
