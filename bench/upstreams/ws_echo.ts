/**
 * WebSocket echo upstreams for the bench's "ws" phase (bench/phases/websocket.ts): one Bun
 * process listening on several ports, each a `Bun.serve` with websocket handlers that answers
 * every message with the same bytes (binary as binary, text as text), except the text message
 * `port?`, answered with the server's port (how a client checks which server its connection
 * reached). A plain HTTP request is answered 200 with `X-Upstream: <port>` (the proxy's sticky
 * cookie is checked with it, as in the main table). No compression, 16 MiB messages at most.
 *
 *   HOST=127.0.0.1 PORTS=28130,28131,28132 bun bench/upstreams/ws_echo.ts
 *
 * @module
 */
import process from "node:process";

/** The part of Bun's server-side WebSocket this file uses. */
interface EchoSocket {
  send(message: string | Uint8Array, compress?: boolean): number;
}

/** The part of `Bun.serve`'s server this file uses. */
interface BunServer {
  upgrade(request: Request): boolean;
}

/** The part of the `Bun` global this file uses. */
interface BunGlobal {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request, server: BunServer): Response | undefined;
    websocket: {
      maxPayloadLength: number;
      perMessageDeflate: boolean;
      idleTimeout: number;
      backpressureLimit: number;
      message(ws: EchoSocket, message: string | Uint8Array): void;
    };
  }): unknown;
}

const bun = (globalThis as unknown as { Bun?: BunGlobal }).Bun;
if (bun === undefined) throw new Error("ws_echo.ts runs on Bun");

const host = process.env.HOST ?? "127.0.0.1";
const ports = (process.env.PORTS ?? "").split(",").filter(Boolean).map(Number);
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p))) {
  throw new Error(`PORTS must list ports, got ${process.env.PORTS}`);
}

/** One echo server on `port`. */
function serve(port: number): void {
  const answer = String(port);
  bun!.serve({
    hostname: host,
    port,
    fetch(request, server) {
      if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
        if (server.upgrade(request)) return undefined;
        return new Response("upgrade failed", { status: 400 });
      }
      return new Response("ws echo\n", { headers: { "X-Upstream": answer } });
    },
    websocket: {
      maxPayloadLength: 16 * 1024 * 1024,
      perMessageDeflate: false,
      idleTimeout: 0,
      backpressureLimit: 64 * 1024 * 1024,
      message(ws, message) {
        ws.send(message === "port?" ? answer : message, false);
      },
    },
  });
}

for (const port of ports) serve(port);
console.log(`ws echo on ${host}:${ports.join(",")}`);
