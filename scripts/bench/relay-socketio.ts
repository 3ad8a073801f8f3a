import { createServer } from "node:http";
import { connect } from "nats";
import { Server } from "socket.io";

/**
 * Reference: the same relay on Socket.IO (the common alternative): one NATS
 * subscription, each event emitted to its room. Env as relay-uws.
 */
const nc = await connect({ servers: process.env["NATS_URL"] ?? "nats://127.0.0.1:4222" });
const http = createServer();
const ioServer = new Server(http, { transports: ["websocket"], serveClient: false, perMessageDeflate: false });
ioServer.on("connection", (socket) => {
  const room = String(socket.handshake.query["room"] ?? "");
  void socket.join(room);
  socket.emit("joined");
});
const decoder = new TextDecoder();
nc.subscribe(process.env["SUBJECT"] ?? ">", {
  callback: (_error, message) => {
    const tokens = message.subject.split(".");
    ioServer.to(tokens[tokens.length - 2]!).emit("e", decoder.decode(message.data));
  },
});
http.listen(Number(process.env["PORT"] ?? 0), "127.0.0.1", () => {
  const address = http.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ msg: "ready", http_port: address.port })}\n`);
});
process.on("SIGTERM", () => {
  void ioServer.close();
  void nc.close().then(() => process.exit(0));
});
