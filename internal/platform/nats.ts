import { connect, type NatsConnection } from "nats";
import { redactUrl } from "./config.js";
import type { Logger } from "./logger.js";

export type { NatsConnection };

/** Connects to NATS, reconnecting for ever once connected; logs connection changes. */
export async function connectNats(servers: string, name: string, log: Logger): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: servers.split(","),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
      timeout: 5_000,
    });
  } catch (error) {
    throw new Error(`cannot connect to NATS at ${redactUrl(servers)}`, { cause: error });
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") {
        log.warn({ nats: s.type, data: String(s.data) }, "nats connection status");
      }
    }
  })();
  return nc;
}

/** Healthy while the connection is open and not reconnecting. */
export async function pingNats(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) throw new Error("nats connection closed");
  await nc.flush();
}
