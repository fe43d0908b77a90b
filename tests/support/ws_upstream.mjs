// WebSocket upstream servers for the end-to-end tests, run with Node.js (`node ws_upstream.mjs
// NAME...`): one HTTP server per name on 127.0.0.1, upgraded by the `ws` package (an
// implementation independent of the gateway's). Node runs it because the `ws` server needs
// node:http's `upgrade` event, which neither Deno's nor Bun's node:http provides faithfully.
//
// Protocol on stdout, one JSON object per line:
//   {"ready": NAME, "port": N}                          each server once listening
//   {"event": "upgrade", "name", "url", "headers"}      a handshake arrived (raw header pairs)
//   {"event": "close", "name", "code", "reason"}        a session closed
//
// Each session understands text commands; anything else is echoed (text as text, binary as
// binary):
//   whoami              → the server's name
//   close CODE REASON   → the server closes with CODE and REASON
//   ping PAYLOAD        → the server pings; on the pong it sends "pong PAYLOAD"
//   fragments           → "frag-" "ment" "ed" as one text message in three frames
//   terminate           → the server drops the TCP connection without a close frame
//   flood N SIZE        → N binary messages of SIZE bytes (byte i of message k is (k + i) & 255)
//                         as fast as the connection takes them, then the text "flood done"
// Handshakes for /refuse are answered 403 with a body (and a Set-Cookie of the app's own); a
// 101 carries `X-Upstream: NAME` and `Set-Cookie: app=ws; Path=/`.
// Offered subprotocols: the first of the client's list that is "chat" or "superchat".
// With WS_TLS_CERT and WS_TLS_KEY (PEM files) in the environment the servers speak TLS (wss).
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { WebSocketServer } from "ws";

const SUPPORTED = new Set(["chat", "superchat"]);
const tls = process.env.WS_TLS_CERT === undefined ? undefined : {
  cert: readFileSync(process.env.WS_TLS_CERT),
  key: readFileSync(process.env.WS_TLS_KEY),
};
const createServer = (handler) =>
  tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
const report = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

function pairs(raw) {
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function start(name) {
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => [...protocols].find((p) => SUPPORTED.has(p)) ?? false,
  });
  // The 101 carries headers of the application's own, which must reach the client.
  wss.on("headers", (headers) => headers.push(`X-Upstream: ${name}`, "Set-Cookie: app=ws; Path=/"));
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-upstream": name });
    res.end(name);
  });
  server.on("upgrade", (req, socket, head) => {
    report({ event: "upgrade", name, url: req.url, headers: pairs(req.rawHeaders) });
    if (req.url.startsWith("/refuse")) {
      const body = `refused by ${name}`;
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Upstream: ${name}\r\n` +
          `Set-Cookie: app=1; Path=/\r\nContent-Length: ${body.length}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => session(name, ws));
  });
  server.listen(0, "127.0.0.1", () => report({ ready: name, port: server.address().port }));
}

function session(name, ws) {
  ws.on("message", (data, isBinary) => {
    if (isBinary) return ws.send(data, { binary: true });
    const text = data.toString("utf8");
    const [command, ...rest] = text.split(" ");
    switch (command) {
      case "whoami":
        return ws.send(name);
      case "close":
        return ws.close(Number(rest[0]), rest.slice(1).join(" "));
      case "ping":
        return ws.ping(rest.join(" "));
      case "fragments":
        ws.send("frag-", { fin: false });
        ws.send("ment", { fin: false });
        return ws.send("ed", { fin: true });
      case "terminate":
        return ws.terminate();
      case "flood": {
        const [count, size] = rest.map(Number);
        for (let k = 0; k < count; k++) {
          ws.send(Buffer.alloc(size).map((_, i) => (k + i) & 255), { binary: true });
        }
        return ws.send("flood done");
      }
      default:
        return ws.send(text);
    }
  });
  ws.on("pong", (data) => ws.send(`pong ${data.toString("utf8")}`));
  ws.on(
    "close",
    (code, reason) => report({ event: "close", name, code, reason: reason.toString("utf8") }),
  );
}

for (const name of process.argv.slice(2)) start(name);
