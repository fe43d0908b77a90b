/**
 * A {@link ByteStream} over `node:net`, which Deno and Bun both provide (used by the unit tests
 * of the HTTP/1.1 client on either runtime), and the classification of node's (and Bun's)
 * connect error codes.
 *
 * @module
 */
import { connect as netConnect, type Socket } from "node:net";
import { type ByteStream, ConnectFailure, type ConnectFailureKind } from "../contracts.ts";
import { ReceiveQueue } from "./receive_queue.ts";

/** Connects to `host:port` (no delay); rejects with a {@link ConnectFailure}. */
export function connectNodeSocket(host: string, port: number): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, noDelay: true });
    const fail = (error: Error) => reject(toConnectFailure(error));
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.off("error", fail);
      resolve(new NodeByteStream(socket));
    });
  });
}

/** What a system error code (`error.code`: node, Bun, Deno) says about a failed connect. */
const CODE_KINDS: Readonly<Record<string, ConnectFailureKind>> = {
  ECONNREFUSED: "refused",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  EHOSTDOWN: "unreachable",
  ENETDOWN: "unreachable",
  ENOTFOUND: "unreachable",
  EAI_AGAIN: "unreachable",
  EADDRNOTAVAIL: "unreachable",
  ETIMEDOUT: "timeout",
};

/** A runtime's connect error as the seam's {@link ConnectFailure}, classified by its code. */
export function toConnectFailure(error: unknown): ConnectFailure {
  if (error instanceof ConnectFailure) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const kind = typeof code === "string" ? CODE_KINDS[code] ?? "other" : "other";
  const message = error instanceof Error ? error.message : String(error);
  const text = typeof code === "string" && !message.includes(code)
    ? `${code}: ${message}`
    : message;
  return new ConnectFailure(kind, text, { cause: error });
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

  watchIdle(onActivity: () => void): void {
    this.#received.watch(onActivity);
  }

  unwatchIdle(): void {
    this.#received.unwatch();
  }

  close(): void {
    this.#received.unwatch();
    this.#socket.destroy();
  }
}
