/**
 * Our own HTTP/1.1 server for plain-HTTP listeners, on raw sockets, the same on Deno and Bun
 * (the runtime only accepts connections: {@link FrontListen}). It owns what the runtimes' servers
 * cannot give exactly: request framing, Host rules, pipelining, Content-Length kept, and the
 * client limits: `client_header_timeout` (408), `keepalive_timeout` (silent close),
 * `max_connections` (503). One interval sweeps every connection's clock: no timer per request.
 *
 * @module
 */
import type { Handler, Listener } from "../contracts.ts";
import { failureResponse } from "../../proxy/errors.ts";
import { headCap } from "./head.ts";
import { Connection, type ConnectionHost, DISCARDING, LINGERING, WAITING } from "./connection.ts";
import { encodeHead, LENGTH, responseHead } from "./response.ts";
import type { FrontAcceptor, FrontListen, FrontSocket } from "./socket.ts";

/** The front's settings (ListenOptions, from `[server]`). */
export interface FrontOptions {
  /** `client_header_timeout`; 0 = none. */
  readonly clientHeaderTimeoutMs: number;
  /** `keepalive_timeout`; 0 = never. */
  readonly keepaliveTimeoutMs: number;
  /** `max_connections`; 0 = no limit. */
  readonly maxConnections: number;
  /** `client_max_header_size` (the hard head cap is derived from it). */
  readonly clientMaxHeaderSize: number;
  readonly reusePort: boolean;
  /** Told when a client connection opens (+1) and closes (-1). */
  readonly onClientConnection?: (delta: 1 | -1) => void;
}

/** How often the sweep looks at the connections' clocks. */
const SWEEP_MS = 250;
/** A sweep later than this past its time finds the event loop lagging (see `#closeQuiet`). */
const SWEEP_LATE_MS = 100;
/** How long a lingering close waits for the client to close its side. */
const LINGER_MS = 2000;
/** Unread request body read and dropped after a response, at most (more: the connection closes). */
const DISCARD_LIMIT = 1 << 20;
/**
 * Once stopping, an idle keep-alive connection is closed when it has been quiet this long: one
 * that carries requests often sends its next one first, which is answered with
 * `Connection: close`. Closing an idle keep-alive connection at once races the request its client
 * may be sending right then (the request meets a closed socket and fails); a second of quiet
 * makes that a client that waited a second and sends in the instant of the FIN. The closes are
 * spread by the connections' own quiet (HAProxy's `close-spread-time`, without a setting).
 */
export const STOP_IDLE_MS = 1000;

/** Starts the front on `host:port`. */
export async function listenFront(
  listen: FrontListen,
  host: string,
  port: number,
  handler: Handler,
  options: FrontOptions,
): Promise<Listener> {
  const server = new FrontServer(handler, options);
  const acceptor = await listen(host, port, options.reusePort, (socket) => server.accept(socket));
  server.acceptor = acceptor;
  server.authority = acceptor.host.includes(":")
    ? `[${acceptor.host}]:${acceptor.port}`
    : `${acceptor.host}:${acceptor.port}`;
  return {
    host: acceptor.host,
    port: acceptor.port,
    stop: (graceMs) => server.stop(graceMs),
    retire: () => server.retire(),
  };
}

class FrontServer implements ConnectionHost {
  readonly connections = new Set<Connection>();
  readonly maxHead: number;
  readonly discardLimit = DISCARD_LIMIT;
  authority = "";
  acceptor: FrontAcceptor | undefined;
  stopping = false;
  /** No longer accepting (a reload moved the listener); not stopping. */
  retired = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped: (() => void) | undefined;
  /** Stopping: the connections the last sweep saw quiet, with their request counts then. */
  #quiet = new Map<Connection, number>();
  /** Stopping: when the last sweep looked for quiet connections. */
  #lastQuietSweep = 0;

  constructor(readonly handler: Handler, readonly options: FrontOptions) {
    this.maxHead = headCap(options.clientMaxHeaderSize);
  }

  accept(socket: FrontSocket): void {
    // A connection accepted as the listener closes (stop, retire) is served, its request answered
    // (with `Connection: close` when stopping): closing it would fail the request being sent.
    const max = this.options.maxConnections;
    if (max > 0 && this.connections.size >= max) return refuse(socket);
    const connection = new Connection(this, socket);
    this.connections.add(connection);
    this.options.onClientConnection?.(1);
    this.#timer ??= setInterval(this.#sweep, SWEEP_MS);
    connection.run();
  }

  release(connection: Connection): void {
    if (this.connections.delete(connection)) this.options.onClientConnection?.(-1);
    if (this.connections.size === 0) this.#stopped?.();
  }

  /** Stops accepting; the open connections go on as before (their own timeouts apply). */
  async retire(): Promise<void> {
    this.retired = true;
    await this.acceptor?.close();
  }

  /**
   * Stops accepting at once (the listening socket closes: with SO_REUSEPORT, another process on
   * the port takes the new connections) and drains for up to `graceMs`: requests under way and
   * heads arriving and first requests of new connections are answered with `Connection: close`;
   * an idle keep-alive connection is closed with a lingering close once quiet for
   * {@link STOP_IDLE_MS} (see `#closeQuiet`).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    // A connection accepted as the socket closed is served too: the drain counts it.
    await this.acceptor?.close();
    this.#lastQuietSweep = Date.now();
    if (this.connections.size > 0) {
      this.#timer ??= setInterval(this.#sweep, SWEEP_MS);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#stopped = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    for (const connection of this.connections) connection.close();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Stopping: ends the idle keep-alive connections that have been quiet long enough, seen so at
   * two sweeps in a row that both came on time and an interval apart. Quiet is what this process
   * has read: a request can wait in the socket's buffer while the event loop lags (a starved
   * process: measured, 200 connections closed unread under a load average of 12 on 2 cores). A
   * late sweep starts the count again; by the next timely one, the reads ready meanwhile were
   * done. A connection that has sent nothing yet is left to its first request (answered with
   * `Connection: close`; `client_header_timeout` and the grace period bound it): its client
   * connected to send one.
   */
  #closeQuiet(now: number): void {
    const gap = now - this.#lastQuietSweep;
    if (gap < SWEEP_MS / 2) return;
    this.#lastQuietSweep = now;
    const seen = gap > SWEEP_MS + SWEEP_LATE_MS ? new Map<Connection, number>() : this.#quiet;
    this.#quiet = new Map();
    for (const connection of this.connections) {
      const since = quietSince(connection);
      if (since === undefined || now - since < STOP_IDLE_MS) continue;
      if (seen.get(connection) === connection.requests) connection.closeIdle();
      else this.#quiet.set(connection, connection.requests);
    }
  }

  #sweep = (): void => {
    if (this.connections.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
    const headerMs = this.options.clientHeaderTimeoutMs;
    const keepaliveMs = this.options.keepaliveTimeoutMs;
    if (this.stopping) this.#closeQuiet(now);
    for (const connection of this.connections) {
      switch (connection.phase) {
        case WAITING: {
          const partial = connection.end > connection.start;
          if (partial || connection.requests === 0) {
            if (headerMs > 0 && now - connection.headSince >= headerMs) {
              // Nothing at all sent: closed silently (as nginx does); a partial head gets 408.
              if (partial) connection.timeOut();
              else connection.close();
            }
          } else if (keepaliveMs > 0 && now - connection.idleSince >= keepaliveMs) {
            connection.close();
          }
          break;
        }
        case DISCARDING:
          if (headerMs > 0 && now - connection.headSince >= headerMs) connection.close();
          break;
        case LINGERING:
          if (now - connection.headSince >= LINGER_MS) connection.close();
      }
    }
  };
}

/** When `connection` went idle, if it is a keep-alive connection with nothing of a next
 * request received. */
function quietSince(connection: Connection): number | undefined {
  const idle = connection.phase === WAITING && connection.requests > 0 &&
    connection.end === connection.start;
  return idle ? connection.idleSince : undefined;
}

/** A connection over `max_connections`: 503 and closed. */
function refuse(socket: FrontSocket): void {
  const response = failureResponse("too_many_connections");
  response.text().then(async (text) => {
    const head = responseHead(response, { kind: LENGTH, length: text.length }, true, false);
    await socket.write(encodeHead(head + text));
    socket.closeWrite();
    // Give the client a moment to read the answer before the socket goes (no RST on top of it).
    setTimeout(() => socket.close(), 1000);
  }).catch(() => socket.close());
}
