import { App, us_listen_socket_close, us_socket_local_port, type TemplatedApp, type us_listen_socket } from "uWebSockets.js";
import type { Logger } from "../platform/logger.js";
import type { SocketEndpoint } from "./realtime/sockets.js";
import type { Router } from "./router.js";
import { docsAssets, type StaticFiles } from "./static-files.js";

/** The gateway's HTTP (and WebSocket) listener on uWebSockets.js. */
export class GatewayServer {
  readonly app: TemplatedApp = App();
  private listenSocket: us_listen_socket | undefined;

  constructor(private readonly log: Logger) {}

  /** Registers the WebSocket endpoint, the docs assets and the REST routes. */
  mount(router: Router, files: StaticFiles, sockets: SocketEndpoint): void {
    sockets.mount(this.app);
    this.app.get("/docs/assets/:file", (res, req) => {
      const name = req.getParameter(0) ?? "";
      const file = files.docsAsset(name);
      let aborted = false;
      res.onAborted(() => (aborted = true));
      const reply = (status: string, type: string, body: string | Buffer) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus(status).writeHeader("content-type", type).writeHeader("cache-control", "public, max-age=86400");
          res.end(body);
        });
      };
      if (!file) {
        reply("404 Not Found", "text/plain", "not found");
        return;
      }
      file.then(
        (body) => reply("200 OK", docsAssets[name]!, body),
        () => reply("404 Not Found", "text/plain", "not found"),
      );
    });
    router.mount(this.app);
  }

  /** Binds the port (0 picks one) and returns it. */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen("0.0.0.0", port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on port ${port}`));
        this.listenSocket = socket;
        resolve(us_socket_local_port(socket));
      });
    });
  }

  /** Stops accepting connections; open requests finish on their own. */
  stopListening(): void {
    if (this.listenSocket) {
      us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
      this.log.info("http listener closed");
    }
  }

  close(): void {
    this.stopListening();
    this.app.close();
  }
}
