import { randomBytes } from "node:crypto";
import { formatCallers } from "../platform/internal-callers.js";
import { CALLERS, type Caller } from "../platform/principal.js";

/**
 * A fresh internal credential for every process of a local mesh (the dev
 * runner, the test mesh, the benches): what the platform chart's Secret holds
 * in a cluster.
 */
export class LocalCredentials {
  readonly secrets = Object.fromEntries(CALLERS.map((name) => [name, randomBytes(32).toString("base64url")])) as Record<Caller, string>;
  readonly callers = formatCallers(this.secrets);

  /** The environment of process `name`: its own secret, and the callers a server admits. */
  env(name: string): { INTERNAL_SECRET: string; INTERNAL_CALLERS: string } {
    const secret = this.secrets[name as Caller];
    if (!secret) throw new Error(`no internal credential for "${name}" (known: ${CALLERS.join(", ")})`);
    return { INTERNAL_SECRET: secret, INTERNAL_CALLERS: this.callers };
  }
}
