/**
 * A {@link ByteStream} over `node:net`, which Deno and Bun both provide (used by the unit tests
 * of the HTTP/1.1 client on either runtime).
 *
 * @module
 */
import { connect as netConnect, type Socket } from "node:net";
import type { ByteStream } from "../contracts.ts";
import { ReceiveQueue } from "./receive_queue.ts";

export function connectNodeSocket(host: string, port: number): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, noDelay: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(new NodeByteStream(socket));
    });
  });
}

/** Also wraps the `node:tls` sockets of upstream HTTPS (`tls.ts`). */
export class NodeByteStream implements ByteStream {
  readonly #socket: Socket;
  readonly #received: ReceiveQueue;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.#received = new ReceiveQueue(() => socket.pause(), () => socket.resume());
    socket.on("data", (chunk: Uint8Array) => this.#received.push(chunk));
    socket.on("end", () => this.#received.end());
    socket.on("close", () => this.#received.end());
    socket.on("error", (error) => this.#received.fail(error));
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.#received.read(into);
  }

  readChunk(max: number): Promise<Uint8Array | null> {
    return this.#received.readChunk(max);
  }

  write(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#received.error !== undefined || this.#socket.destroyed) {
        return reject(this.#received.error ?? new Error("socket closed"));
      }
      this.#socket.write(data, (error) => error ? reject(error) : resolve());
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}
