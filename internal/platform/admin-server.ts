import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Health } from "./health.js";

/**
 * The admin port every process serves: /healthz (alive), /readyz (ready for
 * traffic: started, not stopping, dependencies up) and /metrics (Prometheus).
 */
export class AdminServer {
  private readonly server: Server;

  constructor(health: Health, registry: Registry) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const send = (status: number, body: string, type = "application/json") => {
        res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
        res.end(body);
      };
      if (req.method !== "GET") return send(405, JSON.stringify({ error: "method not allowed" }));
      if (path === "/healthz") return send(200, JSON.stringify({ status: "alive" }));
      if (path === "/readyz") {
        health.report().then(
          (report) => send(report.status === "ok" ? 200 : 503, JSON.stringify(report)),
          () => send(503, JSON.stringify({ status: "down" })),
        );
        return;
      }
      if (path === "/metrics") {
        registry.metrics().then(
          (text) => send(200, text, registry.contentType),
          () => send(500, "metrics unavailable", "text/plain"),
        );
        return;
      }
      send(404, JSON.stringify({ error: "not found" }));
    });
  }

  /** Binds the port (0 picks a free one) and returns the bound port. */
  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
