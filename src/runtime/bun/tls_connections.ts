/**
 * The client connections of Bun's TLS listener (tls_server.ts), for what Bun's `node:http2`
 * server does not do itself (measured on Bun 1.4.5: `keepAliveTimeout`, `headersTimeout`,
 * `requestTimeout` close nothing; `setTimeout` only reports; `server.close()` ends every idle
 * HTTP/1.1 keep-alive connection within milliseconds, which is why the listener never calls it):
 * idle keep-alive connections closed after `keepalive_timeout`, connections that never send a
 * request closed after `client_header_timeout`, and the graceful stop, by the plain-HTTP front's
 * rules (front/server.ts): an idle HTTP/1.1 keep-alive connection is closed only once quiet for
 * {@link STOP_IDLE_MS}, seen so at two timely sweeps; until then its next request is answered with
 * `Connection: close`. One interval sweeps every connection's clock, as the front does: no timer
 * per request or connection.
 *
 * A connection is an HTTP/1.1 socket or an HTTP/2 session; each counts its requests in flight.
 *
 * @module
 */
import { STOP_IDLE_MS } from "../front/server.ts";

/** How often the sweep looks at the connections' clocks. */
const SWEEP_MS = 250;
/** A sweep later than this past its time finds the event loop lagging (as the front's). */
const SWEEP_LATE_MS = 100;

/** One client connection: an HTTP/1.1 TLS socket or an HTTP/2 session. */
export class TlsConnection {
  /** Requests whose response is not over yet. */
  inFlight = 0;
  /** Requests received on it. */
  requests = 0;
  /** When it was accepted, then when its last response ended. */
  idleSince = Date.now();
  /** The socket of an HTTP/2 session: the session ends it; a stop waits for it to close (its
   * last bytes written) and destroys it only once the grace period is over. */
  passive = false;
  /** An HTTP/2 session: GOAWAY tells its client which streams were served, so a stop ends it as
   * soon as it is idle; an HTTP/1.1 connection has no such signal (see `#closeQuiet`). */
  session = false;

  constructor(
    readonly owner: TlsConnections,
    /** Ends it: `graceful` lets an HTTP/2 session finish its streams (GOAWAY). */
    readonly end: (graceful: boolean) => void,
  ) {}

  /** A request arrived; {@link TlsConnection.finished} when its response is over. */
  started(): void {
    this.inFlight++;
    this.requests++;
  }

  finished(): void {
    this.inFlight--;
    this.idleSince = Date.now();
    // Stopping: an HTTP/1.1 connection answered with `connection: close` ends by itself (this
    // makes sure); an HTTP/2 session gets its GOAWAY once its streams are over.
    if (this.inFlight === 0 && this.owner.stopping) this.end(true);
  }
}

/** The timeouts the sweep applies (ms; 0 = none). */
export interface ConnectionTimeouts {
  /** `client_header_timeout`: a connection with no request yet is closed after it. */
  readonly headerMs: number;
  /** `keepalive_timeout`: a connection idle between requests is closed after it. */
  readonly keepaliveMs: number;
}

/** Every open connection of one listener, its sweep and its stop. */
export class TlsConnections {
  readonly #all = new Set<TlsConnection>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped: (() => void) | undefined;
  stopping = false;
  /** Stopping: the connections the last sweep saw quiet, with their request counts then. */
  #quiet = new Map<TlsConnection, number>();
  /** Stopping: when the last sweep looked for quiet connections. */
  #lastQuietSweep = 0;

  constructor(readonly timeouts: ConnectionTimeouts) {}

  /**
   * Tracks a new connection until {@link TlsConnections.remove}. One accepted as the listener
   * closed is served like any (its request answered with `Connection: close` when stopping):
   * closing it would fail the request its client is sending.
   */
  add(end: (graceful: boolean) => void, session = false): TlsConnection {
    const connection = new TlsConnection(this, end);
    connection.session = session;
    this.#all.add(connection);
    if (this.stopping) {
      // A session made while stopping: its GOAWAY after its first streams.
      this.#timer ??= setInterval(this.#sweep, SWEEP_MS);
    } else if (this.timeouts.headerMs > 0 || this.timeouts.keepaliveMs > 0) {
      this.#timer ??= setInterval(this.#sweep, SWEEP_MS);
    }
    return connection;
  }

  /** The connection closed (or was handed to a WebSocket). */
  remove(connection: TlsConnection): void {
    this.#all.delete(connection);
    this.#quiet.delete(connection);
    if (this.#all.size === 0) this.#stopped?.();
  }

  /**
   * Drains for up to `graceMs` (the listening socket is closed already), then ends what is left:
   * requests under way and first requests of connections are answered with `Connection: close`;
   * idle HTTP/2 sessions get GOAWAY at once; an idle HTTP/1.1 keep-alive connection is ended
   * (FIN, lingering) once quiet for {@link STOP_IDLE_MS} (`#closeQuiet`).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.#lastQuietSweep = Date.now();
    for (const connection of this.#all) {
      if (connection.session && connection.inFlight === 0) connection.end(true);
    }
    if (this.#all.size > 0) {
      this.#timer ??= setInterval(this.#sweep, SWEEP_MS);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#stopped = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    for (const connection of this.#all) connection.end(false);
    this.#all.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Stopping: ends the idle HTTP/1.1 keep-alive connections quiet for {@link STOP_IDLE_MS}, seen
   * so at two sweeps in a row that both came on time, as the front does: a request can wait
   * unread while the event loop lags, and a late sweep starts the count again. A connection that
   * has sent no request yet is left to its first one (`client_header_timeout` and the grace
   * period bound it).
   */
  #closeQuiet(now: number): void {
    const gap = now - this.#lastQuietSweep;
    if (gap < SWEEP_MS / 2) return;
    this.#lastQuietSweep = now;
    const seen = gap > SWEEP_MS + SWEEP_LATE_MS ? new Map<TlsConnection, number>() : this.#quiet;
    this.#quiet = new Map();
    for (const connection of this.#all) {
      if (connection.inFlight > 0 || connection.passive || connection.requests === 0) continue;
      if (connection.session) {
        connection.end(true);
        continue;
      }
      if (now - connection.idleSince < STOP_IDLE_MS) continue;
      if (seen.get(connection) === connection.requests) connection.end(true);
      else this.#quiet.set(connection, connection.requests);
    }
  }

  #sweep = (): void => {
    if (this.#all.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
    if (this.stopping) this.#closeQuiet(now);
    const { headerMs, keepaliveMs } = this.timeouts;
    for (const connection of this.#all) {
      if (connection.inFlight > 0 || connection.passive) continue;
      const limit = connection.requests === 0 ? headerMs : keepaliveMs;
      if (limit > 0 && now - connection.idleSince >= limit) {
        this.#all.delete(connection);
        connection.end(false);
      }
    }
  };
}
