/**
 * WebSocket proxying. An `Upgrade: websocket` request has already been routed by the same
 * sticky decision as any request (gateway.ts); from there:
 *
 * 1. the gateway opens a fresh socket to the chosen server (never a pooled HTTP connection) and
 *    sends the client's handshake: its headers less hop-by-hop ones and less
 *    `Sec-WebSocket-Extensions` (frames are re-encoded here, so permessage-deflate cannot pass),
 *    with `X-Forwarded-*` as for any request. Connect failures count toward passive health and
 *    move to the next server (or 502 under no_fallback), as for a GET;
 * 2. anything but 101 goes back to the client as an ordinary response (status, headers, body);
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
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Server, Sticky } from "../config/mod.ts";
import type { Balancer } from "../balancer/balancer.ts";
import { renderSetCookie } from "../cookie/set_cookie.ts";
import {
  type FailureCode,
  failureResponse,
  FAILURES,
  toUpstreamError,
  UpstreamError,
} from "./errors.ts";
import {
  appendClientResponseHeaders,
  type ClientInfo,
  type HeaderPair,
  upstreamRequestHeaders,
} from "./headers.ts";
import type { ByteStream, Connect } from "../runtime/contracts.ts";
import type { UpstreamLimits } from "./transport.ts";
import type { WebSocketLike } from "../runtime/contracts.ts";
import { parseResponseHead } from "./response_head.ts";
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
/** Head and body of a refusal (non-101 answer) are read whole, up to this size. */
const HEAD_LIMIT = 64 * 1024;
const REFUSAL_BODY_LIMIT = 1024 * 1024;
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
export function isWebSocketUpgrade(request: Request, client: ClientInfo): boolean {
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
  readonly noFallback: boolean;
  readonly now: number;
  readonly limits: UpstreamLimits;
}

export interface WebSocketProxyOptions {
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  /** Called once per failed upstream attempt (for the log). */
  readonly onUpstreamError?: (server: Server, code: FailureCode, detail: string) => void;
}

export class WebSocketProxy {
  readonly #connect: Connect;
  readonly #now: () => number;
  readonly #onUpstreamError: WebSocketProxyOptions["onUpstreamError"];
  readonly #bridges = new Set<Bridge>();

  constructor(connect: Connect, options: WebSocketProxyOptions = {}) {
    this.#connect = connect;
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
   * Answers a WebSocket handshake (see {@link isWebSocketUpgrade}): the 101 of an upgrade, the
   * upstream's refusal, or the gateway's error. Never rejects.
   */
  async proxy(request: Request, client: ClientInfo, route: WebSocketRoute): Promise<Response> {
    const { balancer, sticky, noFallback, now } = route;
    const headers = handshakeHeaders(request.headers, client);
    const key = request.headers.get("sec-websocket-key")!;
    const offered = offeredProtocols(request.headers.get("sec-websocket-protocol"));
    let pinned = route.pinned;
    let tried: Server[] | undefined;
    let lastFailure: FailureCode = "no_server";
    for (;;) {
      const server = pinned ?? balancer.pick(now, tried);
      if (server === undefined) return failureResponse(lastFailure);
      let answer: HandshakeAnswer;
      try {
        answer = await handshake(this.#connect, server, route, headers, key, offered, request);
      } catch (error) {
        const failure = toUpstreamError(error, "response");
        if (failure.code === "client_closed") return failureResponse(failure.code);
        const spec = FAILURES[failure.code];
        if (spec.marksServer) balancer.health.recordFailure(server, this.#now());
        this.#onUpstreamError?.(server, failure.code, failure.message);
        // A handshake has no body: what never reached the upstream may go elsewhere, except a
        // pinned session under no_fallback.
        if (!spec.beforeRequestSent || (server === pinned && noFallback)) {
          return failureResponse(failure.code);
        }
        lastFailure = failure.code;
        (tried ??= []).push(server);
        pinned = undefined;
        continue;
      }
      balancer.health.recordSuccess(server);
      const out: HeaderPair[] = [];
      // As for any response, the module's Set-Cookie goes first.
      if (sticky !== undefined && server !== pinned && server.setCookie !== undefined) {
        out.push(["set-cookie", renderSetCookie(server.setCookie, now)]);
      }
      if (answer.kind === "answered") {
        appendClientResponseHeaders(answer.headers, sticky?.lowerName, out);
        return new Response(answer.body, {
          status: answer.status,
          statusText: answer.statusText,
          headers: out,
        });
      }
      const upstreamHeaders: HeaderPair[] = [];
      appendClientResponseHeaders(answer.headers, sticky?.lowerName, upstreamHeaders);
      for (const pair of upstreamHeaders) if (!OWN_101_HEADERS.has(pair[0])) out.push(pair);
      let upgraded: { socket: WebSocketLike; response: Response };
      try {
        upgraded = client.upgrade!(request, { protocol: answer.protocol, headers: out });
      } catch (error) {
        // The client's handshake was refused by the runtime (or the client is gone).
        closeQuietly(answer.socket);
        return new Response(`400 Bad Request: ${(error as Error).message}\n`, {
          status: 400,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      }
      const bridge = new Bridge(
        upgraded.socket,
        answer.socket,
        answer.reader,
        () => this.#bridges.delete(bridge),
      );
      this.#bridges.add(bridge);
      return upgraded.response;
    }
  }
}

/** The client's headers for the upstream handshake. */
function handshakeHeaders(headers: Headers, client: ClientInfo): HeaderPair[] {
  const out = upstreamRequestHeaders(headers, client).filter(([name]) =>
    name !== "sec-websocket-extensions"
  );
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

// -- the upstream handshake --

type HandshakeAnswer =
  | {
    readonly kind: "upgraded";
    readonly socket: ByteStream;
    /** Holds any frame bytes that came with the 101. */
    readonly reader: FrameReader;
    readonly protocol: string | undefined;
    readonly headers: HeaderPair[];
  }
  | {
    readonly kind: "answered";
    readonly status: number;
    readonly statusText: string;
    readonly headers: HeaderPair[];
    readonly body: Uint8Array<ArrayBuffer> | null;
  };

async function handshake(
  connect: Connect,
  server: Server,
  route: WebSocketRoute,
  headers: readonly HeaderPair[],
  key: string,
  offered: ReadonlySet<string>,
  request: Request,
): Promise<HandshakeAnswer> {
  const socket = await connectWithin(connect, server, route.limits.connectTimeoutMs);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(socket);
  }, route.limits.readTimeoutMs);
  const onAbort = () => closeQuietly(socket);
  request.signal.addEventListener("abort", onAbort, { once: true });
  const input = new Inbound(socket);
  try {
    if (request.signal.aborted) throw new Error("the client went away while connecting");
    let head = `GET ${route.target} HTTP/1.1\r\n`;
    for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
    await socket.write(Buffer.from(head + "\r\n", "latin1"));
    const response = await readHead(input);
    if (response.status === 101) {
      const protocol = checkUpgrade(response.headers, key, offered);
      const reader = new FrameReader(MAX_MESSAGE_BYTES);
      reader.push(input.rest());
      return { kind: "upgraded", socket, reader, protocol, headers: response.headers };
    }
    const body = await readBody(input, response.status, response.headers);
    closeQuietly(socket);
    return { kind: "answered", ...response, body };
  } catch (error) {
    closeQuietly(socket);
    // Not the upstream's fault, never retried: the client that asked is gone.
    if (request.signal.aborted) throw new UpstreamError("client_closed");
    if (timedOut) throw new UpstreamError("read_timeout");
    throw toUpstreamError(error, "response");
  } finally {
    clearTimeout(timer);
    request.signal.removeEventListener("abort", onAbort);
  }
}

async function connectWithin(
  connect: Connect,
  server: Server,
  timeoutMs: number,
): Promise<ByteStream> {
  const connecting = connect(server.address.host, server.address.port, server.tls);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamError("connect_timeout")), timeoutMs);
  });
  try {
    return await Promise.race([connecting, timeout]);
  } catch (error) {
    connecting.then(closeQuietly, () => {});
    throw toUpstreamError(error, "connect");
  } finally {
    clearTimeout(timer);
  }
}

/** Closes `socket`, which may be closed already (Deno's then throws). */
function closeQuietly(socket: ByteStream): void {
  try {
    socket.close();
  } catch {
    // closed already
  }
}

/** Bytes read from the upstream and not consumed yet. */
class Inbound {
  #buffer: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #start = 0;
  received = 0;

  constructor(readonly socket: ByteStream) {}

  get buffered(): Uint8Array<ArrayBuffer> {
    return this.#buffer.subarray(this.#start);
  }

  consume(n: number): void {
    this.#start += n;
  }

  /** The unconsumed bytes, taken. */
  rest(): Uint8Array {
    const rest = this.buffered;
    this.#buffer = new Uint8Array(0);
    this.#start = 0;
    return rest;
  }

  /** Reads more; false at end of stream. */
  async more(): Promise<boolean> {
    const chunk = new Uint8Array(READ_SIZE);
    const n = await this.socket.read(chunk);
    if (n === null) return false;
    this.received += n;
    const rest = this.buffered;
    const joined = new Uint8Array(rest.length + n);
    joined.set(rest);
    joined.set(chunk.subarray(0, n), rest.length);
    this.#buffer = joined;
    this.#start = 0;
    return true;
  }
}

interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  readonly headers: HeaderPair[];
}

async function readHead(input: Inbound): Promise<ResponseHead> {
  for (;;) {
    const end = Buffer.from(input.buffered).indexOf("\r\n\r\n");
    if (end < 0) {
      if (input.buffered.length > HEAD_LIMIT) {
        throw new UpstreamError("bad_response", "response head larger than 64 KiB");
      }
      if (!(await input.more())) {
        throw input.received === 0
          ? new Error("connection closed")
          : new UpstreamError("upstream_reset", "closed mid-head");
      }
      continue;
    }
    const head = parseResponseHead(
      Buffer.from(input.buffered.subarray(0, end)).toString("latin1"),
    );
    input.consume(end + 4);
    // 1xx answers other than 101 (100 Continue, 103 Early Hints) precede the real one.
    if (head.status >= 100 && head.status < 200 && head.status !== 101) continue;
    return head;
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

/** The whole body of a refusal (at most REFUSAL_BODY_LIMIT bytes). */
async function readBody(
  input: Inbound,
  status: number,
  headers: readonly HeaderPair[],
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (status === 204 || status === 304) return null;
  const tooLarge = () =>
    new UpstreamError("bad_response", "refusal body larger than the gateway keeps (1 MiB)");
  const transferEncoding = headerValue(headers, "transfer-encoding");
  const contentLength = headerValue(headers, "content-length");
  if (transferEncoding !== undefined && /(^|,)\s*chunked\s*$/i.test(transferEncoding)) {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const line = await readLine(input);
      const size = parseInt(line.split(";")[0].trim(), 16);
      if (!/^[0-9a-fA-F]+/.test(line) || !Number.isSafeInteger(size)) {
        throw new UpstreamError("bad_response", "bad chunk size");
      }
      if (size === 0) break;
      total += size;
      if (total > REFUSAL_BODY_LIMIT) throw tooLarge();
      while (input.buffered.length < size + 2) {
        if (!(await input.more())) throw new UpstreamError("upstream_reset", "closed in a chunk");
      }
      parts.push(input.buffered.slice(0, size));
      input.consume(size + 2);
    }
    const body = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      body.set(part, at);
      at += part.length;
    }
    return body;
  }
  if (transferEncoding === undefined && contentLength !== undefined) {
    if (!/^\d{1,15}$/.test(contentLength)) {
      throw new UpstreamError("bad_response", "bad Content-Length");
    }
    const length = Number(contentLength);
    if (length > REFUSAL_BODY_LIMIT) throw tooLarge();
    while (input.buffered.length < length) {
      if (!(await input.more())) {
        throw new UpstreamError("upstream_reset", "closed before the whole body was sent");
      }
    }
    return input.buffered.slice(0, length);
  }
  // Delimited by the end of the connection.
  while (await input.more()) if (input.buffered.length > REFUSAL_BODY_LIMIT) throw tooLarge();
  return input.buffered.slice();
}

async function readLine(input: Inbound): Promise<string> {
  for (;;) {
    const end = Buffer.from(input.buffered).indexOf("\r\n");
    if (end >= 0) {
      const line = Buffer.from(input.buffered.subarray(0, end)).toString("latin1");
      input.consume(end + 2);
      return line;
    }
    if (input.buffered.length > 8192) throw new UpstreamError("bad_response", "chunk line");
    if (!(await input.more())) throw new UpstreamError("upstream_reset", "closed in a chunk");
  }
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

  constructor(client: WebSocketLike, upstream: ByteStream, reader: FrameReader, onEnd: () => void) {
    this.#client = client;
    this.#upstream = upstream;
    this.#reader = reader;
    this.#onEnd = onEnd;
    client.onopen = () => {
      this.#opened = true;
      this.#pump();
    };
    client.onmessage = (data) =>
      this.#send(typeof data === "string" ? encodeText(data) : encodeFrame(OPCODE.binary, data));
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
        const chunk = new Uint8Array(READ_SIZE);
        const n = await this.#upstream.read(chunk);
        if (n === null) return this.#end(!this.#closeReceived);
        this.#reader.push(chunk.subarray(0, n));
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
