/**
 * The client connections of Bun's TLS listener (tls_server.ts), for what Bun's `node:http2`
 * server does not do itself (measured on Bun 1.4.5: `keepAliveTimeout`, `headersTimeout`,
 * `requestTimeout` and `server.close()` close nothing; `setTimeout` only reports): idle
 * keep-alive connections closed after `keepalive_timeout`, connections that never send a
 * request closed after `client_header_timeout`, and the graceful stop. One interval sweeps every
 * connection's clock, as the plain-HTTP front does: no timer per request or connection.
 *
 * A connection is an HTTP/1.1 socket or an HTTP/2 session; each counts its requests in flight.
 *
 * @module
 */

/** How often the sweep looks at the connections' clocks. */
const SWEEP_MS = 250;

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
    // Stopping: an HTTP/1.1 connection answered with `connection: close` ends by itself; this
    // ends the others as soon as they are idle.
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

  constructor(readonly timeouts: ConnectionTimeouts) {}

  /** Tracks a new connection until {@link TlsConnections.remove}. */
  add(end: (graceful: boolean) => void): TlsConnection {
    const connection = new TlsConnection(this, end);
    this.#all.add(connection);
    if (this.stopping) connection.end(true);
    else if (this.timeouts.headerMs > 0 || this.timeouts.keepaliveMs > 0) {
      this.#timer ??= setInterval(this.#sweep, SWEEP_MS);
    }
    return connection;
  }

  /** The connection closed (or was handed to a WebSocket). */
  remove(connection: TlsConnection): void {
    this.#all.delete(connection);
    if (this.#all.size === 0) this.#stopped?.();
  }

  /** Ends idle connections at once, lets busy ones finish for up to `graceMs`, then ends all. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const connection of this.#all) {
      if (connection.inFlight === 0 && !connection.passive) connection.end(true);
    }
    if (this.#all.size > 0) {
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

  #sweep = (): void => {
    if (this.#all.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
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
