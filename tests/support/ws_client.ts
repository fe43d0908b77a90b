/**
 * A raw WebSocket client over node:net, for what the runtimes' `WebSocket` hides: the handshake
 * response's status and header lines (the sticky Set-Cookie on a 101, a refusal's body), exact
 * request header lines, and dropping the TCP connection without a close frame. Frames are made
 * and read with the gateway's codec (src/proxy/ws_frames.ts), which is a client's: masked out,
 * unmasked in.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import {
  encodeClose,
  encodeFrame,
  encodeText,
  FrameReader,
  type Incoming,
  OPCODE,
} from "../../src/proxy/ws_frames.ts";
import type { Header, RawResponse } from "./http.ts";

/** A handshake answer; also a {@link RawResponse}, so http.ts's header helpers apply. */
export interface RawWebSocket extends RawResponse {
  readonly status: number;
  readonly statusText: string;
  /** Header lines of the handshake response, in order, names as sent. */
  readonly headers: Header[];
  /** A refusal's body (empty after a 101). */
  readonly body: Buffer;
  /** The next message or control frame from the gateway. */
  next(ms?: number): Promise<Incoming>;
  /** The next text message, skipping control frames other than close. */
  nextText(ms?: number): Promise<string>;
  send(data: string | Uint8Array): void;
  /** Sends a close frame. */
  close(code: number, reason?: string): void;
  /** Sends a ping frame. */
  ping(data: string): void;
  /** Drops the connection without a close frame. */
  destroy(): void;
  /** Stops reading from the connection (TCP backpressure on the gateway) until `resume()`. */
  pause(): void;
  resume(): void;
  /** Resolves when the gateway has closed the TCP connection. */
  readonly ended: Promise<void>;
}

export interface RawWebSocketOptions {
  readonly path?: string;
  /** Sent after the handshake's own headers, in order. */
  readonly headers?: readonly Header[];
  readonly timeoutMs?: number;
  /** Speak TLS, trusting this CA (PEM). */
  readonly ca?: string;
}

/** Opens a WebSocket to 127.0.0.1:`port` and resolves with the handshake's answer. */
export function rawWebSocket(
  port: number,
  options: RawWebSocketOptions = {},
): Promise<RawWebSocket> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = options.ca === undefined
      ? connect({ host: "127.0.0.1", port })
      : tlsConnect({ host: "127.0.0.1", port, ca: options.ca });
    let buffered = Buffer.alloc(0);
    let session: Session | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no handshake answer within ${timeoutMs} ms: ${buffered.toString("latin1")}`),
      );
    }, timeoutMs);
    const key = randomBytes(16).toString("base64");
    let head = `GET ${options.path ?? "/"} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n`;
    for (const [name, value] of options.headers ?? []) head += `${name}: ${value}\r\n`;
    socket.once(
      options.ca === undefined ? "connect" : "secureConnect",
      () => socket.write(Buffer.from(head + "\r\n", "latin1")),
    );
    const tryHead = (ended: boolean) => {
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) {
        if (ended) fail(new Error(`closed before the handshake answer: ${buffered}`));
        return;
      }
      const lines = buffered.subarray(0, end).toString("latin1").split("\r\n");
      const statusLine = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0]);
      const status = Number(statusLine?.[1]);
      const statusText = statusLine?.[2] ?? "";
      const headers: Header[] = lines.slice(1).map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon), line.slice(colon + 1).trim()];
      });
      const rest = buffered.subarray(end + 4);
      if (status === 101) {
        clearTimeout(timer);
        session = new Session(socket, status, statusText, headers);
        session.push(rest);
        resolve(session);
        return;
      }
      const length = headers.find(([n]) => n.toLowerCase() === "content-length")?.[1];
      if (length !== undefined ? rest.length >= Number(length) : ended) {
        clearTimeout(timer);
        socket.destroy();
        const body = rest.subarray(0, Number(length ?? rest.length));
        resolve(new Refusal(status, statusText, headers, body));
      }
    };
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on("data", (chunk: Buffer) => {
      if (session !== undefined) return session.push(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      tryHead(false);
    });
    socket.on("end", () => session === undefined && tryHead(true));
    socket.on("error", (error) => session === undefined && fail(error));
  });
}

class Refusal implements RawWebSocket {
  readonly ended = Promise.resolve();
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: Header[],
    readonly body: Buffer,
  ) {}
  next(): Promise<Incoming> {
    return Promise.reject(new Error(`handshake refused (${this.status})`));
  }
  nextText(): Promise<string> {
    return this.next() as Promise<never>;
  }
  send(): void {}
  close(): void {}
  ping(): void {}
  destroy(): void {}
  pause(): void {}
  resume(): void {}
}

class Session implements RawWebSocket {
  readonly body = Buffer.alloc(0);
  readonly ended: Promise<void>;
  readonly #socket: Socket;
  readonly #reader = new FrameReader(64 * 1024 * 1024);
  readonly #queue: Incoming[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(
    socket: Socket,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Header[],
  ) {
    this.#socket = socket;
    this.ended = new Promise((resolve) => {
      socket.on("close", () => {
        this.#closed = true;
        this.#wake?.();
        resolve();
      });
    });
    socket.on("error", () => {});
  }

  push(chunk: Uint8Array): void {
    this.#reader.push(chunk);
    for (let frame = this.#reader.next(); frame !== undefined; frame = this.#reader.next()) {
      this.#queue.push(frame);
    }
    this.#wake?.();
  }

  async next(ms = 5000): Promise<Incoming> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      if (this.#closed) throw new Error("connection closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.#queue.shift()!;
  }

  async nextText(ms = 5000): Promise<string> {
    for (;;) {
      const frame = await this.next(ms);
      if (frame.type === "text") return frame.data;
      if (frame.type === "close" || frame.type === "binary") {
        throw new Error(`expected text, got ${JSON.stringify(frame)}`);
      }
    }
  }

  send(data: string | Uint8Array): void {
    this.#socket.write(
      typeof data === "string" ? encodeText(data) : encodeFrame(OPCODE.binary, data),
    );
  }

  close(code: number, reason = ""): void {
    this.#socket.write(encodeClose(code, reason));
  }

  ping(data: string): void {
    this.#socket.write(encodeFrame(OPCODE.ping, new TextEncoder().encode(data)));
  }

  destroy(): void {
    this.#socket.destroy();
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }
}
