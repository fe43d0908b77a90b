/**
 * The HTTP/1.1 front's sockets on Bun: `Bun.listen` (with SO_REUSEPORT for worker threads) and
 * its connections as {@link FrontSocket}s, received bytes queued with backpressure
 * (shared/receive_queue.ts). Part of the runtime seam, so `any` stands for Bun's sockets.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { FrontAcceptor, FrontListen, FrontSocket } from "../front/socket.ts";
import { ReceiveQueue } from "../shared/receive_queue.ts";

/** Socket events; each socket's `data` is its {@link BunFrontSocket}. */
const HANDLERS = {
  data(socket: any, chunk: Uint8Array) {
    (socket.data as BunFrontSocket).received.push(chunk);
  },
  drain(socket: any) {
    (socket.data as BunFrontSocket).onDrain();
  },
  end(socket: any) {
    (socket.data as BunFrontSocket).onEnd();
  },
  close(socket: any) {
    (socket.data as BunFrontSocket).onClose();
  },
  error(socket: any, error: Error) {
    (socket.data as BunFrontSocket).onError(error);
  },
};

/** {@link FrontListen} on `Bun.listen`. */
export function bunFrontListen(Bun: any): FrontListen {
  return (host, port, reusePort, onSocket) => {
    const listener = Bun.listen({
      hostname: host,
      port,
      reusePort,
      socket: {
        ...HANDLERS,
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
      close: () => listener.stop(false),
    };
    return Promise.resolve(acceptor);
  };
}

class BunFrontSocket implements FrontSocket {
  readonly received = new ReceiveQueue(() => this.socket.pause(), () => this.socket.resume());
  readonly remoteAddress: string;
  #wakeWriter: (() => void) | undefined;
  #closed = false;

  constructor(readonly socket: any) {
    this.remoteAddress = socket.remoteAddress ?? "";
  }

  onDrain(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = undefined;
    wake?.();
  }

  onEnd(): void {
    this.received.end();
    this.onDrain();
  }

  /** The socket is gone: nothing more can be written either. */
  onClose(): void {
    this.#closed = true;
    this.onEnd();
  }

  onError(error: Error): void {
    this.received.fail(error);
    this.onDrain();
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.received.read(into);
  }

  readChunk(max: number): Promise<Uint8Array | null> {
    return this.received.readChunk(max);
  }

  /** Bun writes what the kernel takes and returns the count; the rest waits for `drain`. */
  async write(data: Uint8Array): Promise<void> {
    let offset = 0;
    for (;;) {
      if (this.#closed) throw new Error("socket closed");
      if (this.received.error !== undefined) throw this.received.error;
      const written = this.socket.write(offset === 0 ? data : data.subarray(offset));
      if (written < 0) throw new Error("socket closed");
      offset += written;
      if (offset >= data.length) return;
      await new Promise<void>((resolve) => this.#wakeWriter = resolve);
    }
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
