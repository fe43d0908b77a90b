/**
 * The client side of a proxied WebSocket, as the runtime seam provides it: `Deno.upgradeWebSocket`
 * or `Bun.serve`'s `server.upgrade`, behind one small interface.
 *
 * What each runtime can do with ping/pong differs, so those members are optional: Bun can send
 * pings and pongs and reports the client's; Deno answers the client's pings itself, pings idle
 * clients itself, and exposes neither.
 *
 * @module
 */
import type { HeaderPair } from "./headers.ts";

/** Events of a client WebSocket; the bridge sets them right after the upgrade. */
export interface WebSocketEvents {
  /** The 101 was sent: messages may flow. */
  onopen?: () => void;
  /** A whole text (string) or binary message from the client. */
  onmessage?: (data: string | Uint8Array) => void;
  /** The client's pong (only where the runtime reports it). */
  onpong?: (data: Uint8Array) => void;
  /** The connection closed: the client's close code and reason, 1005 without a code, 1006
   * when it ended without a close frame. */
  onclose?: (code: number, reason: string) => void;
}

export interface WebSocketLike extends WebSocketEvents {
  /** Sends a text (string) or binary message. Ignored once closed. */
  send(data: string | Uint8Array): void;
  /** Starts the close handshake; without a code the close frame carries none (1005). */
  close(code?: number, reason?: string): void;
  /** Ends the connection without a close frame where the runtime can (the client sees 1006),
   * else closes with 1011. */
  abort(): void;
  /** Bytes given to `send` and not yet written to the connection. */
  readonly bufferedAmount: number;
  /** Resolves once `bufferedAmount` has gone down (or the socket closed). */
  drained(): Promise<void>;
  /** Sends a ping, where the runtime can (Bun). */
  readonly ping?: (data: Uint8Array) => void;
  /** Sends a pong, where the runtime can (Bun). */
  readonly pong?: (data: Uint8Array) => void;
}

export interface UpgradeOptions {
  /** The subprotocol to confirm (`Sec-WebSocket-Protocol`), as the upstream chose it. */
  readonly protocol?: string;
  /** More headers for the 101 response (Set-Cookie, the upstream's own). */
  readonly headers: readonly HeaderPair[];
}

/**
 * Accepts the client's WebSocket handshake: the handler must return `response` (the 101), after
 * which `socket` opens. Throws when the request is not a valid WebSocket handshake.
 */
export type UpgradeWebSocket = (
  request: Request,
  options: UpgradeOptions,
) => { socket: WebSocketLike; response: Response };
