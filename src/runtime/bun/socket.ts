/**
 * A {@link ByteStream} over `Bun.connect`: the HTTP/1.1 client's socket on Bun (faster than
 * `node:net` there), and {@link BunSocketStream}, the read/write side it shares with the front's
 * sockets (front_socket.ts). Part of the runtime seam, so `any` stands for Bun's untyped socket.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { ByteStream } from "../contracts.ts";
import { ReceiveQueue } from "../shared/receive_queue.ts";
import { toConnectFailure } from "../shared/node_socket.ts";

/** One handler set for every Bun socket of ours (upstream and front); its `data` is its stream. */
export const SOCKET_HANDLERS = {
  data(socket: any, chunk: Uint8Array) {
    (socket.data as BunSocketStream).received.push(chunk);
  },
  drain(socket: any) {
    (socket.data as BunSocketStream).onDrain();
  },
  end(socket: any) {
    (socket.data as BunSocketStream).onEnd();
  },
  close(socket: any) {
    (socket.data as BunSocketStream).onClose();
  },
  error(socket: any, error: Error) {
    (socket.data as BunSocketStream).onError(error);
  },
};

/** What a write the kernel took whole resolves to (one promise for all of them). */
const WRITTEN: Promise<void> = Promise.resolve();

/** {@link SOCKET_HANDLERS} for Bun.connect. */
const CONNECT_HANDLERS = {
  ...SOCKET_HANDLERS,
  connectError() {
    // Bun.connect's promise rejects; nothing else to do.
  },
};

/** Connects to `host:port` (no delay); rejects with a ConnectFailure (classified by `code`). */
export async function connectBunSocket(Bun: any, host: string, port: number): Promise<ByteStream> {
  const stream = new BunByteStream();
  try {
    stream.socket = await Bun.connect({
      hostname: host,
      port,
      socket: CONNECT_HANDLERS,
      data: stream,
    });
  } catch (error) {
    throw toConnectFailure(error);
  }
  stream.socket.setNoDelay?.(true);
  return stream;
}

/**
 * A Bun socket as a pull-style stream, upstream or front: received bytes queued with
 * backpressure (shared/receive_queue.ts), writes that wait for `drain`. Each side says when a
 * write must fail ({@link BunSocketStream.writeFailure}).
 */
export abstract class BunSocketStream {
  socket: any;
  readonly received = new ReceiveQueue(() => this.socket.pause(), () => this.socket.resume());
  #wakeWriter: (() => void) | undefined;

  /** Why nothing can be written now, checked before each write; undefined while writable. */
  protected abstract writeFailure(): Error | undefined;

  onDrain(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = undefined;
    wake?.();
  }

  onEnd(): void {
    this.received.end();
    this.onDrain();
  }

  /** The socket is gone (after `end` or an error, or without either). */
  onClose(): void {
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

  /**
   * Bun writes what the kernel takes and returns the count; the rest waits for `drain`. A write
   * the kernel took whole (nearly all of them) resolves without an async frame.
   */
  write(data: Uint8Array): Promise<void> {
    const failure = this.writeFailure();
    if (failure !== undefined) return Promise.reject(failure);
    const written = this.socket.write(data);
    if (written < 0) return Promise.reject(new Error("socket closed"));
    if (written >= data.length) return WRITTEN;
    return this.#writeRest(data, written);
  }

  async #writeRest(data: Uint8Array, offset: number): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => this.#wakeWriter = resolve);
      const failure = this.writeFailure();
      if (failure !== undefined) throw failure;
      const written = this.socket.write(data.subarray(offset));
      if (written < 0) throw new Error("socket closed");
      offset += written;
      if (offset >= data.length) return;
    }
  }
}

/** The upstream client's stream: a request cannot go on once the upstream ended or failed. */
class BunByteStream extends BunSocketStream implements ByteStream {
  protected writeFailure(): Error | undefined {
    if (this.received.error !== undefined) return this.received.error;
    if (this.received.ended) return new Error("socket closed");
    return undefined;
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
