/**
 * The interface between the proxy and whatever carries a request to an upstream server.
 * Two implementations: `http1.ts` (our keep-alive HTTP/1.1 client over raw sockets, byte-exact)
 * and `fetch.ts` (the runtime's `fetch`, kept as a fallback).
 *
 * @module
 */
import type { Server } from "../config/mod.ts";
import type { HeaderPair } from "./headers.ts";
import type { ClientSide } from "./watchdog.ts";

export interface UpstreamRequest {
  readonly method: string;
  /** Origin-form target: path and query, as the client sent them. */
  readonly target: string;
  readonly headers: readonly HeaderPair[];
  /** Streamed, never buffered; null when the request has no body. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** The client's request, whose `signal` aborts when the client goes away. Read lazily: making
   * the signal costs the runtimes (watchdog.ts). */
  readonly client?: ClientSide;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly statusText: string;
  /** As received, repeated headers as separate pairs. */
  readonly headers: HeaderPair[];
  /** A stream, or bytes that had already arrived whole with the headers, or null (no body). */
  readonly body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null;
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
