import { createPrivateKey, createPublicKey, hkdfSync, KeyObject, type webcrypto } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from "jose";
import { randomUUID } from "node:crypto";
import { TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER } from "../platform/access-tokens.js";
import { ConfigError } from "../platform/config.js";

type PrivateKey = Parameters<SignJWT["sign"]>[0];
type PublicKey = Parameters<typeof exportJWK>[0];

/**
 * The Ed25519 key that signs access tokens. Only the auth service holds it;
 * everyone else verifies with `jwks`.
 */
export class SigningKey {
  private constructor(
    private readonly privateKey: PrivateKey,
    readonly kid: string,
    readonly jwks: JSONWebKeySet,
  ) {}

  /** From a PKCS#8 PEM (JWT_PRIVATE_KEY), or a fresh key when none is given and that is allowed. */
  static async load(pem: string | undefined, allowGenerated: boolean): Promise<SigningKey> {
    let privateKey: PrivateKey;
    let publicKey: PublicKey;
    if (pem) {
      let nodeKey;
      try {
        nodeKey = createPrivateKey(pem.replace(/\\n/g, "\n"));
      } catch {
        throw new ConfigError("config: JWT_PRIVATE_KEY is invalid: must be a PKCS#8 PEM private key");
      }
      if (nodeKey.asymmetricKeyType !== "ed25519") {
        throw new ConfigError("config: JWT_PRIVATE_KEY is invalid: must be an Ed25519 key");
      }
      privateKey = nodeKey;
      publicKey = createPublicKey(nodeKey);
    } else if (allowGenerated) {
      ({ privateKey, publicKey } = await generateKeyPair(TOKEN_ALGORITHM, { crv: "Ed25519", extractable: true }));
    } else {
      throw new ConfigError("config: JWT_PRIVATE_KEY is required when NODE_ENV=production");
    }
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return new SigningKey(privateKey, kid, { keys: [{ ...jwk, kid, alg: TOKEN_ALGORITHM, use: "sig" }] });
  }

  /**
   * A 32-byte secret for `purpose`, derived from the private key (HKDF-SHA256): keys
   * of auth's other signatures (unsubscribe links) without another secret to deploy.
   */
  derive(purpose: string): Buffer {
    const keyObject = this.privateKey instanceof KeyObject ? this.privateKey : KeyObject.from(this.privateKey as webcrypto.CryptoKey);
    const material = keyObject.export({ format: "der", type: "pkcs8" });
    return Buffer.from(hkdfSync("sha256", material, Buffer.alloc(0), `taskboard ${purpose}`, 32));
  }

  signAccessToken(user: { id: string; role: string; name: string }, ttlSeconds: number): Promise<string> {
    return new SignJWT({ role: user.role, name: user.name })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: this.kid, typ: "JWT" })
      .setSubject(user.id)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }
}
