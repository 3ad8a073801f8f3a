import { App, us_listen_socket_close, us_socket_local_port, type HttpResponse, type TemplatedApp, type us_listen_socket } from "uWebSockets.js";
import type { Logger } from "../platform/logger.js";
import type { SocketEndpoint } from "./realtime/sockets.js";
import { writeSecurityHeaders, type Router } from "./router.js";
import type { Asset, StaticFiles } from "./static-files.js";

/** The gateway's HTTP (and WebSocket) listener on uWebSockets.js. */
export class GatewayServer {
  readonly app: TemplatedApp = App();
  private listenSocket: us_listen_socket | undefined;

  constructor(private readonly log: Logger) {}

  /** Registers the WebSocket endpoint, the static files (docs assets, the test page's script and styles, the client SDK) and the REST routes. */
  mount(router: Router, files: StaticFiles, sockets: SocketEndpoint): void {
    sockets.mount(this.app);
    this.app.get("/docs/assets/:file", (res, req) => serveAsset(res, files.docsAsset(req.getParameter(0) ?? "")));
    this.app.get("/docs.js", (res) => serveAsset(res, files.docsScript()));
    this.app.get("/app.js", (res) => serveAsset(res, files.testPageScript()));
    this.app.get("/app.css", (res) => serveAsset(res, files.testPageStyles()));
    // The compiled client SDK (dist/api/client/*.js, tests excluded), which the test page imports.
    this.app.get("/sdk/:file", (res, req) => serveAsset(res, files.sdkModule(req.getParameter(0) ?? "")));
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

/** Answers a static file (with its cache-control) or 404 when there is none (unknown name, unreadable file). */
function serveAsset(res: HttpResponse, asset: Asset | undefined | Promise<Asset | undefined>): void {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const reply = (status: string, type: string, body: string | Buffer, cacheControl: string | undefined) => {
    if (aborted) return;
    res.cork(() => {
      res.writeStatus(status).writeHeader("content-type", type);
      if (cacheControl) res.writeHeader("cache-control", cacheControl);
      writeSecurityHeaders(res);
      res.end(body);
    });
  };
  const notFound = () => reply("404 Not Found", "text/plain; charset=utf-8", "not found", undefined);
  Promise.resolve(asset)
    .then((found) => (found ? found.body.then((body) => reply("200 OK", found.contentType, body, found.cacheControl)) : notFound()))
    .catch(notFound);
}
