/**
 * A {@link ByteStream} over `Bun.connect`: the HTTP/1.1 client's socket on Bun (faster than
 * `node:net` there). Part of the runtime seam, so `any` stands for Bun's untyped socket.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { ByteStream } from "../contracts.ts";
import { ReceiveQueue } from "../shared/receive_queue.ts";
import { toConnectFailure } from "../shared/node_socket.ts";

/** One handler set for every socket; per-socket state is the socket's `data`. */
const HANDLERS = {
  data(socket: any, chunk: Uint8Array) {
    (socket.data as BunByteStream).received.push(chunk);
  },
  drain(socket: any) {
    (socket.data as BunByteStream).onDrain();
  },
  end(socket: any) {
    (socket.data as BunByteStream).onEnd();
  },
  close(socket: any) {
    (socket.data as BunByteStream).onEnd();
  },
  error(socket: any, error: Error) {
    (socket.data as BunByteStream).onError(error);
  },
  connectError() {
    // Bun.connect's promise rejects; nothing else to do.
  },
};

/** Connects to `host:port` (no delay); rejects with a ConnectFailure (classified by `code`). */
export async function connectBunSocket(Bun: any, host: string, port: number): Promise<ByteStream> {
  const stream = new BunByteStream();
  try {
    stream.socket = await Bun.connect({ hostname: host, port, socket: HANDLERS, data: stream });
  } catch (error) {
    throw toConnectFailure(error);
  }
  stream.socket.setNoDelay?.(true);
  return stream;
}

class BunByteStream implements ByteStream {
  socket: any;
  readonly received = new ReceiveQueue(() => this.socket.pause(), () => this.socket.resume());
  #wakeWriter: (() => void) | undefined;

  onDrain(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = undefined;
    wake?.();
  }

  onEnd(): void {
    this.received.end();
    this.onDrain();
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
      if (this.received.error !== undefined) throw this.received.error;
      if (this.received.ended) throw new Error("socket closed");
      const written = this.socket.write(offset === 0 ? data : data.subarray(offset));
      if (written < 0) throw new Error("socket closed");
      offset += written;
      if (offset >= data.length) return;
      await new Promise<void>((resolve) => this.#wakeWriter = resolve);
    }
  }

  watchIdle(onActivity: () => void): void {
    this.received.watch(onActivity);
  }

  unwatchIdle(): void {
    this.received.unwatch();
  }

  close(): void {
    this.received.unwatch();
    this.received.end();
    this.socket?.end();
  }
}
