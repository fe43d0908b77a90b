/**
 * The runtime seam's contracts, in one place: what the proxy needs from a runtime (listening,
 * sockets to upstreams, the client's WebSocket) and what a runtime gives the proxy (a Web
 * `Request` with {@link ClientInfo}). Implementations live beside this file: `deno/`, `bun/` and
 * `shared/` (code both use); nothing outside `src/runtime/` knows which runtime it runs on.
 *
 * @module
 */
import type { Address, ServerTls, UpstreamTls } from "../config/mod.ts";
import type { HeaderPair } from "../proxy/headers.ts";
import type { FetchTransportOptions } from "../proxy/fetch.ts";

// -- sockets to upstreams --

/** A connected byte stream; the runtime seam provides it (Deno.connect, node:net). */
export interface ByteStream {
  /** Reads into `into`; resolves to the count, or null at end of stream. */
  read(into: Uint8Array): Promise<number | null>;
  /** The next bytes received, up to `max`, as a chunk the caller keeps (the push-style sockets
   * hand over what they received, no copy); null at end of stream. For bodies. */
  readChunk(max: number): Promise<Uint8Array | null>;
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /**
   * Watches the stream while it is idle (in a pool): any byte, end of stream or error that
   * arrives calls `onActivity` once (at once when one is already waiting). Nothing is lost: what
   * arrived stays for the next read. Until {@link ByteStream.unwatchIdle}.
   */
  watchIdle(onActivity: () => void): void;
  /** Stops watching (the stream is about to be used). */
  unwatchIdle(): void;
  close(): void;
}

/** Why a connection could not be opened, as the seam classifies the runtime's error. */
export type ConnectFailureKind = "refused" | "unreachable" | "timeout" | "tls" | "other";

/**
 * The one error a {@link Connect} rejects with (besides none): the runtimes' own errors
 * (Deno.errors.*, node's and Bun's `code`s, TLS alerts) normalised in the seam, the original
 * kept as `cause` for the log.
 */
export class ConnectFailure extends Error {
  constructor(readonly kind: ConnectFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectFailure";
  }
}

/** Opens a connection; with `tls`, a TLS one (resolving after the handshake). Rejects with a
 * {@link ConnectFailure}. */
export type Connect = (host: string, port: number, tls?: UpstreamTls) => Promise<ByteStream>;

// -- listening --

/** What the client was talking to, for the X-Forwarded-* headers. */
export interface ClientInfo {
  readonly remoteAddress: string;
  readonly protocol: "http" | "https";
  /** Accepts a WebSocket handshake on this connection (see {@link UpgradeWebSocket}). */
  readonly upgrade?: UpgradeWebSocket;
  /**
   * The listener writes {@link ResponseParts} (the HTTP/1.1 front): the handler may answer with
   * them instead of a `Response`, whose making (and its `Headers`, and its body getter) costs
   * more than the whole head costs to write.
   */
  readonly readsParts?: boolean;
}

/**
 * A response's status, headers and body as the gateway has them, for a listener that writes them
 * itself (the front): no `Response` to make, no `Headers` (Deno sorts them on every pass), no
 * body getter (Deno makes a stream even for bytes it holds). The status and reason were checked
 * as a `Response` would check them.
 */
export interface ResponseParts {
  readonly status: number;
  /** The reason phrase to send, "" for the standard one. */
  readonly statusText: string;
  /** As the client gets them (names in any case; Set-Cookie one pair each). */
  readonly headers: readonly HeaderPair[];
  /** Bytes that arrived whole, a stream, or null. */
  readonly body: ReadableStream<Uint8Array> | Uint8Array | null;
}

/** A handler's answer: a `Response`, or its parts to a listener that reads them
 * ({@link ClientInfo.readsParts}). */
export type Answer = Response | ResponseParts;

// -- what a runtime gives the proxy --

/** The header lookups the proxy makes of a request; a Web `Headers` is one. */
export interface RequestHeaders {
  /** The value (several lines of one name joined as `Headers` joins them), or null. */
  get(name: string): string | null;
  has(name: string): boolean;
  /** Every header as a lower-case name and its value. */
  [Symbol.iterator](): Iterator<[string, string]>;
  /**
   * The HTTP/1.1 front's head as it was parsed: lower-case names and values, alternating, one
   * entry per line (several Cookie lines stay separate). Absent on a Web `Headers`.
   */
  readonly lines?: readonly string[];
}

/**
 * What the proxy reads of a client's request. A Web `Request` is one (the runtimes' own servers
 * give those); the HTTP/1.1 front gives a lighter one over the head it parsed (front/request.ts),
 * because making a Web `Request` and its `Headers` costs more per request than the whole head
 * takes to parse.
 */
export interface ProxyRequest {
  readonly method: string;
  /** Absolute: scheme, authority and the target as sent. */
  readonly url: string;
  readonly headers: RequestHeaders;
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  /** "HTTP/1.0", "HTTP/1.1" or "HTTP/2" where the listener knows it (for the access log). */
  readonly httpVersion?: string;
}

export type Handler = (request: ProxyRequest, client: ClientInfo) => Answer | Promise<Answer>;

export interface Listener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes the rest. */
  stop(graceMs: number): Promise<void>;
  /**
   * Stops accepting and nothing else: the open connections are served as before until they end
   * (a reload moved the listener to a new address or certificate). Resolves once the listening
   * socket is closed: a connection made after that reaches only the new listener.
   */
  retire(): Promise<void>;
}

export interface ListenOptions {
  /** SO_REUSEPORT, so that several threads can listen on one port (Linux). */
  readonly reusePort?: boolean;
  /** Serve HTTPS (HTTP/2 by ALPN too); clients then show `X-Forwarded-Proto: https`. */
  readonly tls?: ServerTls;
  /** `client_max_header_size`: the front's head cap is derived from it (front/head.ts); Bun's
   * parser is raised above it on TLS listeners (bun/limits.ts). */
  readonly clientMaxHeaderSize?: number;
  /** `client_header_timeout` of the HTTP/1.1 front (plain-HTTP listeners): 408 past it. */
  readonly clientHeaderTimeoutMs?: number;
  /** `keepalive_timeout` of the front: idle keep-alive connections closed past it; 0 = never. */
  readonly keepaliveTimeoutMs?: number;
  /** `max_connections` of the front, per listener; 0 = no limit. */
  readonly maxConnections?: number;
  /** Told when a client connection opens (+1) and closes (-1): the metrics' gauge. The front
   * only (plain HTTP); TLS listeners do not report. */
  readonly onClientConnection?: (delta: 1 | -1) => void;
}

export interface Runtime {
  readonly name: "deno" | "bun";
  readonly version: string;
  listen(address: Address, handler: Handler, options?: ListenOptions): Promise<Listener>;
  /** Socket for the HTTP/1.1 client. */
  readonly connect: Connect;
  /**
   * Writes to stdout (1) or stderr (2) off the event loop, resolving to the bytes written;
   * absent where the log writer opens a non-blocking descriptor itself (Bun). Deno runs node:fs
   * writes on its one thread, so a stdout pipe nobody reads would stop the gateway.
   */
  readonly stdioWrite?: (fd: 1 | 2, bytes: Uint8Array) => Promise<number>;
  readonly fetchOptions: FetchTransportOptions;
}

// -- the client side of a WebSocket: the front's own (front/websocket.ts) or `Deno.upgradeWebSocket` --

/** Events of a client WebSocket; the bridge sets them right after the upgrade. */
export interface WebSocketEvents {
  /** The 101 was sent: messages may flow. */
  onopen?: () => void;
  /** A whole text (string) or binary message from the client. */
  onmessage?: (data: string | Uint8Array) => void;
  /** The client's pong (only where the runtime reports it). */
  onpong?: (data: Uint8Array) => void;
  /** The connection closed: the client's close code and reason, 1005 without a code, 1006
   * when it ended without a close frame. */
  onclose?: (code: number, reason: string) => void;
}

export interface WebSocketLike extends WebSocketEvents {
  /** Sends a text (string) or binary message. Ignored once closed. */
  send(data: string | Uint8Array): void;
  /** Starts the close handshake; without a code the close frame carries none (1005). */
  close(code?: number, reason?: string): void;
  /** Ends the connection without a close frame where the runtime can (the client sees 1006),
   * else closes with 1011. */
  abort(): void;
  /** Bytes given to `send` and not yet written to the connection. */
  readonly bufferedAmount: number;
  /** Resolves once `bufferedAmount` has gone down (or the socket closed). */
  drained(): Promise<void>;
  /** Sends a ping, where the runtime can (Bun). */
  readonly ping?: (data: Uint8Array) => void;
  /** Sends a pong, where the runtime can (Bun). */
  readonly pong?: (data: Uint8Array) => void;
}

export interface UpgradeOptions {
  /** The subprotocol to confirm (`Sec-WebSocket-Protocol`), as the upstream chose it. */
  readonly protocol?: string;
  /** More headers for the 101 response (Set-Cookie, the upstream's own). */
  readonly headers: readonly HeaderPair[];
}

/**
 * Accepts the client's WebSocket handshake: the handler must return `response` (the 101), after
 * which `socket` opens. Throws when the request is not a valid WebSocket handshake.
 */
export type UpgradeWebSocket = (
  request: ProxyRequest,
  options: UpgradeOptions,
) => { socket: WebSocketLike; response: Response };
