/**
 * The HTTP/1.1 front's sockets on Bun: `Bun.listen` (with SO_REUSEPORT for worker threads) and
 * its connections as {@link FrontSocket}s, read and written by {@link BunSocketStream} (socket.ts,
 * the upstream client's too). Part of the runtime seam, so `any` stands for Bun's sockets.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { FrontAcceptor, FrontListen, FrontSocket } from "../front/socket.ts";
import { BunSocketStream, SOCKET_HANDLERS } from "./socket.ts";

/** {@link FrontListen} on `Bun.listen`. */
export function bunFrontListen(Bun: any): FrontListen {
  return (host, port, reusePort, onSocket) => {
    const listener = Bun.listen({
      hostname: host,
      port,
      reusePort,
      socket: {
        ...SOCKET_HANDLERS,
        open(socket: any) {
          const front = new BunFrontSocket(socket);
          socket.data = front;
          socket.setNoDelay?.(true);
          onSocket(front);
        },
      },
    });
    const acceptor: FrontAcceptor = {
      host: listener.hostname ?? host,
      port: listener.port,
      // Bun opens (and hands over) each connection as it accepts it: none comes after stop.
      close: () => Promise.resolve(listener.stop(false)),
    };
    return Promise.resolve(acceptor);
  };
}

/** A client connection: reads and writes as every Bun socket of ours (socket.ts), half-open. */
class BunFrontSocket extends BunSocketStream implements FrontSocket {
  readonly remoteAddress: string;
  #closed = false;

  constructor(socket: any) {
    super();
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? "";
  }

  /** A client that sent FIN still reads its answer: only a closed socket stops the writes. */
  protected writeFailure(): Error | undefined {
    if (this.#closed) return new Error("socket closed");
    return this.received.error;
  }

  /** The socket is gone: nothing more can be written either. */
  override onClose(): void {
    this.#closed = true;
    this.onEnd();
  }

  /** Bun hands over each chunk it received: nothing to reuse, the chunk itself. */
  readScratch(max: number): Promise<Uint8Array | null> {
    return this.readChunk(max);
  }

  closeWrite(): void {
    this.socket.shutdown();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.received.end();
    this.socket.end();
    this.onDrain();
  }
}
