/**
 * HTTP/2 for Deno's TLS listener (tls_listener.ts): a `Deno.serve` on a loopback port, without
 * TLS, to which each HTTP/2 connection's decrypted bytes are piped (it takes prior-knowledge
 * h2c). Deno has no public API to serve HTTP on a connection it accepted itself, and the TLS
 * listener must accept itself to stop accepting without closing open connections.
 *
 * The loopback server answers only the connections the bridge opened: each one's local port
 * names its client's address (for X-Forwarded-For); any other connection gets 400. Part of the
 * runtime seam, so `any` stands for Deno's globals.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { Handler } from "../contracts.ts";
import { toResponse } from "../shared/answer.ts";
import { failureResponse } from "../../proxy/errors.ts";

/** Bytes read at once from either side of a piped connection. */
const PIPE_CHUNK = 64 * 1024;

/** The loopback HTTP/2 server and the connections piped to it. */
export class H2Bridge {
  /** The bridge's connection's local port → the client's address. */
  readonly #clients = new Map<number, string>();
  /** Piped connections, each with its two conns (closed at the end of a stop). */
  readonly #open = new Set<{ client: any; inner: any }>();
  #retired = false;
  #shutdown: Promise<void> | undefined;
  /** Requests whose response is not wholly delivered yet (`info.completed`). */
  #inFlight = 0;
  /** Told when {@link H2Bridge.#inFlight} drops to 0 (a stop waits for it). */
  #idle: (() => void) | undefined;

  private constructor(readonly Deno: any, readonly server: any, readonly port: number) {}

  /** Starts the loopback server (throws when it cannot listen). */
  static start(
    Deno: any,
    handler: Handler,
    onError: (error: unknown) => Response,
  ): H2Bridge {
    const server = Deno.serve(
      // onListen: no "Listening on" line of Deno's own.
      { hostname: "127.0.0.1", port: 0, onListen() {}, onError },
      async (request: Request, info: any) => {
        // Requests come once the bridge has piped a connection: `bridge` is set by then.
        const remoteAddress = bridge.#clients.get(info.remoteAddr.port);
        if (remoteAddress === undefined || info.remoteAddr.hostname !== "127.0.0.1") {
          return failureResponse("bad_request");
        }
        bridge.#started(info.completed);
        return toResponse(await handler(request, { remoteAddress, protocol: "https" }));
      },
    );
    const bridge = new H2Bridge(Deno, server, server.addr.port);
    return bridge;
  }

  /** Serves an HTTP/2 client connection (its handshake done) until either side ends it. */
  async serve(client: any, remoteAddress: string): Promise<void> {
    let inner: any;
    try {
      inner = await this.Deno.connect({ hostname: "127.0.0.1", port: this.port });
      inner.setNoDelay(true);
    } catch {
      closeQuietly(client);
      return;
    }
    const port: number = inner.localAddr.port;
    const pair = { client, inner };
    this.#clients.set(port, remoteAddress);
    this.#open.add(pair);
    await Promise.all([pipe(client, inner), pipe(inner, client)]);
    closeQuietly(client);
    closeQuietly(inner);
    this.#clients.delete(port);
    this.#open.delete(pair);
    if (this.#retired && this.#open.size === 0) void this.#end();
  }

  /** No new connections will come: the server ends once the open ones have. */
  retire(): void {
    this.#retired = true;
    if (this.#open.size === 0) void this.#end();
  }

  /**
   * Stops (the listening socket is closed already): once no response is in flight (up to
   * `graceMs`), `Deno.serve`'s shutdown sends its sessions GOAWAY. Not at once: Deno 2.9.6's
   * shutdown cuts an HTTP/2 response in flight (measured: 64 KiB of a 4 MiB download). Then every
   * piped connection left is closed.
   */
  async stop(graceMs: number): Promise<void> {
    this.#retired = true;
    const deadline = Date.now() + graceMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = (ms: number) =>
      new Promise<void>((resolve) => timer = setTimeout(resolve, Math.max(0, ms)));
    if (this.#inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.#idle = resolve),
        graceOver(graceMs),
      ]);
      clearTimeout(timer);
    }
    await Promise.race([this.#end(), graceOver(deadline - Date.now())]);
    clearTimeout(timer);
    for (const { client, inner } of this.#open) {
      closeQuietly(client);
      closeQuietly(inner);
    }
  }

  /** A request arrived; `completed` settles once its response was delivered (or failed). */
  #started(completed: Promise<void> | undefined): void {
    if (completed === undefined) return;
    this.#inFlight++;
    completed.catch(() => {}).finally(() => {
      if (--this.#inFlight === 0) this.#idle?.();
    });
  }

  #end(): Promise<void> {
    this.#shutdown ??= this.server.shutdown().catch(() => {});
    return this.#shutdown!;
  }
}

/** Copies `from` to `to` until `from` ends (then half-closes `to`) or either fails (then both
 * are closed: a client gone mid-stream is a reset for the server, and the reverse). */
async function pipe(from: any, to: any): Promise<void> {
  const buffer = new Uint8Array(PIPE_CHUNK);
  try {
    for (;;) {
      const n: number | null = await from.read(buffer);
      if (n === null) break;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
    await to.closeWrite();
  } catch {
    closeQuietly(from);
    closeQuietly(to);
  }
}

function closeQuietly(conn: any): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}
