import { lookup } from "node:dns/promises";
import type { LookupAddress, LookupOptions } from "node:dns";
import ipaddr from "ipaddr.js";
import { unprocessable } from "../platform/errors.js";

/**
 * Where webhooks may send (API.md "Webhooks", SSRF): public unicast addresses only,
 * never loopback, private, link-local (cloud metadata), carrier-grade NAT, unique
 * local, multicast, reserved or unspecified ones, checked on the URL's host and again
 * on every address it resolves to when the request connects (so a name that resolves
 * elsewhere later, DNS rebinding, is refused too). `allowPrivate` (WEBHOOK_ALLOW_PRIVATE,
 * dev and tests) admits every address and plain http.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  // IPv4-mapped IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address it is.
  return ipaddr.process(address).range() === "unicast";
}

/** Checks a webhook URL when it is registered or changed: 422 with the reason when it may not be used. */
export async function checkWebhookUrl(url: string, allowPrivate: boolean): Promise<void> {
  const parsed = new URL(url);
  if (parsed.username || parsed.password) throw unprocessable("url must not contain credentials");
  if (allowPrivate) return;
  if (parsed.protocol !== "https:") throw unprocessable("url must be https");
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (ipaddr.isValid(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      throw unprocessable("url's host does not resolve");
    }
  }
  if (addresses.length === 0 || !addresses.every(isPublicAddress)) {
    throw unprocessable("url must point to a public address (not loopback, private, link-local or metadata)");
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request that resolves as usual and refuses non-public
 * addresses: the address a request connects to is the one that was checked.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true }).then(
    (addresses) => {
      const allowed = addresses.filter((a) => isPublicAddress(a.address));
      if (allowed.length === 0) {
        const error: NodeJS.ErrnoException = new Error(`${hostname} resolves to no public address`);
        error.code = "EBLOCKEDADDRESS";
        return callback(error, "");
      }
      if (options.all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    },
    (error: NodeJS.ErrnoException) => callback(error, ""),
  );
}
