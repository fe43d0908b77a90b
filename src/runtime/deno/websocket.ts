/**
 * The client side of a proxied WebSocket on Deno: `Deno.upgradeWebSocket` behind
 * {@link WebSocketLike}. Part of the runtime seam, so `any` stands for Deno's socket.
 *
 * Deno's server socket answers client pings itself and pings idle clients itself (its
 * `idleTimeout`, 30 s by default, closes a client that stops answering), but it can neither send
 * a ping or pong on request nor report one: `ping`/`pong`/`onpong` are absent here. It has no
 * drain event either, so {@link DenoClientSocket.drained} polls `bufferedAmount`.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { UpgradeWebSocket, WebSocketLike } from "../contracts.ts";

/** How often `drained()` looks at `bufferedAmount` again. */
const DRAIN_POLL_MS = 5;

export function denoUpgrade(Deno: any): UpgradeWebSocket {
  return (request, options) => {
    const { socket, response } = Deno.upgradeWebSocket(
      request,
      options.protocol === undefined ? {} : { protocol: options.protocol },
    );
    for (const [name, value] of options.headers) response.headers.append(name, value);
    return { socket: new DenoClientSocket(socket), response };
  };
}

class DenoClientSocket implements WebSocketLike {
  onopen?: () => void;
  onmessage?: (data: string | Uint8Array) => void;
  onclose?: (code: number, reason: string) => void;
  readonly #socket: any;

  constructor(socket: any) {
    this.#socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => this.onopen?.();
    socket.onmessage = (event: MessageEvent) => {
      const data = event.data;
      this.onmessage?.(typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer));
    };
    // Deno reports 0 when the connection ended before the handshake completed.
    socket.onclose = (event: CloseEvent) =>
      this.onclose?.(event.code === 0 ? 1006 : event.code, event.reason);
    socket.onerror = () => {
      // a close event follows
    };
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  send(data: string | Uint8Array): void {
    if (this.#socket.readyState === 1) this.#socket.send(data);
  }

  close(code?: number, reason?: string): void {
    try {
      if (code === undefined) this.#socket.close();
      else this.#socket.close(code, reason);
    } catch {
      // closing or closed already
    }
  }

  abort(): void {
    // No way to drop the connection without a close frame: the nearest is 1011.
    this.close(1011, "upstream connection lost");
  }

  drained(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
}
