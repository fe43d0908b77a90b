/**
 * A keep-alive HTTP/1.1 client over raw sockets, for upstream requests.
 *
 * Why not `fetch`: Deno's `fetch` always decompresses gzip/br bodies (while keeping the
 * Content-Encoding header), so it cannot pass bytes through; and both runtimes' `fetch` pay for
 * header objects and stream wrapping that a proxy does not need. This client moves bytes as they
 * come, keeps a bounded pool of idle connections per server, and returns a body that arrived
 * whole with the headers as plain bytes.
 *
 * Exactness, because a pooled connection carries the next client's request: every request is
 * framed here from the body it really has (the client's Content-Length/Transfer-Encoding are not
 * copied), a body that ends short or runs long destroys the connection, a response is validated
 * (response_head.ts) and read to its exact end, and only a connection whose exchange ended
 * cleanly goes back to the pool, where it is watched: anything arriving on an idle connection
 * (stray bytes, EOF, reset) drops it at once.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Server } from "../config/mod.ts";
import type { ByteStream, Connect } from "../runtime/contracts.ts";
import { toUpstreamError, UpstreamError } from "./errors.ts";
import type { HeaderPair } from "./headers.ts";
import {
  type BufferedInput,
  ChunkedDecoder,
  type ChunkedFault,
  connectionTokens,
  encodeChunk,
  LAST_CHUNK,
  parseLength,
  persists,
  readPiece,
} from "./http1_syntax.ts";
import { findHeadEnd, parseResponseHead } from "./response_head.ts";
import { type Watch, Watchdog } from "./watchdog.ts";
import type {
  RequestBody,
  Transport,
  UpstreamLimits,
  UpstreamRequest,
  UpstreamResponse,
} from "./transport.ts";

export interface Http1Options {
  /** Idle connections kept per server (default 256). */
  readonly maxIdlePerServer?: number;
  /** An idle connection older than this is closed instead of reused (default 2s, below the
   * 5s keep-alive timeout of Node's http server, the shortest common one). */
  readonly idleTimeoutMs?: number;
  /** Told when a connection to `server` opens (+1) and closes (-1): the open-connections gauge. */
  readonly onConnections?: (server: Server, delta: 1 | -1) => void;
}

const HEAD_LIMIT = 64 * 1024;

/** A reused connection failed before any byte of the answer: not the server's fault, try anew
 * (when nothing of the request's body was taken from the client yet). */
class StaleConnection extends Error {}

export class Http1Transport implements Transport {
  readonly #connect: Connect;
  readonly #idle = new Map<string, Connection[]>();
  readonly #maxIdle: number;
  readonly #idleTimeoutMs: number;
  readonly #watchdog = new Watchdog();
  readonly #onConnections: Http1Options["onConnections"];
  /** The pool keys of the servers of the snapshot in use, once a reload said them. */
  #retained: ReadonlySet<string> | undefined;

  constructor(connect: Connect, options: Http1Options = {}) {
    this.#connect = connect;
    this.#maxIdle = options.maxIdlePerServer ?? 256;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 2000;
    this.#onConnections = options.onConnections;
  }

  async send(
    server: Server,
    request: UpstreamRequest,
    limits: UpstreamLimits,
  ): Promise<UpstreamResponse> {
    const key = poolKeyOf(server);
    let connection: Connection | undefined;
    // Ended when the response body is done (`finish` in #exchange), or here on failure.
    const watch = this.#watchdog.watch(request.client, () => connection?.destroy());
    try {
      // An upgrade takes a fresh connection: it will not come back to the pool.
      const reused = request.upgrade === true ? undefined : this.#takeIdle(key);
      if (reused !== undefined) {
        try {
          return await this.#exchange(connection = reused, request, limits, watch);
        } catch (error) {
          if (!(error instanceof StaleConnection)) throw error;
          if (request.body?.consumed) {
            throw new UpstreamError("upstream_reset", "kept-alive connection closed");
          }
        }
      }
      const opened = await this.#open(server, key, limits.connectTimeoutMs);
      // Beside a new connection, reading the client's signal now costs next to nothing. (Before
      // `connection` is set: a client found gone must not close this clean connection.)
      watch.watchClient();
      return await this.#exchange(connection = opened, request, limits, watch);
    } catch (error) {
      watch.end();
      throw error;
    }
  }

  close(): void {
    this.#watchdog.stop();
    for (const list of this.#idle.values()) for (const connection of list) connection.destroy();
    this.#idle.clear();
  }

  /**
   * After a reload: only `servers` (the new snapshot's) keep pooled connections. Idle ones to any
   * other address or TLS settings close now, and those in use close when their exchange ends
   * instead of going back to the pool. A server whose address and TLS settings did not change
   * keeps its pool, whatever else changed.
   */
  retain(servers: Iterable<Server>): void {
    const keys = new Set<string>();
    for (const server of servers) keys.add(poolKeyOf(server));
    this.#retained = keys;
    for (const [key, list] of this.#idle) {
      if (keys.has(key)) continue;
      this.#idle.delete(key);
      for (const connection of list) connection.destroy();
    }
  }

  /** Open idle connections per server, for tests and leak checks. */
  idleCount(): number {
    let count = 0;
    for (const list of this.#idle.values()) count += list.length;
    return count;
  }

  #takeIdle(key: string): Connection | undefined {
    const list = this.#idle.get(key);
    if (list === undefined) return undefined;
    const now = Date.now();
    while (list.length > 0) {
      const connection = list.pop()!;
      connection.socket.unwatchIdle();
      if (now - connection.idleSince < this.#idleTimeoutMs) return connection;
      connection.destroy();
    }
    return undefined;
  }

  /** Pools a connection whose exchange ended cleanly (nothing extra buffered), else closes it. */
  #release(connection: Connection): void {
    if (connection.destroyed || connection.start !== connection.end) return connection.destroy();
    if (this.#retained !== undefined && !this.#retained.has(connection.key)) {
      return connection.destroy();
    }
    let list = this.#idle.get(connection.key);
    if (list === undefined) this.#idle.set(connection.key, list = []);
    if (list.length >= this.#maxIdle) return connection.destroy();
    connection.idleSince = Date.now();
    connection.reused = true;
    list.push(connection);
    // Last: it calls back at once when something arrived already.
    connection.socket.watchIdle(connection.onIdleActivity);
  }

  /** Something arrived on an idle connection (bytes nobody asked for, EOF, reset): drop it. */
  #dropIdle = (connection: Connection): void => {
    const list = this.#idle.get(connection.key);
    const at = list === undefined ? -1 : list.lastIndexOf(connection);
    if (at >= 0) list!.splice(at, 1);
    connection.destroy();
  };

  async #open(server: Server, key: string, timeoutMs: number): Promise<Connection> {
    const connecting = this.#connect(server.address.host, server.address.port, server.tls);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamError("connect_timeout")), timeoutMs);
    });
    try {
      const socket = await Promise.race([connecting, timeout]);
      const counted = this.#onConnections;
      if (counted === undefined) return new Connection(socket, key, this.#dropIdle);
      counted(server, 1);
      return new Connection(socket, key, this.#dropIdle, () => counted(server, -1));
    } catch (error) {
      connecting.then((socket) => socket.close(), () => {});
      throw toUpstreamError(error, "connect");
    } finally {
      clearTimeout(timer);
    }
  }

  async #exchange(
    connection: Connection,
    request: UpstreamRequest,
    limits: UpstreamLimits,
    watch: Watch,
  ): Promise<UpstreamResponse> {
    connection.received = 0;
    connection.uploadFailure = undefined;
    // The client may have gone while we connected: nothing was sent, the connection stays good.
    if (watch.clientGone) {
      this.#release(connection);
      throw new UpstreamError("client_closed");
    }
    // read_timeout; each piece of request body that moves starts it again, so a long upload is
    // not cut while it moves (like nginx's proxy_send_timeout between two writes).
    watch.waitFor(limits.readTimeoutMs);
    connection.progress = watch;
    let head: ResponseHead;
    try {
      await connection.socket.write(encodeRequestHead(request, connection));
      if (request.body !== null) {
        connection.upload = upload(connection, request.body, request.bodyLength);
      }
      head = await readResponseHead(connection, request);
    } catch (error) {
      connection.destroy();
      // Never retried: the client that asked is gone.
      if (watch.clientGone) throw new UpstreamError("client_closed");
      if (watch.timedOut) throw new UpstreamError("read_timeout");
      if (connection.uploadFailure !== undefined) throw connection.uploadFailure;
      if (error instanceof UpstreamError) throw error;
      if (connection.reused && connection.received === 0) throw new StaleConnection();
      throw toUpstreamError(error, "response");
    } finally {
      watch.waited();
      connection.progress = undefined;
    }
    if (head.framing === UPGRADED) {
      // The connection is the caller's now: no longer watched, never pooled.
      watch.end();
      const buffered = connection.take(connection.buffered);
      return {
        status: head.status,
        statusText: head.statusText,
        headers: head.headers,
        body: null,
        upgraded: { stream: handedOver(connection), buffered },
      };
    }
    const finish = () => {
      watch.end();
      if (head.keepAlive && connection.uploadDone) this.#release(connection);
      else connection.destroy();
    };
    const body = responseBody(connection, head, finish);
    return { status: head.status, statusText: head.statusText, headers: head.headers, body };
  }
}

/** A server's pool: TLS connections (per TLS settings) never mix with plain ones to the same
 * address. */
export function poolKeyOf(server: Server): string {
  return server.tls === undefined ? server.address.text : server.tls.poolKey + server.address.text;
}

/**
 * The socket of an upgraded connection, for its new owner (a WebSocket session): closing it
 * destroys the connection, so the count of open connections (onConnections) sees it go.
 */
function handedOver(connection: Connection): ByteStream {
  const socket = connection.socket;
  return {
    read: (into) => socket.read(into),
    readChunk: (max) => socket.readChunk(max),
    write: (data) => socket.write(data),
    watchIdle: (onActivity) => socket.watchIdle(onActivity),
    unwatchIdle: () => socket.unwatchIdle(),
    close: () => connection.destroy(),
  };
}

/** One upstream connection and its read buffer (bytes `start..end` not yet consumed). */
class Connection implements BufferedInput {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(16 * 1024);
  /** Where request heads are encoded; reused, since a head is written whole before the next. */
  headBuffer: Uint8Array | undefined;
  /** The last head's bytes: a view of `headBuffer`, reused by a head of the same length. */
  headView: Uint8Array | undefined;
  start = 0;
  end = 0;
  /** Bytes of response received on this exchange (0 = the server said nothing yet). */
  received = 0;
  idleSince = 0;
  reused = false;
  destroyed = false;
  upload: Promise<void> | undefined;
  uploadDone = true;
  /** Told of each piece of request body that moves (restarts read_timeout). */
  progress: { touch(): void } | undefined;
  /** The client's body being sent, cancelled when the connection goes. */
  uploading: RequestBody | undefined;
  /** Why the request body could not be sent as framed (it ended short or ran long). */
  uploadFailure: UpstreamError | undefined;
  /** Given to ByteStream.watchIdle while pooled (made once per connection). */
  readonly onIdleActivity: () => void;

  constructor(
    readonly socket: ByteStream,
    readonly key: string,
    dropIdle: (connection: Connection) => void,
    readonly onDestroy?: () => void,
  ) {
    this.onIdleActivity = () => dropIdle(this);
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads more into the buffer, growing it up to the head limit. False at end of stream. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
    }
    // An empty buffer is read into whole: no view made per request.
    const n = await this.socket.read(this.end === 0 ? this.buf : this.buf.subarray(this.end));
    if (n === null || this.destroyed) return false;
    this.end += n;
    this.received += n;
    return true;
  }

  /** Takes up to `max` buffered bytes as a copy (the buffer is reused). */
  take(max: number): Uint8Array<ArrayBuffer> {
    const n = Math.min(max, this.buffered);
    const bytes = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return bytes;
  }

  /** {@link BufferedInput.readChunk}: the socket's next chunk (no copy); null once destroyed. */
  async readChunk(max: number): Promise<Uint8Array | null> {
    const chunk = await this.socket.readChunk(max);
    if (chunk === null || this.destroyed) return null;
    this.received += chunk.length;
    return chunk;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.onDestroy?.();
    this.uploading?.cancel();
    this.uploading = undefined;
    try {
      this.socket.close();
    } catch {
      // already closed by the peer
    }
  }
}

/** Methods whose requests carry a body by definition: sent with `Content-Length: 0` when they
 * have none, since some servers refuse them without a length (411). */
function expectsBody(method: string): boolean {
  return method === "POST" || method === "PUT" || method === "PATCH";
}

const HEAD_BUFFER_SIZE = 4096;
const ASCII = new TextEncoder();

/**
 * The request head as bytes, in the connection's head buffer when it fits. Header values are
 * ByteStrings (each char one byte): a head of ASCII only (nearly all) is encoded natively
 * (`encodeInto`, no allocation; Deno's latin1 Buffer was 1.2 µs a request), any other char sends
 * it through latin1, which writes each char back as the byte it came as.
 */
function encodeRequestHead(request: UpstreamRequest, connection: Connection): Uint8Array {
  let head = `${request.method} ${request.target} HTTP/1.1\r\n`;
  // The framing is the gateway's, from the body it has (transfer-encoding is hop-by-hop and
  // dropped before; skipped here too so that nothing can smuggle a second framing through).
  for (const [name, value] of request.headers) {
    if (name !== "content-length" && name !== "transfer-encoding") head += `${name}: ${value}\r\n`;
  }
  const length = request.bodyLength;
  if (request.body === null) {
    if (length === 0 || expectsBody(request.method)) head += "content-length: 0\r\n";
  } else if (length !== undefined) head += `content-length: ${length}\r\n`;
  else head += "transfer-encoding: chunked\r\n";
  head += "\r\n";
  if (head.length <= HEAD_BUFFER_SIZE) {
    const into = connection.headBuffer ??= new Uint8Array(HEAD_BUFFER_SIZE);
    // UTF-8 writes a non-ASCII char as two bytes: then `written` and the length differ.
    const { read, written } = ASCII.encodeInto(head, into);
    if (read === head.length && written === head.length) {
      const view = connection.headView;
      if (view !== undefined && view.length === written) return view;
      return connection.headView = into.subarray(0, written);
    }
  }
  return Buffer.from(head, "latin1");
}

/**
 * Sends the client's body: as it comes with `length` (exactly that many bytes, else the
 * connection is destroyed and the exchange fails), or chunked when the length is unknown.
 */
async function upload(
  connection: Connection,
  body: RequestBody,
  length: number | undefined,
): Promise<void> {
  connection.uploadDone = false;
  connection.uploading = body;
  let sent = 0;
  try {
    for (;;) {
      const { done, value } = await body.read();
      if (connection.destroyed) return;
      if (done) break;
      connection.progress?.touch();
      if (value.length === 0) continue;
      sent += value.length;
      if (length === undefined) {
        await connection.socket.write(encodeChunk(value));
      } else if (sent > length) {
        return misframed(connection, `request body longer than its Content-Length (${length})`);
      } else {
        await connection.socket.write(value);
      }
    }
    if (length === undefined) await connection.socket.write(LAST_CHUNK);
    else if (sent !== length) {
      return misframed(connection, `request body ended after ${sent} of ${length} bytes`);
    }
    connection.progress?.touch();
    connection.uploadDone = true;
    connection.uploading = undefined;
  } catch (error) {
    // The client's upload broke off (or the upstream went away): the upstream must see the
    // connection end rather than wait for the rest.
    connection.destroy();
    body.cancel(error);
  }
}

/** The body does not match the length the head announced: the upstream must not see more. */
function misframed(connection: Connection, detail: string): void {
  connection.uploadFailure = new UpstreamError("bad_request", detail);
  connection.destroy();
}

interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  readonly headers: HeaderPair[];
  readonly keepAlive: boolean;
  readonly framing:
    | { kind: "none" }
    | { kind: "length"; length: number }
    | { kind: "chunked" }
    | { kind: "close" }
    | { kind: "upgraded" };
}

async function readResponseHead(
  connection: Connection,
  request: UpstreamRequest,
): Promise<ResponseHead> {
  // Bytes after `start` already scanned; relative, because fill() may move the buffered bytes.
  // The reads are awaited here, not in a helper: one async frame less per request.
  let scanned = 0;
  for (;;) {
    const headEnd = bufferedHeadEnd(connection, scanned);
    if (headEnd < 0) {
      scanned = Math.max(0, connection.buffered - 3);
      if (!(await connection.fill())) {
        throw connection.received === 0
          ? new Error("connection closed")
          : new UpstreamError("upstream_reset", "closed mid-head");
      }
      continue;
    }
    scanned = 0;
    // latin1 through a Buffer: as fast as TextDecoder on both runtimes for a usual head, without
    // the ASCII check that would need (a micro-benchmark, docs/benchmarks.md).
    const text = Buffer.from(
      connection.buf.buffer,
      connection.buf.byteOffset + connection.start,
      headEnd - connection.start,
    )
      .toString("latin1");
    connection.start = headEnd + 4;
    const head = parseHead(text, request);
    // 1xx answers (100 Continue, 103 Early Hints) precede the real one.
    if (head.status >= 100 && head.status < 200 && head.status !== 101) continue;
    return head;
  }
}

/**
 * The head's end among the buffered bytes (`scanned` of them known not to hold it), or -1; throws
 * when the head is, or would grow, larger than {@link HEAD_LIMIT}.
 */
function bufferedHeadEnd(connection: Connection, scanned: number): number {
  const start = connection.start;
  const end = findHeadEnd(connection.buf, start, start + scanned, connection.end);
  // A head that arrived whole in one read is only measured here.
  if (end >= 0 ? end - start > HEAD_LIMIT : connection.buffered > HEAD_LIMIT) {
    throw new UpstreamError("bad_response", "response head larger than 64 KiB");
  }
  return end;
}

const NO_BODY = { kind: "none" } as const;
const CHUNKED = { kind: "chunked" } as const;
const UNTIL_CLOSE = { kind: "close" } as const;
const UPGRADED = { kind: "upgraded" } as const;

function parseHead(text: string, request: UpstreamRequest): ResponseHead {
  const { http10, status: code, statusText, headers } = parseResponseHead(text);
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let connectionHeader = "";
  for (const [name, value] of headers) {
    if (name === "content-length") {
      if (contentLength !== undefined && contentLength !== value) {
        throw new UpstreamError("bad_response", "conflicting Content-Length");
      }
      contentLength = value;
    } else if (name === "transfer-encoding") {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    } else if (name === "connection") {
      connectionHeader = connectionHeader === "" ? value : `${connectionHeader}, ${value}`;
    }
  }
  if (code === 101) {
    if (request.upgrade !== true) {
      throw new UpstreamError(
        "bad_response",
        "101 Switching Protocols to a request without Upgrade",
      );
    }
    return { status: code, statusText, headers, keepAlive: false, framing: UPGRADED };
  }
  // Read as the front reads a request's. An upgrade request answered otherwise is not kept: its
  // connection was asked to become something else.
  let keepAlive = request.upgrade !== true &&
    persists(http10 ? 0 : 1, connectionHeader === "" ? 0 : connectionTokens(connectionHeader));
  let framing: ResponseHead["framing"];
  if (request.method === "HEAD" || code === 204 || code === 304 || code < 200) {
    framing = NO_BODY;
  } else if (transferEncoding !== undefined) {
    framing = /(^|,)\s*chunked\s*$/i.test(transferEncoding) ? CHUNKED : UNTIL_CLOSE;
    if (framing === UNTIL_CLOSE) keepAlive = false;
    if (contentLength !== undefined) {
      // RFC 9112 §6.3: Transfer-Encoding wins; the length must not reach the client (it would
      // frame the decoded body wrongly), and the connection is not trusted with another request.
      keepAlive = false;
      return {
        status: code,
        statusText,
        headers: headers.filter((pair) => pair[0] !== "content-length"),
        keepAlive,
        framing,
      };
    }
  } else if (contentLength !== undefined) {
    const length = parseLength(contentLength);
    if (length < 0) throw new UpstreamError("bad_response", "bad Content-Length");
    framing = { kind: "length", length };
  } else {
    framing = UNTIL_CLOSE;
    keepAlive = false;
  }
  return { status: code, statusText, headers, keepAlive, framing };
}

/**
 * The response body: null, bytes that arrived whole with the head, or a stream that reads the
 * socket as the client consumes it. `finish` runs once the body is fully read (or abandoned).
 */
function responseBody(
  connection: Connection,
  head: ResponseHead,
  finish: () => void,
): UpstreamResponse["body"] {
  const framing = head.framing;
  if (
    framing.kind === "none" || framing.kind === "upgraded" ||
    (framing.kind === "length" && framing.length === 0)
  ) {
    finish();
    return null;
  }
  if (framing.kind === "length" && connection.buffered >= framing.length) {
    const bytes = connection.take(framing.length);
    finish();
    return bytes;
  }
  const decoder = framing.kind === "chunked"
    ? new ChunkedDecoder(connection, upstreamChunkedError, MAX_CHUNK_LINE)
    : undefined;
  let remaining = framing.kind === "length" ? framing.length : Infinity;
  let finished = false;
  const done = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    finished = true;
    controller.close();
    finish();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (decoder !== undefined) {
          const chunk = await decoder.next();
          if (chunk === null) return done(controller);
          return controller.enqueue(chunk);
        }
        const chunk = await readPiece(connection, remaining);
        if (chunk === null) {
          if (framing.kind === "close") return done(controller);
          throw new UpstreamError("upstream_reset", "closed before the whole body was sent");
        }
        remaining -= chunk.length;
        controller.enqueue(chunk);
        if (remaining === 0) done(controller);
      } catch (error) {
        finished = true;
        connection.destroy();
        finish();
        controller.error(error);
      }
    },
    cancel() {
      // The client went away: the upstream must see its connection close.
      if (finished) return;
      finished = true;
      connection.destroy();
      finish();
    },
  }, { highWaterMark: 0 });
}

/** The longest chunk-size or trailer line accepted from an upstream. */
const MAX_CHUNK_LINE = 8192;

/** A broken chunked body is the upstream's bad answer; one cut short, its connection's end. */
function upstreamChunkedError(fault: ChunkedFault, detail: string): UpstreamError {
  return fault === "ended"
    ? new UpstreamError("upstream_reset", detail)
    : new UpstreamError("bad_response", detail);
}
