/**
 * The client side of a proxied WebSocket on Bun: `server.upgrade()` plus the `websocket`
 * handlers of `Bun.serve`, behind {@link WebSocketLike}. Part of the runtime seam, so `any`
 * stands for Bun's untyped server socket.
 *
 * Bun (uWebSockets) answers client pings itself and reports them; it can send pings and pongs
 * (`ws.ping`, `ws.pong`) and reports the client's pongs, so the bridge relays pings end to end.
 * With `sendPings` (on by default) it pings clients idle for `idleTimeout` (120 s) and closes
 * those that do not answer.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { UpgradeOptions, WebSocketLike } from "../contracts.ts";
import { MAX_MESSAGE_BYTES } from "../../proxy/websocket.ts";

/** The `websocket` option of `Bun.serve`: each socket's `data` is its {@link BunClientSocket}. */
export const BUN_WEBSOCKET_HANDLERS = {
  open(ws: any) {
    (ws.data as BunClientSocket).attach(ws);
  },
  message(ws: any, message: string | Uint8Array) {
    (ws.data as BunClientSocket).onmessage?.(message);
  },
  pong(ws: any, data: Uint8Array) {
    (ws.data as BunClientSocket).onpong?.(data);
  },
  drain(ws: any) {
    (ws.data as BunClientSocket).wake();
  },
  close(ws: any, code: number, reason: string) {
    (ws.data as BunClientSocket).closed(code, reason);
  },
  maxPayloadLength: MAX_MESSAGE_BYTES,
  // Bun drops (!) a message sent past this many queued bytes. The bridge waits for `drain`
  // beyond 1 MiB, so room for one more whole message is enough.
  backpressureLimit: 2 * MAX_MESSAGE_BYTES,
  // Frames are re-encoded toward the upstream: compressing one side only buys nothing.
  perMessageDeflate: false,
};

/** `server.upgrade` as an {@link UpgradeWebSocket}; throws when Bun refuses the handshake. */
export function bunUpgrade(
  server: any,
  request: Request,
  options: UpgradeOptions,
): { socket: WebSocketLike; response: Response } {
  const socket = new BunClientSocket();
  let headers = options.headers;
  if (options.protocol !== undefined) {
    headers = [["sec-websocket-protocol", options.protocol], ...headers];
  } else {
    // Bun confirms the client's first offer when no protocol is given: the upstream chose none.
    request.headers.delete("sec-websocket-protocol");
  }
  if (!server.upgrade(request, { data: socket, headers })) {
    throw new TypeError("not a valid WebSocket handshake");
  }
  // Bun has answered the handshake itself; what the handler returns now is ignored.
  return { socket, response: new Response(null, { status: 101 }) };
}

class BunClientSocket implements WebSocketLike {
  onopen?: () => void;
  onmessage?: (data: string | Uint8Array) => void;
  onpong?: (data: Uint8Array) => void;
  onclose?: (code: number, reason: string) => void;
  #ws: any;
  #closed = false;
  #wake: (() => void) | undefined;

  /** Bun opens the socket inside `server.upgrade()`, before the bridge has set its events. */
  attach(ws: any): void {
    this.#ws = ws;
    queueMicrotask(() => this.onopen?.());
  }

  closed(code: number, reason: string): void {
    this.#closed = true;
    this.wake();
    this.onclose?.(code, reason);
  }

  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  get bufferedAmount(): number {
    return this.#closed ? 0 : this.#ws.getBufferedAmount();
  }

  send(data: string | Uint8Array): void {
    if (!this.#closed) this.#ws.send(data);
  }

  close(code?: number, reason?: string): void {
    if (this.#closed) return;
    if (code === undefined) this.#ws.close();
    else this.#ws.close(code, reason);
  }

  abort(): void {
    if (!this.#closed) this.#ws.terminate();
  }

  drained(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      // Bun reports `drain` only after a send it had to queue; look again anyway.
      setTimeout(() => this.wake(), 50);
    });
  }

  ping(data: Uint8Array): void {
    if (!this.#closed) this.#ws.ping(data);
  }

  pong(data: Uint8Array): void {
    if (!this.#closed) this.#ws.pong(data);
  }
}
