/**
 * WebSocket proxying. An `Upgrade: websocket` request has already been routed by the same
 * sticky decision as any request (gateway.ts); from there:
 *
 * 1. the handshake goes through the HTTP/1.1 client (http1.ts) as an upgrade request, on a fresh
 *    connection (never a pooled one), and through the same failover loop as any request
 *    (failover.ts): the client's headers less hop-by-hop ones and less
 *    `Sec-WebSocket-Extensions` (frames are re-encoded here, so permessage-deflate cannot pass),
 *    with `X-Forwarded-*` as for any request. Connect failures count toward passive health and
 *    move to the next server (or 502 under no_fallback), as for a GET;
 * 2. anything but 101 goes back to the client as an ordinary response (status, headers, body),
 *    relayed as any response;
 * 3. on 101 the client is upgraded with the subprotocol the upstream chose and the sticky
 *    Set-Cookie when the server was newly chosen, and a {@link Bridge} relays messages, close
 *    codes and (where the runtime allows) pings until either side closes.
 *
 * Ping/pong: the gateway is a WebSocket endpoint on each side. On Bun an upstream ping is passed
 * to the client and the client's pong back (end to end); on Deno, whose server sockets cannot
 * send pings, the gateway answers upstream pings itself. Client pings are answered by the
 * runtime on both.
 *
 * @module
 */
import type { Retirement } from "./retirement.ts";
import { createHash } from "node:crypto";
import type { Server, Sticky } from "../config/mod.ts";
import type { Balancer } from "../balancer/balancer.ts";
import { stickySetCookie } from "../sticky/issue.ts";
import { type FailureCode, UpstreamError } from "./errors.ts";
import {
  appendClientResponseHeaders,
  type ClientInfo,
  type HeaderPair,
  upstreamRequestHeaders,
} from "./headers.ts";
import type { ByteStream } from "../runtime/contracts.ts";
import type { UpstreamLimits, UpstreamRequest, UpstreamResponse } from "./transport.ts";
import type { ProxyRequest, RequestHeaders, WebSocketLike } from "../runtime/contracts.ts";
import { Http1Transport } from "./http1.ts";
import { failover, type Outcome } from "./failover.ts";
import type { StickyOutcome } from "../sticky/resolve.ts";
import {
  ABNORMAL,
  encodeClose,
  encodeFrame,
  encodeText,
  FrameError,
  FrameReader,
  type Incoming,
  isSendableCloseCode,
  NO_STATUS,
  OPCODE,
} from "./ws_frames.ts";

/** Largest message relayed either way (Bun's default `maxPayloadLength`). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Past this many bytes queued toward the client, reading from the upstream pauses. */
const CLIENT_HIGH_WATER = 1024 * 1024;
/** Client messages not yet written upstream beyond which the session is closed (1013): the
 * runtimes cannot pause a client WebSocket, so this bounds memory instead. */
const MAX_PENDING_UPSTREAM = 64 * 1024 * 1024;
/** How long a close handshake may take before the upstream socket is dropped. */
const CLOSE_TIMEOUT_MS = 5000;
const READ_SIZE = 16 * 1024;
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Sec-WebSocket-* headers the runtime writes itself into the client's 101. */
const OWN_101_HEADERS = new Set([
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
]);

/**
 * Whether `request` is a WebSocket handshake this proxy takes (RFC 6455 §4.2.1): GET, `Upgrade:
 * websocket`, `Connection: upgrade`, a key and version 13. Anything else goes the ordinary way
 * (with `Upgrade` dropped as hop-by-hop).
 */
export function isWebSocketUpgrade(request: ProxyRequest, client: ClientInfo): boolean {
  if (client.upgrade === undefined || request.method !== "GET") return false;
  const headers = request.headers;
  return hasToken(headers.get("upgrade"), "websocket") &&
    hasToken(headers.get("connection"), "upgrade") &&
    headers.get("sec-websocket-key") !== null &&
    headers.get("sec-websocket-version") === "13";
}

function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** The routing outcome the gateway hands over, as it would use it for any request. */
export interface WebSocketRoute {
  /** Origin-form target: path and query as the client sent them. */
  readonly target: string;
  readonly balancer: Balancer;
  readonly sticky: Sticky | undefined;
  /** The server the cookie pins, if it is available. */
  readonly pinned: Server | undefined;
  /** The pinned server when the client's cookie needs no new one (no Set-Cookie for it). */
  readonly cookieKept?: Server;
  /** The pinned token's issue time, kept when it is re-issued. */
  readonly issuedS?: number;
  /** The sticky decision's outcome. */
  readonly decided: StickyOutcome;
  readonly noFallback: boolean;
  readonly now: number;
  /** read_timeout and connect_timeout for the handshake. */
  readonly limits: UpstreamLimits;
  /** The request id sent upstream (X-Request-Id). */
  readonly requestId: string;
  /** Its generation's, under `reload_max_age`: the session closes (1001) when it runs too long
   * after a reload. */
  readonly retirement?: Retirement;
  /** Told when an upgraded session ends: message bytes from and to the client. */
  readonly onClose?: (bytesIn: number, bytesOut: number) => void;
}

/**
 * How a handshake went: the failover's outcome, and with a 101 the client's 101 to return. With
 * neither a failure nor `upgraded`, the outcome's answer is the upstream's refusal (anything but
 * 101), which the gateway relays as any response.
 */
export interface Handshake {
  readonly outcome: Outcome<UpstreamResponse>;
  readonly upgraded?: Response;
}

export interface WebSocketProxyOptions {
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  /** Called once per failed upstream attempt (for the log). */
  readonly onUpstreamError?: (server: Server, code: FailureCode, detail: string) => void;
}

export class WebSocketProxy {
  /** The HTTP/1.1 client handshakes go through (the gateway's, when plain requests use it). */
  readonly #transport: Http1Transport;
  readonly #now: () => number;
  readonly #onUpstreamError: WebSocketProxyOptions["onUpstreamError"];
  readonly #bridges = new Set<Bridge>();

  constructor(transport: Http1Transport, options: WebSocketProxyOptions = {}) {
    this.#transport = transport;
    this.#now = options.now ?? Date.now;
    this.#onUpstreamError = options.onUpstreamError;
  }

  /** Sessions being relayed now. */
  get open(): number {
    return this.#bridges.size;
  }

  /** Closes every session with 1001 (the gateway is stopping), both ways. */
  closeAll(): void {
    for (const bridge of this.#bridges) bridge.shutdown();
  }

  /**
   * Relays a WebSocket handshake (see {@link isWebSocketUpgrade}) through the failover loop; on a
   * 101 the session starts. Never rejects.
   */
  async proxy(
    request: ProxyRequest,
    client: ClientInfo,
    route: WebSocketRoute,
  ): Promise<Handshake> {
    const { sticky, now, limits } = route;
    const key = request.headers.get("sec-websocket-key")!;
    const offered = offeredProtocols(request.headers.get("sec-websocket-protocol"));
    const handshake: UpstreamRequest = {
      method: "GET",
      target: route.target,
      headers: handshakeHeaders(request.headers, client, route.requestId, sticky?.hideCookie),
      body: null,
      upgrade: true,
      client: request,
    };
    const transport = this.#transport;
    let protocol: string | undefined;
    const outcome = await failover(
      {
        balancer: route.balancer,
        pinned: route.pinned,
        noFallback: route.noFallback,
        sticky: route.sticky === undefined ? "none" : route.decided,
        now,
        async send(server: Server): Promise<UpstreamResponse> {
          const response = await transport.send(server, handshake, limits);
          if (response.upgraded !== undefined) {
            try {
              protocol = checkUpgrade(response.headers, key, offered);
            } catch (error) {
              closeQuietly(response.upgraded.stream);
              throw error;
            }
          }
          return response;
        },
        // A handshake has no body: what never reached the upstream may always go elsewhere.
        replayable: () => true,
      },
      this.#now,
      this.#onUpstreamError,
    );
    if (outcome.failure !== undefined) return { outcome };
    const { server, value: answer } = outcome;
    const upgraded = answer.upgraded;
    if (upgraded === undefined) return { outcome };
    const out: HeaderPair[] = [];
    // As for any response, the module's Set-Cookie goes first.
    const setCookie = sticky !== undefined && server !== route.cookieKept
      ? stickySetCookie(sticky, server, now, server === route.pinned ? route.issuedS : undefined)
      : undefined;
    if (setCookie !== undefined) out.push(["set-cookie", setCookie]);
    const upstreamHeaders: HeaderPair[] = [];
    appendClientResponseHeaders(answer.headers, sticky?.lowerName, upstreamHeaders);
    for (const pair of upstreamHeaders) if (!OWN_101_HEADERS.has(pair[0])) out.push(pair);
    let accepted: { socket: WebSocketLike; response: Response };
    try {
      accepted = client.upgrade!(request, { protocol, headers: out });
    } catch (error) {
      // The client's handshake was refused by the runtime (or the client is gone): the reason
      // goes to the log, never to the client.
      closeQuietly(upgraded.stream);
      this.#log(
        server,
        new UpstreamError("bad_request", "the runtime refused the client's handshake", {
          cause: error,
        }),
      );
      return {
        outcome: { failure: "bad_request", attempts: outcome.attempts, sticky: outcome.sticky },
      };
    }
    const reader = new FrameReader(MAX_MESSAGE_BYTES);
    reader.push(upgraded.buffered);
    // Set once the bridge exists; its close callback may only run after that.
    // deno-lint-ignore prefer-const
    let release: (() => void) | undefined;
    const bridge: Bridge = new Bridge(
      accepted.socket,
      upgraded.stream,
      reader,
      () => {
        this.#bridges.delete(bridge);
        release?.();
        route.onClose?.(bridge.bytesIn, bridge.bytesOut);
      },
    );
    this.#bridges.add(bridge);
    release = route.retirement?.add(() => bridge.shutdown());
    return { outcome, upgraded: accepted.response };
  }

  #log(server: Server, error: UpstreamError): void {
    this.#onUpstreamError?.(server, error.code, error.message);
  }
}

/** The client's headers for the upstream handshake. */
function handshakeHeaders(
  headers: RequestHeaders,
  client: ClientInfo,
  requestId: string,
  hideCookie: string | undefined,
): HeaderPair[] {
  const out = upstreamRequestHeaders(headers, client, undefined, requestId, hideCookie).filter((
    [name],
  ) => name !== "sec-websocket-extensions");
  out.push(["connection", "Upgrade"], ["upgrade", "websocket"]);
  return out;
}

function offeredProtocols(header: string | null): Set<string> {
  const offered = new Set<string>();
  if (header !== null) {
    for (const part of header.split(",")) if (part.trim() !== "") offered.add(part.trim());
  }
  return offered;
}

/** Closes `socket`, which may be closed already (Deno's then throws). */
function closeQuietly(socket: ByteStream): void {
  try {
    socket.close();
  } catch {
    // closed already
  }
}

function headerValue(headers: readonly HeaderPair[], name: string): string | undefined {
  for (const pair of headers) if (pair[0] === name) return pair[1];
  return undefined;
}

/** Checks the upstream's 101 (RFC 6455 §4.1) and returns the subprotocol it chose. */
function checkUpgrade(
  headers: readonly HeaderPair[],
  key: string,
  offered: ReadonlySet<string>,
): string | undefined {
  if (!hasToken(headerValue(headers, "upgrade") ?? null, "websocket")) {
    throw new UpstreamError("bad_response", "101 without Upgrade: websocket");
  }
  const accept = createHash("sha1").update(key + GUID).digest("base64");
  if (headerValue(headers, "sec-websocket-accept") !== accept) {
    throw new UpstreamError("bad_response", "wrong Sec-WebSocket-Accept");
  }
  if (headerValue(headers, "sec-websocket-extensions") !== undefined) {
    throw new UpstreamError("bad_response", "an extension the gateway did not offer");
  }
  const protocol = headerValue(headers, "sec-websocket-protocol");
  if (protocol !== undefined && !offered.has(protocol)) {
    throw new UpstreamError("bad_response", `subprotocol ${JSON.stringify(protocol)} not offered`);
  }
  return protocol;
}

// -- the bridge --

/**
 * Relays one session between the client's WebSocket and the upstream socket: messages both
 * ways (text stays text, binary stays binary), close codes and reasons, pings where the runtime
 * allows. Either side closing closes the other.
 */
class Bridge {
  readonly #client: WebSocketLike;
  readonly #upstream: ByteStream;
  readonly #reader: FrameReader;
  readonly #onEnd: () => void;
  /** Writes toward the upstream, in order. */
  #writing: Promise<void> = Promise.resolve();
  #pending = 0;
  #opened = false;
  #clientClosed = false;
  /** A close frame was sent upstream: nothing else may follow it. */
  #closeSent = false;
  /** The upstream's close frame arrived. */
  #closeReceived = false;
  #ended = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Message bytes from the client (text: its UTF-16 length) and to it, for the record. */
  bytesIn = 0;
  bytesOut = 0;

  constructor(client: WebSocketLike, upstream: ByteStream, reader: FrameReader, onEnd: () => void) {
    this.#client = client;
    this.#upstream = upstream;
    this.#reader = reader;
    this.#onEnd = onEnd;
    client.onopen = () => {
      this.#opened = true;
      this.#pump();
    };
    client.onmessage = (data) => {
      this.bytesIn += data.length;
      this.#send(typeof data === "string" ? encodeText(data) : encodeFrame(OPCODE.binary, data));
    };
    client.onpong = (data) => this.#send(encodeFrame(OPCODE.pong, data));
    client.onclose = (code, reason) => this.#onClientClose(code, reason);
  }

  /** The gateway is stopping: close both sides with 1001. */
  shutdown(): void {
    if (this.#ended) return;
    this.#sendClose(1001, "gateway stopping");
    this.#client.close(1001, "gateway stopping");
  }

  #send(frame: Uint8Array): void {
    if (this.#closeSent || this.#ended) return;
    this.#pending += frame.length;
    if (this.#pending > MAX_PENDING_UPSTREAM) {
      this.#sendClose(1013, "upstream too slow");
      this.#client.close(1013, "upstream too slow");
      return;
    }
    this.#queue(frame);
  }

  #queue(frame: Uint8Array): void {
    this.#writing = this.#writing.then(async () => {
      if (!this.#ended) await this.#upstream.write(frame);
      this.#pending -= frame.length;
    }).catch(() => this.#end(true));
  }

  #sendClose(code: number, reason: string): void {
    if (this.#closeSent || this.#ended) return;
    this.#closeSent = true;
    this.#queue(encodeClose(code, reason));
    // The upstream answers with its close frame and closes the connection; if it does not,
    // the connection is dropped.
    this.#closeTimer ??= setTimeout(() => this.#end(false), CLOSE_TIMEOUT_MS);
  }

  #onClientClose(code: number, reason: string): void {
    this.#clientClosed = true;
    if (this.#ended) return;
    if (!this.#opened || code === ABNORMAL || (code !== NO_STATUS && !isSendableCloseCode(code))) {
      // The client went away without a close handshake: so does the gateway (the upstream
      // sees 1006 as it would have).
      this.#end(false);
      return;
    }
    // After the upstream's own close, its echo was already sent.
    this.#sendClose(code, reason);
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        for (let incoming = this.#reader.next(); incoming !== undefined;) {
          await this.#fromUpstream(incoming);
          if (this.#ended) return;
          incoming = this.#reader.next();
        }
        // The socket's own chunk (no copy on Bun's push-style sockets): a fresh zeroed 16 KiB
        // array per read was a quarter of the relay's CPU at 1 KiB messages.
        const chunk = await this.#upstream.readChunk(READ_SIZE);
        if (chunk === null) return this.#end(!this.#closeReceived);
        this.#reader.push(chunk);
      }
    } catch (error) {
      if (this.#ended) return;
      if (error instanceof FrameError) {
        // The upstream broke the protocol: tell it why, and the client that it is over.
        this.#sendClose(error.code, error.message);
        this.#client.close(error.code === 1009 ? 1009 : 1011, "upstream protocol error");
        this.#closeReceived = true;
        return;
      }
      this.#end(true);
    }
  }

  async #fromUpstream(incoming: Incoming): Promise<void> {
    switch (incoming.type) {
      case "text":
      case "binary":
        if (this.#clientClosed) return;
        this.bytesOut += incoming.data.length;
        this.#client.send(incoming.data);
        while (this.#client.bufferedAmount > CLIENT_HIGH_WATER && !this.#clientClosed) {
          await this.#client.drained();
        }
        return;
      case "ping":
        // End to end where the runtime can ping the client; else the gateway answers.
        if (this.#client.ping !== undefined && !this.#clientClosed) {
          this.#client.ping(incoming.data);
        } else this.#send(encodeFrame(OPCODE.pong, incoming.data));
        return;
      case "pong":
        if (!this.#clientClosed) this.#client.pong?.(incoming.data);
        return;
      case "close":
        this.#closeReceived = true;
        // Echo it (RFC 6455 §5.5.1) unless this answers the gateway's own close, then pass it on.
        this.#sendClose(incoming.code, "");
        if (!this.#clientClosed) {
          if (incoming.code === NO_STATUS) this.#client.close();
          else this.#client.close(incoming.code, incoming.reason);
        }
        return;
    }
  }

  /**
   * Drops the upstream connection. `abnormal`: it ended without a close handshake, so the
   * client's connection is dropped too (where the runtime can; else closed with 1011).
   */
  #end(abnormal: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#closeTimer);
    closeQuietly(this.#upstream);
    if (!this.#clientClosed) {
      if (abnormal) this.#client.abort();
      else if (!this.#closeReceived) this.#client.close(1001, "upstream closed");
    }
    this.#onEnd();
  }
}
