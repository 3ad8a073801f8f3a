import { connect } from "nats";
import { App, us_listen_socket_close, us_socket_local_port } from "uWebSockets.js";

/**
 * Reference: the minimal uWebSockets.js relay, the ceiling for the gateway. One
 * NATS subscription for every republished event; each goes to its room's topic.
 * No auth, no resume, nothing else. Env: NATS_URL, SUBJECT (e.g. rt.<root>.*.*.>),
 * PORT. Prints its port as JSON when listening.
 */
const nc = await connect({ servers: process.env["NATS_URL"] ?? "nats://127.0.0.1:4222" });
const app = App().ws<{ room: string }>("/ws/:room", {
  maxBackpressure: 16 * 1024 * 1024,
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    res.upgrade(
      { room: req.getParameter(0) ?? "" },
      req.getHeader("sec-websocket-key"),
      req.getHeader("sec-websocket-protocol"),
      req.getHeader("sec-websocket-extensions"),
      context,
    );
  },
  open: (ws) => {
    ws.subscribe(ws.getUserData().room);
  },
});
nc.subscribe(process.env["SUBJECT"] ?? ">", {
  callback: (_error, message) => {
    // rt.<root>.<domain>.<workspace>.<action>: the room is the workspace token.
    const tokens = message.subject.split(".");
    app.publish(tokens[tokens.length - 2]!, message.data, false);
  },
});
const socket = await new Promise<NonNullable<Parameters<Parameters<typeof app.listen>[2]>[0]>>((resolve, reject) =>
  app.listen("127.0.0.1", Number(process.env["PORT"] ?? 0), (s) => (s ? resolve(s) : reject(new Error("cannot listen")))),
);
process.stdout.write(`${JSON.stringify({ msg: "ready", http_port: us_socket_local_port(socket) })}\n`);
process.on("SIGTERM", () => {
  us_listen_socket_close(socket);
  void nc.close().then(() => process.exit(0));
});
