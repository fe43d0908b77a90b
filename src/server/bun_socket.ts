/**
 * A {@link ByteStream} over `Bun.connect`: the HTTP/1.1 client's socket on Bun (faster than
 * `node:net` there). Part of the runtime seam, so `any` stands for Bun's untyped socket.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { ByteStream } from "../proxy/http1.ts";

/** Bytes queued before reading pauses (backpressure toward the upstream). */
const HIGH_WATER = 1 << 20;

/** One handler set for every socket; per-socket state is the socket's `data`. */
const HANDLERS = {
  data(socket: any, chunk: Uint8Array) {
    (socket.data as BunByteStream).onData(chunk);
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

export async function connectBunSocket(Bun: any, host: string, port: number): Promise<ByteStream> {
  const stream = new BunByteStream();
  stream.socket = await Bun.connect({ hostname: host, port, socket: HANDLERS, data: stream });
  stream.socket.setNoDelay?.(true);
  return stream;
}

class BunByteStream implements ByteStream {
  socket: any;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #ended = false;
  #error: Error | undefined;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;

  onData(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
    this.#wake();
  }

  onDrain(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = undefined;
    wake?.();
  }

  onEnd(): void {
    this.#ended = true;
    this.#wake();
    this.onDrain();
  }

  onError(error: Error): void {
    this.#error = error;
    this.#wake();
    this.onDrain();
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#queue.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    const head = this.#queue[0];
    const n = Math.min(head.length, into.length);
    into.set(n === head.length ? head : head.subarray(0, n));
    if (n === head.length) this.#queue.shift();
    else this.#queue[0] = head.subarray(n);
    this.#queued -= n;
    if (this.#paused && this.#queued <= HIGH_WATER) {
      this.#paused = false;
      this.socket.resume();
    }
    return n;
  }

  async write(data: Uint8Array): Promise<void> {
    let offset = 0;
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) throw new Error("socket closed");
      const written = this.socket.write(offset === 0 ? data : data.subarray(offset));
      if (written < 0) throw new Error("socket closed");
      offset += written;
      if (offset >= data.length) return;
      await new Promise<void>((resolve) => this.#wakeWriter = resolve);
    }
  }

  close(): void {
    this.#ended = true;
    this.socket?.end();
  }
}
