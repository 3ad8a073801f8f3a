import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import ipaddr from "ipaddr.js";
import { isPublicAddress, publicOnlyLookup } from "./addresses.js";
import { inSpan, isTracing, SpanKind, SpanStatusCode, storedTrace } from "../platform/tracing.js";

/** What one POST to a webhook came to: its status, or why there is none. */
export type SendResult = { status: number; error?: undefined } | { status?: undefined; error: string };

/** `Taskboard-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signature(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex")}`;
}

/** The most response body read (and thrown away) before the answer counts. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs a signed delivery: JSON body, `Taskboard-Event`, `Taskboard-Delivery`,
 * `Taskboard-Signature`. Redirects are not followed (a 3xx is a failure); the whole
 * request, body included, must finish within `timeoutMs`; unless `allowPrivate`, only
 * public addresses are connected to (addresses.ts).
 */
export function postDelivery(
  target: { url: string; secret: string },
  delivery: { id: string; eventType: string; body: string; trace?: string | null },
  options: { timeoutMs: number; allowPrivate: boolean },
): Promise<SendResult> {
  const url = new URL(target.url);
  if (!isTracing()) return post(url, target.secret, delivery, options);
  const attributes = { "http.request.method": "POST", "server.address": url.hostname, "taskboard.webhook.delivery_id": delivery.id };
  // A span of the trace that recorded the delivery (its context is not sent to the receiver).
  return inSpan(
    "webhook POST",
    SpanKind.CLIENT,
    attributes,
    async (span) => {
      const result = await post(url, target.secret, delivery, options);
      if (result.status !== undefined) span?.setAttribute("http.response.status_code", result.status);
      else span?.setStatus({ code: SpanStatusCode.ERROR, message: result.error });
      return result;
    },
    storedTrace(delivery.trace)?.context,
  );
}

function post(
  url: URL,
  secret: string,
  delivery: { id: string; eventType: string; body: string },
  options: { timeoutMs: number; allowPrivate: boolean },
): Promise<SendResult> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!options.allowPrivate && ipaddr.isValid(host) && !isPublicAddress(host)) {
    return Promise.resolve({ error: "blocked: not a public address" });
  }
  const headers = {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(delivery.body)),
    "user-agent": "Taskboard-Webhooks/1",
    "taskboard-event": delivery.eventType,
    "taskboard-delivery": delivery.id,
    "taskboard-signature": signature(secret, delivery.body, Math.floor(Date.now() / 1000)),
  };
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const request = client.request(
      url,
      { method: "POST", headers, ...(options.allowPrivate ? {} : { lookup: publicOnlyLookup }) },
      (response) => {
        let read = 0;
        response.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) finish({ status: response.statusCode ?? 0 });
        });
        response.on("end", () => finish({ status: response.statusCode ?? 0 }));
        response.on("error", (error) => finish({ error: error.message }));
      },
    );
    const timer = setTimeout(() => finish({ error: `no answer within ${options.timeoutMs} ms` }), options.timeoutMs);
    request.on("error", (error: NodeJS.ErrnoException) =>
      finish({ error: error.code === "EBLOCKEDADDRESS" ? `blocked: ${error.message}` : error.message }),
    );
    request.end(delivery.body);
  });
}
