/**
 * Bun's TLS listener: `node:http2`'s `createSecureServer` with `allowHTTP1`, so ALPN offers h2
 * and http/1.1 on one port, instead of `Bun.serve`. `Bun.serve` drops the Content-Length of
 * every response whose body is a stream (oven-sh/bun#10507, Bun 1.4.5, no option fixes it), over
 * HTTP/1.1 and HTTP/2 alike: proxied downloads lost their size. This server writes the head the
 * gateway gives, Content-Length included (node_exchange.ts).
 *
 * The listening socket is a `node:net` server of its own (SO_REUSEPORT), whose connections are
 * handed to the secure server (`emit("connection")`): closing it stops accepting and nothing else.
 * The secure server's own `close()` also ends every idle HTTP/1.1 keep-alive connection at once
 * (Bun 1.4.5, measured: FIN 5 ms after it), which failed the requests clients sent right then
 * (a restart under load lost 21-330 per handover) and cut a reload's open connections.
 *
 * Around node's server: WebSocket handshakes over HTTP/1.1 (tls_upgrade.ts), and the client
 * connections' timeouts and the graceful stop, which Bun's node server does not do itself
 * (tls_connections.ts). Part of the runtime seam, so `any` stands for node's compatibility
 * objects.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import { createSecureServer } from "node:http2";
import { createServer as createNetServer, type Socket } from "node:net";
import type { Address } from "../../config/mod.ts";
import type { Handler, Listener, ListenOptions } from "../contracts.ts";
import { failureResponse } from "../../proxy/errors.ts";
import { raiseBunHeadLimit } from "./limits.ts";
import { type TlsConnection, TlsConnections } from "./tls_connections.ts";
import {
  hasBody,
  requestBody,
  requestHeaders,
  requestUrl,
  writeResponse,
} from "./node_exchange.ts";
import { respond, serveUpgrade } from "./tls_upgrade.ts";

/** How long a stop's graceful close of an HTTP/1.1 connection waits for the client's FIN. */
const LINGER_MS = 2000;

/** The client's address as text, without the IPv4-mapped prefix of a dual-stack socket. */
function clientAddress(socket: any): string {
  const address: string = socket?.remoteAddress ?? "";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/**
 * Listens with TLS on `address` (HTTP/2 and HTTP/1.1 by ALPN); resolves once listening. Before
 * the handler: nothing (runtime.ts wraps it with the refusals of TLS listeners).
 */
export async function listenBunTls(
  address: Pick<Address, "host" | "port">,
  handler: Handler,
  options: ListenOptions,
): Promise<Listener> {
  const tls = options.tls;
  if (tls === undefined) throw new TypeError("listenBunTls needs options.tls");
  if (options.clientMaxHeaderSize !== undefined) {
    await raiseBunHeadLimit(options.clientMaxHeaderSize);
  }
  const keepaliveMs = options.keepaliveTimeoutMs ?? 75_000;
  const connections = new TlsConnections({
    headerMs: options.clientHeaderTimeoutMs ?? 60_000,
    keepaliveMs,
  });
  const server: any = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: true });
  // Bun does not close idle connections by it (tls_connections.ts does), but writes it in the
  // Keep-Alive header of HTTP/1.1 answers, so clients know.
  server.keepAliveTimeout = keepaliveMs;
  const bySocket = new WeakMap<object, TlsConnection>();
  const bySession = new WeakMap<object, TlsConnection>();
  const endsOf = new WeakMap<object, ConnectionEnds>();
  let authority = "";

  server.on("connection", (socket: Socket) => {
    const ends = new ConnectionEnds(socket);
    const connection = connections.add((graceful) => ends.end(graceful));
    bySocket.set(socket, connection);
    endsOf.set(socket, ends);
    socket.on("close", () => connections.remove(connection));
    // A client resetting its connection is no error of the gateway's (and must not throw).
    socket.on("error", () => {});
  });
  server.on("session", (session: any) => {
    const connection = connections.add(
      (graceful) => graceful ? session.close() : session.destroy(),
      true,
    );
    bySession.set(session, connection);
    session.on("close", () => connections.remove(connection));
    session.on("error", () => {});
  });
  server.on("secureConnection", (socket: Socket & { alpnProtocol?: string | false }) => {
    // The TLS socket wraps the accepted one (its `_parent`): requests name the TLS socket.
    const raw = (socket as any)._parent ?? socket;
    const connection = bySocket.get(raw);
    if (connection !== undefined && raw !== socket) {
      bySocket.set(socket, connection);
      endsOf.get(raw)?.wrapped(socket);
    }
    // An HTTP/2 connection is its session's from now on; the socket is still waited for (a
    // session's 'close' may come before its last bytes are written).
    if (socket.alpnProtocol === "h2" && connection !== undefined) connection.passive = true;
  });
  server.on("request", (req: any, res: any) => {
    const h2 = req.httpVersionMajor === 2;
    const connection = h2 ? bySession.get(req.stream?.session) : bySocket.get(req.socket);
    connection?.started();
    const exchange = new Exchange();
    res.on("close", () => {
      connection?.finished();
      // The client went away before the response was over: the proxy stops (and cancels).
      // Not `res.writableFinished`: Bun reports 'finish' for an HTTP/2 stream the client reset.
      if (!exchange.responded) exchange.abort();
    });
    serve(req, res, exchange).catch((error) => {
      // A head node refuses to write (a header value it finds invalid): nothing can be sent.
      console.error(
        `sticky-gateway: internal error: ${error instanceof Error ? error.stack : error}`,
      );
      res.destroy();
    });
  });
  server.on("upgrade", (req: any, socket: Socket, head: Uint8Array) => {
    // The connection is the WebSocket's (or closed after the answer) from now on.
    untrack(bySocket, socket, connections);
    void serveUpgrade(req, socket, head, handler, clientAddress(socket), authority);
  });
  // A TLS handshake that fails is the client's problem; node would report it as the server's.
  server.on("tlsClientError", () => {});
  server.on("sessionError", () => {});

  async function serve(req: any, res: any, exchange: Exchange): Promise<void> {
    let response: Response;
    const method: string = req.method;
    const url = requestUrl(req, authority);
    // HTTP/1.1 requires Host (RFC 9112 §3.2), as the plain-HTTP front does.
    const hostless = req.httpVersionMajor === 1 && req.httpVersionMinor === 1 &&
      req.headers.host === undefined;
    if (url === null || hostless) response = failureResponse("bad_request");
    else {
      let request: TlsRequest | undefined;
      try {
        request = new TlsRequest(url, {
          method,
          headers: requestHeaders(req.rawHeaders),
          body: hasBody(req, method) ? requestBody(req) : null,
          // @ts-ignore: a streamed request body (not in every version of the DOM types)
          duplex: "half",
        });
        request.exchange = exchange;
      } catch {
        // Header names or values `Headers` refuses.
        response = failureResponse("bad_request");
      }
      response ??= await respond(handler, request!, {
        remoteAddress: clientAddress(req.socket),
        protocol: "https",
      });
    }
    // A request refused for its framing: the connection's next bytes cannot be trusted.
    const close = connections.stopping ||
      (response.status === 400 && response.headers.has("x-gateway-error"));
    exchange.responded = await writeResponse(req, res, response, close);
  }

  const listening: any = createNetServer((socket) => server.emit("connection", socket));
  await new Promise<void>((resolve, reject) => {
    listening.once("error", reject);
    listening.listen(
      { host: address.host, port: address.port, reusePort: options.reusePort ?? false },
      () => {
        listening.off("error", reject);
        resolve();
      },
    );
  });
  const port: number = listening.address().port;
  authority = address.host.includes(":") ? `[${address.host}]:${port}` : `${address.host}:${port}`;
  return {
    host: address.host,
    port,
    async stop(graceMs: number) {
      // Not the secure server's close(): it would end the idle connections at once.
      listening.close();
      await connections.stop(graceMs);
    },
    retire() {
      // Stops accepting (node closes the listening handle at once); open connections and
      // sessions go on until they end.
      listening.close();
      return Promise.resolve();
    },
  };
}

/**
 * How a stop or a timeout ends an HTTP/1.1 connection: gracefully, the TLS socket's end
 * (close_notify, FIN) and a lingering close (the client's next bytes are read, not answered with
 * a reset) bounded by {@link LINGER_MS}; otherwise both sockets destroyed.
 */
class ConnectionEnds {
  #tls: Socket | undefined;
  #lingering = false;

  constructor(readonly socket: Socket) {}

  /** The handshake is done: `tls` carries the connection from now on. */
  wrapped(tls: Socket): void {
    this.#tls = tls;
  }

  end(graceful: boolean): void {
    if (!graceful) {
      this.#tls?.destroy();
      this.socket.destroy();
      return;
    }
    if (this.#lingering) return;
    this.#lingering = true;
    (this.#tls ?? this.socket).end();
    setTimeout(() => this.end(false), LINGER_MS).unref?.();
  }
}

/** Whether the client went away, for the request's signal (made only when read). */
class Exchange {
  #controller: AbortController | undefined;
  #gone = false;
  /** The whole response was handed to node (its end written). */
  responded = false;

  signal(): AbortSignal {
    if (this.#gone) return AbortSignal.abort();
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  abort(): void {
    this.#gone = true;
    this.#controller?.abort();
  }
}

/** `request.signal` made on first read (the proxy reads it for slow exchanges only), as the
 * plain-HTTP front does: no AbortController per request. */
class TlsRequest extends Request {
  exchange!: Exchange;
}
Object.defineProperty(TlsRequest.prototype, "signal", {
  get(this: TlsRequest): AbortSignal {
    return this.exchange.signal();
  },
});

/** Stops tracking a socket's connection (it became an HTTP/2 session, or a WebSocket). */
function untrack(
  bySocket: WeakMap<object, TlsConnection>,
  socket: Socket,
  connections: TlsConnections,
): void {
  const connection = bySocket.get(socket);
  if (connection === undefined) return;
  bySocket.delete(socket);
  connections.remove(connection);
}
