/**
 * The interface between the proxy and whatever carries a request to an upstream server.
 * Two implementations: `http1.ts` (our keep-alive HTTP/1.1 client over raw sockets, byte-exact)
 * and `fetch.ts` (the runtime's `fetch`, kept as a fallback).
 *
 * @module
 */
import type { Server } from "../config/mod.ts";
import type { ByteStream } from "../runtime/contracts.ts";
import type { HeaderPair } from "./headers.ts";
import type { ClientSide } from "./watchdog.ts";

/**
 * The client's request body on its way upstream, read through this wrapper so that the proxy
 * knows whether any of it was taken from the client yet: until then the request can be sent again
 * (another connection, another server); after, never (a body is streamed, not kept).
 */
export class RequestBody {
  #stream: ReadableStream<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Something was taken from the client's body (its first read started). */
  consumed = false;
  /** Bytes read from the client so far (through {@link RequestBody.read}; for the record). */
  bytes = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#stream = stream;
  }

  /** The next piece from the client (marks the body consumed). */
  async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    this.consumed = true;
    const result = await (this.#reader ??= this.#stream.getReader()).read();
    if (!result.done) this.bytes += result.value.length;
    return result;
  }

  /** The whole body as a stream, for a transport that reads it itself (marks it consumed). */
  stream(): ReadableStream<Uint8Array> {
    this.consumed = true;
    return this.#stream;
  }

  /** Stops reading the client's body (the exchange failed). */
  cancel(reason?: unknown): void {
    const cancelled = this.#reader === undefined
      ? this.#stream.cancel(reason)
      : this.#reader.cancel(reason);
    cancelled.catch(() => {});
  }
}

export interface UpstreamRequest {
  readonly method: string;
  /** Origin-form target: path and query, as the client sent them. */
  readonly target: string;
  /** Any Content-Length among them is ignored: the transport frames the body itself. */
  readonly headers: readonly HeaderPair[];
  /** Streamed, never buffered; null when the request has no body. */
  readonly body: RequestBody | null;
  /** The body's length as the client declared it (sent as Content-Length, and held to: a body
   * that ends short or runs long fails the exchange); undefined for a body of unknown length
   * (sent chunked). With a null body, 0 sends `Content-Length: 0`. */
  readonly bodyLength?: number;
  /** A WebSocket handshake: a 101 hands the connection over (UpstreamResponse.upgraded) instead
   * of ending the exchange; without it a 101 is a bad response. */
  readonly upgrade?: boolean;
  /** The client's request, whose `signal` aborts when the client goes away. Read lazily: making
   * the signal costs the runtimes (watchdog.ts). */
  readonly client?: ClientSide;
}

/** The upstream connection of an accepted upgrade (101), now the caller's. */
export interface Upgraded {
  readonly stream: ByteStream;
  /** Bytes that came after the 101's head (the first frames). */
  readonly buffered: Uint8Array;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly statusText: string;
  /** As received, repeated headers as separate pairs. */
  readonly headers: HeaderPair[];
  /** A stream, or bytes that had already arrived whole with the headers, or null (no body). */
  readonly body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null;
  /** Set on a 101 to an upgrade request. */
  readonly upgraded?: Upgraded;
}

export interface UpstreamLimits {
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
}

export interface Transport {
  /** Rejects with an `UpstreamError` (see errors.ts). */
  send(server: Server, request: UpstreamRequest, limits: UpstreamLimits): Promise<UpstreamResponse>;
  /** Closes idle connections. */
  close(): void;
}
