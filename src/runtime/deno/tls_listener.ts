/**
 * Deno's TLS listener: `Deno.listenTls` (SO_REUSEPORT for restarts and worker threads, ALPN h2
 * and http/1.1), and for each connection after its handshake:
 *
 * - HTTP/1.1: the plain-HTTP front (front/server.ts) over the TLS connection, so a TLS listener
 *   stops as the front does: `retire()` closes the listening socket and nothing else; `stop()`
 *   closes it, answers what arrives with `Connection: close`, and closes an idle keep-alive
 *   connection only once quiet for a second (lingering, never a reset).
 * - HTTP/2: {@link H2Bridge}, a `Deno.serve` on a loopback port the decrypted bytes are piped to
 *   (prior-knowledge h2c): Deno has no public API to serve HTTP/2 on a connection it accepted.
 *
 * `Deno.serve` with `cert`/`key`, used before, cannot stop accepting alone: its `shutdown()`
 * also closes every idle keep-alive connection at once, which failed the requests clients sent
 * right then (a restart under load lost 19-24 per handover, even with tcp_migrate_req = 1) and
 * cut a reload's open connections. Part of the runtime seam, so `any` stands for Deno's globals.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { ServerTls } from "../../config/mod.ts";
import type { ClientInfo, Handler, Listener } from "../contracts.ts";
import { type FrontOptions, listenFront } from "../front/server.ts";
import type { FrontAcceptor, FrontListen, FrontSocket } from "../front/socket.ts";
import { DenoFrontSocket } from "./front_socket.ts";
import { H2Bridge } from "./h2_bridge.ts";

/** A TLS handshake not over within this is dropped (a stop waits for handshakes under way). */
const HANDSHAKE_MS = 10_000;

/** What {@link listenDenoTls} needs besides the address. */
export interface DenoTlsOptions {
  readonly tls: ServerTls;
  readonly front: FrontOptions;
  /** Serves the HTTP/2 requests (the caller adds what TLS listeners refuse). */
  readonly h2Handler: Handler;
  /** An error thrown by the HTTP/2 handler: the response to send. */
  readonly onError: (error: unknown) => Response;
}

/** Listens with TLS on `host:port` (HTTP/1.1 by the front, HTTP/2 by the bridge). */
export async function listenDenoTls(
  Deno: any,
  address: { host: string; port: number },
  handler: Handler,
  options: DenoTlsOptions,
): Promise<Listener> {
  const bridge = H2Bridge.start(Deno, options.h2Handler, options.onError);
  let acceptor: TlsAcceptor | undefined;
  const listen: FrontListen = (host, port, reusePort, onSocket) => {
    try {
      acceptor = new TlsAcceptor(
        Deno,
        {
          hostname: host,
          port,
          reusePort,
          transport: "tcp",
          cert: options.tls.cert,
          key: options.tls.key,
          alpnProtocols: ["h2", "http/1.1"],
        },
        onSocket,
        (conn, remoteAddress) => bridge.serve(conn, remoteAddress),
      );
    } catch (error) {
      bridge.retire();
      return Promise.reject(error);
    }
    return Promise.resolve(acceptor);
  };
  const front = await listenFront(
    listen,
    address.host,
    address.port,
    httpsHandler(handler),
    options.front,
  );
  return {
    host: front.host,
    port: front.port,
    async stop(graceMs: number) {
      const h2 = acceptor!.close().then(() => bridge.stop(graceMs));
      await Promise.all([front.stop(graceMs), h2]);
    },
    async retire() {
      await Promise.all([front.retire(), acceptor!.close().then(() => bridge.retire())]);
    },
  };
}

/** The front's handler with `protocol: "https"` (one ClientInfo per connection, kept). */
function httpsHandler(handler: Handler): Handler {
  const https = new WeakMap<ClientInfo, ClientInfo>();
  return (request, client) => {
    let info = https.get(client);
    if (info === undefined) {
      info = { ...client, protocol: "https" };
      https.set(client, info);
    }
    return handler(request, info);
  };
}

/**
 * The listening socket: accepts, runs each handshake (off the accept loop), then hands an
 * HTTP/1.1 connection to the front and an HTTP/2 one to the bridge.
 */
class TlsAcceptor implements FrontAcceptor {
  readonly host: string;
  readonly port: number;
  readonly #listener: any;
  readonly #pending = new Set<Promise<void>>();
  readonly #loop: Promise<void>;
  #closing: Promise<void> | undefined;

  constructor(
    readonly Deno: any,
    listenOptions: Record<string, unknown>,
    readonly onSocket: (socket: FrontSocket) => void,
    readonly onH2: (conn: any, remoteAddress: string) => void,
  ) {
    this.#listener = Deno.listenTls(listenOptions);
    this.host = this.#listener.addr.hostname;
    this.port = this.#listener.addr.port;
    this.#loop = this.#acceptLoop();
  }

  /** Stops accepting; resolves once the accept loop has ended and every handshake under way
   * has been handed over (or failed): the front's drain counts them. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        this.#listener.close();
      } catch {
        // closed already
      }
      await this.#loop;
      while (this.#pending.size > 0) await Promise.all(this.#pending);
    })();
    return this.#closing;
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: any;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        // Closed (stop), or a transient failure such as EMFILE: wait a little and go on.
        if (
          error instanceof this.Deno.errors.BadResource ||
          error instanceof this.Deno.errors.Interrupted
        ) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      const handshake = this.#handOver(conn);
      this.#pending.add(handshake);
      void handshake.finally(() => this.#pending.delete(handshake));
    }
  }

  async #handOver(conn: any): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // A TLS conn has no setNoDelay (Deno 2.9): the front writes a response's head and body
      // together where it can.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("TLS handshake timed out")), HANDSHAKE_MS);
      });
      const { alpnProtocol } = await Promise.race([conn.handshake(), timeout]);
      if (alpnProtocol === "h2") this.onH2(conn, conn.remoteAddr.hostname);
      else this.onSocket(new DenoFrontSocket(conn));
    } catch {
      // A failed handshake is the client's problem (an untrusted certificate, a port scan).
      try {
        conn.close();
      } catch {
        // closed already
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
