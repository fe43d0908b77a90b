// One socket.io server for the end-to-end tests, run with Node.js (`node socketio_upstream.mjs
// NAME`): no adapter, so a session exists on this process only, as in a real deployment that
// relies on sticky sessions. Listens on 127.0.0.1 (a free port).
//
// Protocol on stdout, one JSON object per line:
//   {"ready": NAME, "port": N}
//   {"event": "connection", "name", "sid"}                     a socket.io client connected
//   {"event": "session_error", "name", "code", "message"}     engine.io refused a request
//                                                              (code 1: "Session ID unknown")
//
// Each client may emit "echo" with any payload; the acknowledgement is
// { server: NAME, payload, transport } (transport: "polling" or "websocket").
import { createServer } from "node:http";
import { Server } from "socket.io";

const name = process.argv[2];
const report = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

const http = createServer();
const io = new Server(http, { serveClient: false });
io.engine.on(
  "connection_error",
  (error) => report({ event: "session_error", name, code: error.code, message: error.message }),
);
io.on("connection", (socket) => {
  report({ event: "connection", name, sid: socket.conn.id });
  socket.on(
    "echo",
    (payload, ack) => ack({ server: name, payload, transport: socket.conn.transport.name }),
  );
});
http.listen(0, "127.0.0.1", () => report({ ready: name, port: http.address().port }));
