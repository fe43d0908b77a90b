/**
 * One client connection of the HTTP/1.1 front: heads parsed (head.ts), a request made of the head
 * (request.ts) with a pull-based body (body.ts), the handler called, its `Response` written with exact framing
 * (response.ts), requests answered strictly in order (pipelined bytes wait in the buffer), and a
 * WebSocket handed the raw connection after its 101 (upgrade.ts). Timeouts are not here: the
 * server's one sweep reads {@link Connection.phase} and the clock fields (server.ts).
 *
 * @module
 */
import {
  type Answer,
  type ClientInfo,
  type Handler,
  type ProxyRequest,
  type ResponseParts,
  type UpgradeOptions,
  type WebSocketLike,
} from "../contracts.ts";
import type { FailureCode } from "../../proxy/errors.ts";
import { failureResponse } from "../../proxy/errors.ts";
import { findHeadEnd, type HeadFailure, parseHead, parseLength, type RequestHead } from "./head.ts";
import { BodyError, BodyReader, type BufferedInput } from "./body.ts";
import {
  CHUNKED_BODY,
  encodeChunk,
  encodeHead,
  type Framing,
  LAST_CHUNK,
  LENGTH,
  NO_BODY,
  pairsHead,
  responseFraming,
  responseHead,
  scanPairs,
  UNTIL_CLOSE,
} from "./response.ts";
import { handshakeKey, switchingHead } from "./upgrade.ts";
import { createServerWebSocket } from "./websocket.ts";
import { type FrontSocket, socketStream } from "./socket.ts";
import { FrontRequest, requestUrl } from "./request.ts";

/** What a connection needs from its server (server.ts). */
export interface ConnectionHost {
  readonly handler: Handler;
  /** `host:port` for requests without a Host header (HTTP/1.0). */
  readonly authority: string;
  /** The hard cap on a head (head.ts `headCap`). */
  readonly maxHead: number;
  /** At most this much unread request body is read and dropped after a response. */
  readonly discardLimit: number;
  /** True once the listener is stopping: no more keep-alive. */
  readonly stopping: boolean;
  /** The connection is over (closed, or handed to a WebSocket). */
  release(connection: Connection): void;
}

/** Waiting for a head (the sweep applies client_header_timeout or keepalive_timeout). */
export const WAITING = 0;
/** A request is being handled. */
export const BUSY = 1;
/** Reading and dropping a body nobody read (client_header_timeout bounds it). */
export const DISCARDING = 2;
/** FIN sent, reading until the client closes (bounded by the sweep). */
export const LINGERING = 3;
export const CLOSED = 4;

const INITIAL_BUFFER = 4096;
/** The reused output buffer of a connection (response heads with small bodies). */
const OUT_BUFFER = 4096;
/**
 * What a read takes at most when nothing is buffered (the next head): into the socket's scratch
 * array (FrontSocket.readScratch), so no waiting read holds `buf` and an idle connection holds no
 * buffer of ours. Small, because a waiting read on Deno holds a scratch array this size.
 */
const IDLE_READ = 1024;
/** `buf` of a connection between exchanges. */
const NO_BYTES = new Uint8Array(0);
/**
 * Input and output buffers of the connections of this thread, lent for an exchange and given back
 * when it ends with nothing buffered: 10,000 idle keep-alive clients then cost their sockets and
 * these objects, not 8 KiB more each, and a busy connection takes the buffer another just gave
 * back (no allocation per request). At most this many wait in the pool; more go to the GC.
 */
const POOL_MAX = 512;
const inputPool: Uint8Array[] = [];
const outputPool: Uint8Array[] = [];

function lend(pool: Uint8Array[], size: number): Uint8Array {
  return pool.pop() ?? new Uint8Array(size);
}

function giveBack(pool: Uint8Array[], buffer: Uint8Array, size: number): void {
  if (buffer.length === size && pool.length < POOL_MAX) pool.push(buffer);
}
/** Bodies with a Content-Length up to this size are read whole before the head goes out. */
const WHOLE_BODY_MAX = 64 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/** `ClientInfo.upgrade` of the front: one function for all connections. */
function upgrade(
  request: ProxyRequest,
  options: UpgradeOptions,
): { socket: WebSocketLike; response: Response } {
  if (!(request instanceof FrontRequest) || !(request.connection instanceof Connection)) {
    throw new TypeError("not a request of this server");
  }
  return request.connection.upgrade(request, options);
}

interface PendingUpgrade {
  readonly key: string;
  readonly options: UpgradeOptions;
  readonly socket: WebSocketLike & { open(): void };
  /** What the handler returns to accept the handshake. */
  readonly response: Response;
}

/** The request body as a pull-based stream: the socket is read only when the body is pulled. */
class BodySource implements UnderlyingDefaultSource<Uint8Array> {
  constructor(readonly connection: Connection, readonly reader: BodyReader) {}

  pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    return this.connection.pullBody(this.reader, controller);
  }
}

export class Connection implements BufferedInput {
  buf: Uint8Array = NO_BYTES;
  start = 0;
  end = 0;
  phase = WAITING;
  /** When the current head began (first byte; the connection's start for the first one). */
  headSince = Date.now();
  /** When the connection went idle (the last response ended). */
  idleSince = 0;
  /** Requests read on this connection. */
  requests = 0;
  readonly client: ClientInfo;
  /** Where the head being read starts in `buf`. */
  #headStart = 0;
  /** Bytes of the head being waited for that were scanned already. */
  #scanned = 0;
  /** A read begun early (to notice the client leaving, or pipelined bytes). */
  #readAhead: Promise<boolean> | undefined;
  #controller: AbortController | undefined;
  /** The client went away (EOF or an error) before its exchange was over. */
  #gone = false;
  #body: BodyReader | undefined;
  #bodyPull: Promise<void> | undefined;
  #bodyFailed = false;
  #bodyPulled = false;
  #expectContinue = false;
  #upgrade: PendingUpgrade | undefined;
  #out: Uint8Array | undefined;
  /** The last view of `#out` written (see {@link #encode}). */
  #outView: Uint8Array | undefined;

  constructor(readonly host: ConnectionHost, readonly socket: FrontSocket) {
    this.client = {
      remoteAddress: socket.remoteAddress,
      protocol: "http",
      upgrade,
      readsParts: true,
    };
  }

  /** Serves requests until the connection ends; never rejects. */
  async run(): Promise<void> {
    try {
      while (await this.#serveOne());
    } catch (error) {
      if (this.phase !== CLOSED) this.#onGone(error);
    }
    if (this.phase === LINGERING) await this.#drain().catch(() => {});
    // A no-op once the connection was handed to a WebSocket (CLOSED already).
    this.close();
  }

  /** Ends the connection at once. */
  close(): void {
    if (this.phase === CLOSED) return;
    const busy = this.phase === BUSY;
    this.phase = CLOSED;
    try {
      this.socket.close();
    } catch {
      // closed already
    }
    if (busy) this.#abort();
    this.host.release(this);
  }

  /**
   * The stop's close of a connection with no request: a lingering close (FIN, then the client's
   * bytes read and dropped until it closes), so a request that crossed the FIN meets no RST and
   * the client sees a clean end it may retry on (RFC 9112 §9.3.1).
   */
  closeIdle(): void {
    if (this.phase === WAITING) this.#linger();
  }

  /** The sweep's 408: a head that did not arrive whole in time (the read loop stops at once). */
  timeOut(): void {
    if (this.phase !== WAITING) return this.close();
    this.phase = LINGERING;
    this.headSince = Date.now();
    this.#answer(failureResponse("request_timeout"))
      .then(() => this.socket.closeWrite())
      .catch(() => this.close());
  }

  /** The client's request signal (see {@link FrontRequest}). */
  signal(): AbortSignal {
    if (this.#gone) return AbortSignal.abort();
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /** Accepts a WebSocket handshake on this connection ({@link ClientInfo.upgrade}). */
  upgrade(
    request: FrontRequest<Connection>,
    options: UpgradeOptions,
  ): { socket: WebSocketLike; response: Response } {
    const key = handshakeKey(request);
    if (this.#upgrade !== undefined || this.phase !== BUSY) throw new TypeError("already upgraded");
    // No read-ahead runs on a request that asks for an upgrade: the bytes buffered after the head
    // now are all the client sent after it.
    const socket = createServerWebSocket(
      socketStream(this.socket),
      this.buf.slice(this.start, this.end),
    );
    const response = new Response(null, { status: 200 });
    this.#upgrade = { key, options, socket, response };
    return { socket, response };
  }

  // -- reading --

  /** {@link BufferedInput.fill}: reads more after the unread bytes (moving or growing the buffer).
   * Not async: it hands on the read's own promise (an async wrapper cost a promise and a
   * microtask per request). */
  fill(): Promise<boolean> {
    const ahead = this.#readAhead;
    if (ahead !== undefined) {
      this.#readAhead = undefined;
      return ahead;
    }
    return this.#read();
  }

  #read(): Promise<boolean> {
    return this.start === this.end ? this.#readFresh() : this.#readMore();
  }

  async #readMore(): Promise<boolean> {
    if (this.end === this.buf.length) {
      const unread = this.end - this.start;
      if (this.start > 0 && unread <= this.buf.length / 2) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(Math.min(this.buf.length * 2, this.host.maxHead + 4096));
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.start = 0;
      this.end = unread;
    }
    if (this.end === this.buf.length) return false;
    // An empty buffer is read into whole: no view made per request.
    const n = await this.socket.read(this.end === 0 ? this.buf : this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /** Nothing unread: the socket's next bytes (its scratch array), copied to the start of `buf`
   * (lent again between exchanges). */
  async #readFresh(): Promise<boolean> {
    this.start = this.end = 0;
    const chunk = await this.socket.readScratch(IDLE_READ);
    if (chunk === null) return false;
    // Between exchanges the connection holds no buffer (see lend).
    if (this.buf.length < chunk.length) this.buf = lend(inputPool, INITIAL_BUFFER);
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
    return true;
  }

  /**
   * Gives the input and output buffers back to the pool when nothing is buffered: at the end of
   * an exchange (the read of the next head, if one runs, is a fresh chunk that holds neither).
   */
  #giveBuffers(): void {
    if (this.start === this.end && this.buf.length > 0) {
      giveBack(inputPool, this.buf, INITIAL_BUFFER);
      this.buf = NO_BYTES;
      this.start = this.end = 0;
    }
    const out = this.#out;
    if (out !== undefined) {
      // The view belongs with the buffer: another connection writes into it from now on.
      this.#out = this.#outView = undefined;
      giveBack(outputPool, out, OUT_BUFFER);
    }
  }

  /** {@link BufferedInput.readChunk}. */
  readChunk(max: number): Promise<Uint8Array | null> {
    return this.socket.readChunk(max);
  }

  /** Reads on while the handler runs: notices a client that leaves, keeps pipelined bytes. */
  #startReadAhead(): void {
    if (this.#readAhead !== undefined || this.end - this.start >= this.host.maxHead) return;
    const ahead = this.#read();
    this.#readAhead = ahead;
    ahead.then(this.#aheadRead, this.#aheadFailed);
  }

  // Bound once per connection (no closures per request). The end of the stream while an
  // exchange is on is the client leaving; between exchanges, the read loop handles it.
  #aheadRead = (more: boolean): void => {
    if (!more && this.phase === BUSY) this.#onGone();
  };
  #aheadFailed = (error: unknown): void => {
    if (this.phase === BUSY) this.#onGone(error);
  };

  /** The next head: parsed, a failure to answer, or null when the connection ended cleanly. */
  async #readHead(): Promise<RequestHead | HeadFailure | null> {
    const maxHead = this.host.maxHead;
    for (;;) {
      // Empty lines before a request line are skipped (RFC 9112 §2.2).
      while (
        this.end - this.start >= 2 && this.buf[this.start] === 13 && this.buf[this.start + 1] === 10
      ) {
        this.start += 2;
      }
      const start = this.start;
      this.#headStart = start;
      const from = Math.max(start, start + this.#scanned - 3);
      const end = findHeadEnd(this.buf, start, this.end, from);
      if (end === -2) return "bad_request";
      if (end > 0) {
        this.#scanned = 0;
        if (end - start > maxHead) return "headers_too_large";
        this.start = end;
        return parseHead(this.buf, start, end);
      }
      this.#scanned = this.end - start;
      if (this.#scanned > maxHead) return "headers_too_large";
      const hadBytes = this.end > this.start;
      if (!(await this.fill()) || this.phase !== WAITING) {
        // EOF: fine between requests; inside a head there is nobody left to answer. Or the
        // sweep timed the head out (phase LINGERING).
        return null;
      }
      if (!hadBytes && this.requests > 0) this.headSince = Date.now();
    }
  }

  // -- one exchange --

  async #serveOne(): Promise<boolean> {
    const head = await this.#readHead();
    if (head === null || this.phase === CLOSED) return false;
    if (typeof head === "string") return this.#fail(head, this.#headIsHead);
    this.requests++;
    this.phase = BUSY;
    const request = this.#request(head);
    if (this.#body === undefined && !head.upgrade) this.#startReadAhead();
    let response: Answer;
    try {
      // `OPTIONS *` asks about the server, not a resource: answered here (the URL has no room
      // for `*`, it would reach the upstream as `/*`).
      response = head.target === "*"
        ? new Response(null, { headers: { allow: "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS" } })
        : await this.host.handler(request, this.client);
    } catch (error) {
      console.error(
        `sticky-gateway: internal error: ${error instanceof Error ? error.stack : error}`,
      );
      response = failureResponse("internal_error");
    }
    if (this.phase === CLOSED) {
      discardResponse(response);
      return false;
    }
    const pending = this.#upgrade;
    if (pending !== undefined && response === pending.response) return await this.#switch(pending);
    this.#upgrade = undefined;
    if (this.#bodyFailed && !this.#bodyPulledToEnd()) {
      // A malformed or cut-short body: the handler's answer (if any) is replaced.
      discardResponse(response);
      return this.#fail("bad_request", false);
    }
    const body = this.#body;
    const canContinue = head.keepAlive && !this.host.stopping && !this.#bodyFailed &&
      (body === undefined || body.done ||
        (this.#bodyPulled || !head.expectContinue) && head.bodyLength <= this.host.discardLimit);
    const complete = await this.#writeResponse(response, head, !canContinue);
    if (!complete || !canContinue) {
      if (complete) this.#linger();
      return false;
    }
    if (body !== undefined && !body.done) {
      this.phase = DISCARDING;
      this.headSince = Date.now();
      await this.#bodyPull?.catch(() => {});
      if (!(await body.discard(this.host.discardLimit).catch(() => false))) return false;
    }
    this.#body = undefined;
    this.#bodyPull = undefined;
    // Stopping since the answer went out with keep-alive: the connection waits like any idle
    // one (the stop closes it once quiet, or answers its next request with `Connection: close`).
    if (this.phase === CLOSED) return false;
    this.phase = WAITING;
    this.idleSince = this.headSince = Date.now();
    this.#giveBuffers();
    return true;
  }

  #bodyPulledToEnd(): boolean {
    return this.#body !== undefined && this.#body.done;
  }

  /** The request the handler gets for `head`. */
  #request(head: RequestHead): FrontRequest<Connection> {
    const url = requestUrl(head.target, head.host || this.host.authority);
    this.#body = undefined;
    this.#bodyFailed = false;
    this.#bodyPulled = false;
    this.#expectContinue = head.expectContinue;
    let body: ReadableStream<Uint8Array> | null = null;
    if (head.bodyLength !== 0) {
      const reader = new BodyReader(this, head.bodyLength);
      this.#body = reader;
      body = new ReadableStream(new BodySource(this, reader), { highWaterMark: 0 });
    }
    return new FrontRequest(
      head.method,
      url,
      head.headers,
      body,
      head.minor === 1 ? "HTTP/1.1" : "HTTP/1.0",
      this,
    );
  }

  /** {@link BodySource.pull}. */
  pullBody(
    reader: BodyReader,
    controller: ReadableStreamDefaultController<Uint8Array>,
  ): Promise<void> {
    const pull = this.#pullBody(reader, controller);
    if (reader === this.#body) this.#bodyPull = pull;
    return pull;
  }

  async #pullBody(
    reader: BodyReader,
    controller: ReadableStreamDefaultController<Uint8Array>,
  ): Promise<void> {
    if (reader !== this.#body || this.phase !== BUSY) {
      controller.error(new BodyError("the exchange is over"));
      return;
    }
    this.#bodyPulled = true;
    try {
      if (this.#expectContinue) {
        this.#expectContinue = false;
        await this.socket.write(CONTINUE);
      }
      const piece = await reader.next();
      if (piece === null) {
        controller.close();
        if (this.phase === BUSY && !this.#upgrade) this.#startReadAhead();
      } else {
        controller.enqueue(piece);
      }
    } catch (error) {
      this.#bodyFailed = true;
      if (!(error instanceof BodyError) || error.message.startsWith("the connection ended")) {
        this.#onGone(error);
      }
      controller.error(error);
    }
  }

  // -- writing --

  /** Writes `response`; true when it went out whole with its framing (the connection may go on).
   * Not async: the usual answer (parts) goes straight to {@link #writeParts}. */
  #writeResponse(response: Answer, head: RequestHead, close: boolean): Promise<boolean> {
    if (!(response instanceof Response)) return this.#writeParts(response, head, close);
    return this.#writeWebResponse(response, head, close);
  }

  /** {@link #writeResponse} for a Web `Response` (the gateway's own answers, TLS listeners). */
  async #writeWebResponse(response: Response, head: RequestHead, close: boolean): Promise<boolean> {
    const contentLength = response.headers.get("content-length");
    const status = response.status;
    if (
      contentLength !== null && head.method !== "HEAD" && status >= 200 && status !== 204 &&
      status !== 304
    ) {
      // The usual proxied answer, before `response.body` is touched: on Deno that getter makes a
      // ReadableStream (~7 µs) even for bytes the response already holds.
      const length = parseLength(contentLength);
      if (length > 0 && length <= WHOLE_BODY_MAX) {
        const text = responseHead(
          response,
          { kind: LENGTH, length },
          close,
          head.minor === 0 && !close,
        );
        return await this.#writeWhole(response, text, length);
      }
    }
    const stream = response.body;
    const framing = responseFraming(
      head.method,
      head.minor,
      status,
      contentLength,
      stream !== null,
    );
    const headText = (framing: Framing) =>
      responseHead(
        response,
        framing,
        close || framing.kind === UNTIL_CLOSE,
        head.minor === 0 && !close,
        head.method === "HEAD",
      );
    return await this.#writeBody(stream, framing, headText);
  }

  /**
   * Writes a response the gateway gave as {@link ResponseParts} (ClientInfo.readsParts): the
   * head from its header pairs, its bytes as they are (no `Headers`, no body getter).
   */
  async #writeParts(parts: ResponseParts, head: RequestHead, close: boolean): Promise<boolean> {
    const scanned = scanPairs(parts.headers);
    const status = parts.status;
    const body = parts.body;
    const keepAliveHeader = head.minor === 0 && !close;
    const bodyless = head.method === "HEAD" || status < 200 || status === 204 || status === 304;
    if (body instanceof Uint8Array && !bodyless) {
      // The usual proxied answer: bytes that arrived whole, head and body in one write.
      const declared = scanned.contentLength === null ? -1 : parseLength(scanned.contentLength);
      const length = declared >= 0 ? declared : body.length;
      if (length > 0) {
        const text = pairsHead(
          status,
          parts.statusText,
          scanned,
          { kind: LENGTH, length },
          close,
          keepAliveHeader,
        );
        const taken = Math.min(body.length, length);
        await this.socket.write(this.#encode(text, body, taken));
        return taken === length && body.length === length;
      }
    }
    // Held across awaits below: a copy of the reused scan.
    const lines = { ...scanned };
    const stream = body instanceof Uint8Array ? null : body;
    const framing = responseFraming(
      head.method,
      head.minor,
      status,
      lines.contentLength,
      stream !== null || (body instanceof Uint8Array && body.length > 0),
    );
    const headText = (framing: Framing) =>
      pairsHead(
        status,
        parts.statusText,
        lines,
        framing,
        close || framing.kind === UNTIL_CLOSE,
        keepAliveHeader,
        head.method === "HEAD",
      );
    return await this.#writeBody(stream, framing, headText);
  }

  /** The body part of {@link #writeResponse}: `headText` makes the head for a framing. */
  async #writeBody(
    stream: ReadableStream<Uint8Array> | null,
    framing: Framing,
    headText: (framing: Framing) => string,
  ): Promise<boolean> {
    if (framing.kind === NO_BODY || stream === null) {
      stream?.cancel().catch(() => {});
      await this.socket.write(this.#encode(headText(framing)));
      return framing.kind === NO_BODY;
    }
    const reader = stream.getReader();
    try {
      if (framing.kind === LENGTH) {
        return await this.#writeLength(reader, headText(framing), framing.length);
      }
      // Without a length: a body that is there whole at once (the gateway's own answers) goes
      // with a Content-Length; a stream goes chunked at once, its head not held back.
      let first = reader.read();
      const ready = await settledSoon(first);
      if (ready !== undefined && ready.done) {
        await this.socket.write(this.#encode(headText({ kind: NO_BODY, length: 0 })));
        return true;
      }
      if (ready !== undefined) {
        const next = reader.read();
        const end = await settledSoon(next);
        if (end !== undefined && end.done) {
          const piece = ready.value;
          await this.socket.write(
            this.#encode(headText({ kind: LENGTH, length: piece.length }), piece),
          );
          return true;
        }
        await this.socket.write(this.#encode(headText(framing)));
        if (framing.kind === CHUNKED_BODY) await this.socket.write(encodeChunk(chunkOf(ready)));
        else await this.socket.write(chunkOf(ready));
        first = next;
      } else {
        await this.socket.write(this.#encode(headText(framing)));
      }
      return await this.#writeStream(reader, first, framing);
    } catch (error) {
      reader.cancel(error).catch(() => {});
      throw error;
    }
  }

  /** A body without a length: chunked (HTTP/1.1) or until the connection closes (HTTP/1.0). */
  async #writeStream(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    pending: Promise<ReadableStreamReadResult<Uint8Array>>,
    framing: Framing,
  ): Promise<boolean> {
    const socket = this.socket;
    for (let read = pending;; read = reader.read()) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await read;
      } catch {
        return false;
      }
      if (result.done) break;
      if (result.value.length === 0) continue;
      await socket.write(framing.kind === CHUNKED_BODY ? encodeChunk(result.value) : result.value);
    }
    if (framing.kind === CHUNKED_BODY) await socket.write(LAST_CHUNK);
    return framing.kind === CHUNKED_BODY;
  }

  /**
   * A small body of `length` bytes, read whole (`bytes()`: no stream is made for bytes the
   * response already holds, the usual case) and written with the head in one write.
   */
  async #writeWhole(response: Response, text: string, length: number): Promise<boolean> {
    let data: Uint8Array;
    try {
      data = await response.bytes();
    } catch {
      // The body failed before anything was written: nothing sensible can follow.
      return false;
    }
    const taken = Math.min(data.length, length);
    await this.socket.write(this.#encode(text, data, taken));
    return taken === length && data.length === length;
  }

  /** A body of exactly `length` bytes; the head and the first piece go out in one write. */
  async #writeLength(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    text: string,
    length: number,
  ): Promise<boolean> {
    const socket = this.socket;
    let left = length;
    const first = await this.#readBody(reader);
    const firstPiece = first.done ? undefined : first.value;
    const taken = firstPiece === undefined ? 0 : Math.min(firstPiece.length, left);
    await socket.write(this.#encode(text, firstPiece, taken));
    left -= taken;
    if (firstPiece !== undefined && taken < firstPiece.length) return this.#overrun(reader);
    if (first.done) return left === 0;
    while (left > 0) {
      const { done, value } = await this.#readBody(reader);
      if (done) return false;
      if (value.length > left) {
        await socket.write(value.subarray(0, left));
        return this.#overrun(reader);
      }
      await socket.write(value);
      left -= value.length;
    }
    // The body must end here: one more read tells (and lets the upstream connection be pooled).
    const { done } = await this.#readBody(reader);
    if (!done) return this.#overrun(reader);
    return true;
  }

  /**
   * The head (and body bytes) to write, in the connection's reused output buffer when they fit:
   * every write is awaited before the next, so the buffer is free again by then, and a fresh
   * array per response would cost an off-heap allocation and its sweeping.
   */
  #encode(head: string, body?: Uint8Array, bodyLength = body?.length ?? 0): Uint8Array {
    this.#out ??= lend(outputPool, OUT_BUFFER);
    const out = encodeHead(head, body, bodyLength, this.#out, this.#outView);
    // Up to OUT_BUFFER bytes it is a view of #out: the next answer of that length reuses it.
    if (out.length <= OUT_BUFFER) this.#outView = out;
    return out;
  }

  /** A response body that failed ends the connection (its framing is broken). */
  async #readBody(
    reader: ReadableStreamDefaultReader<Uint8Array>,
  ): Promise<ReadableStreamReadResult<Uint8Array>> {
    try {
      return await reader.read();
    } catch {
      return { done: true, value: undefined };
    }
  }

  #overrun(reader: ReadableStreamDefaultReader<Uint8Array>): boolean {
    reader.cancel().catch(() => {});
    return false;
  }

  /** Answers a failure and closes (lingering so that the client can read the answer). */
  async #fail(code: FailureCode, toHead: boolean): Promise<boolean> {
    if (this.phase === CLOSED) return false;
    await this.#answer(failureResponse(code), toHead);
    this.#linger();
    return false;
  }

  /** Writes one of the gateway's own short answers, with `connection: close`. */
  async #answer(response: Response, toHead = false): Promise<void> {
    const text = await response.text();
    const head = responseHead(response, { kind: LENGTH, length: text.length }, true, false);
    // The answer to a HEAD has no body (the client would read it as the next response).
    await this.socket.write(encodeHead(toHead ? head : head + text));
  }

  /** Whether the head that failed to parse is a HEAD request's. */
  get #headIsHead(): boolean {
    const buf = this.buf;
    const i = this.#headStart;
    return buf[i] === 72 && buf[i + 1] === 69 && buf[i + 2] === 65 && buf[i + 3] === 68 &&
      buf[i + 4] === 32;
  }

  /** Sends FIN; {@link run} then drops what the client still sends until it closes. */
  #linger(): void {
    if (this.phase === CLOSED) return;
    this.phase = LINGERING;
    this.headSince = Date.now();
    this.socket.closeWrite();
  }

  /** The lingering close's reading: until EOF, at most `discardLimit` bytes (the sweep bounds
   * its time). Closing the socket with unread bytes would send RST, which can destroy the
   * answer before the client reads it. */
  async #drain(): Promise<void> {
    let dropped = 0;
    while (this.phase === LINGERING && dropped < this.host.discardLimit) {
      dropped += this.end - this.start;
      this.start = this.end = 0;
      if (!(await this.fill())) break;
    }
  }

  /** Writes the 101 and hands the connection to the WebSocket. */
  async #switch(pending: PendingUpgrade): Promise<boolean> {
    this.#upgrade = pending;
    await this.socket.write(encodeHead(switchingHead(pending.key, pending.options)));
    this.phase = CLOSED;
    this.host.release(this);
    pending.socket.open();
    return false;
  }

  // -- the client going away --

  #onGone(_error?: unknown): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#abort();
  }

  #abort(): void {
    this.#gone = true;
    this.#controller?.abort();
  }
}

/** Drops the body of a response that will not be written (a stream is cancelled). */
function discardResponse(response: Answer): void {
  const body = response.body;
  if (body instanceof ReadableStream) body.cancel().catch(() => {});
}

function chunkOf(result: ReadableStreamReadResult<Uint8Array>): Uint8Array {
  return result.done ? new Uint8Array(0) : result.value;
}

/**
 * What `promise` resolved to if it settles within a few microtasks (a body already there),
 * else undefined (also when it rejects: the caller awaits it again and sees the error).
 */
async function settledSoon<T>(promise: Promise<T>): Promise<T | undefined> {
  let result: T | undefined;
  promise.then((value) => result = value, () => {});
  for (let i = 0; i < 4 && result === undefined; i++) await undefined;
  return result;
}
