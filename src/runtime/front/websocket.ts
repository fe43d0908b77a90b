/**
 * The server end of a client's WebSocket on our own HTTP/1.1 front (plain-HTTP listeners): once
 * the front has written the 101, the client's connection is a {@link ByteStream}, and this
 * speaks RFC 6455 on it with the one frame codec (src/proxy/ws_frames.ts, server role) behind
 * {@link WebSocketLike}, for the proxy's bridge.
 *
 * As on Bun, the client's pings are answered here, and `ping`/`pong` send control frames while
 * `onpong` reports the client's pongs, so the bridge relays pings end to end. As Bun's server
 * does (`idleTimeout` 120 s, `sendPings`), a client silent for the idle time is pinged, and
 * dropped (1006) if it stays silent as long again: a client that vanished without a FIN does
 * not hold its upstream connection forever.
 *
 * @module
 */
import type { ByteStream, WebSocketLike } from "../contracts.ts";
import { MAX_MESSAGE_BYTES } from "../../proxy/websocket.ts";
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
} from "../../proxy/ws_frames.ts";

/** How long a close handshake (close frame sent → the client's close or end → flushed) may take
 * before the connection is dropped. */
const CLOSE_TIMEOUT_MS = 5000;
/** Silence from the client after which it is pinged, and after the ping dropped. */
const IDLE_TIMEOUT_MS = 120_000;
const READ_SIZE = 64 * 1024;
/** Small frames queued together go out in one write, up to this many bytes. */
const BATCH_BYTES = 64 * 1024;
const CONTROL_PAYLOAD_MAX = 125;

/** A client WebSocket the front opens once its 101 is written. */
export type ServerWebSocket = WebSocketLike & {
  /** Starts reading (the bytes that came after the handshake first) and fires `onopen`. */
  open(): void;
};

/** The client's connection; with `closeWrite` (the front's sockets), a protocol error ends in a
 * lingering close: FIN after our close frame, the client's last bytes read and dropped. */
export type ClientStream = ByteStream & { closeWrite?(): void };

export interface ServerWebSocketOptions {
  /** Default 5 s; tests shorten it. */
  readonly closeTimeoutMs?: number;
  /** Default 120 s; tests shorten it. */
  readonly idleTimeoutMs?: number;
}

/**
 * The server role of RFC 6455 over `stream`, whose first bytes after the client's handshake are
 * `leftover` (handed over: it is unmasked in place). Nothing is read or written before `open()`.
 */
export function createServerWebSocket(
  stream: ClientStream,
  leftover: Uint8Array,
  options: ServerWebSocketOptions = {},
): ServerWebSocket {
  return new FrontWebSocket(stream, leftover, {
    closeTimeoutMs: options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
  });
}

class FrontWebSocket implements ServerWebSocket {
  onopen?: () => void;
  onmessage?: (data: string | Uint8Array) => void;
  onpong?: (data: Uint8Array) => void;
  onclose?: (code: number, reason: string) => void;
  readonly #stream: ClientStream;
  readonly #reader = new FrameReader(MAX_MESSAGE_BYTES, "server");
  readonly #closeTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  /** Frames not handed to `stream.write` yet, in order. */
  readonly #outbox: Uint8Array[] = [];
  /** Bytes queued or being written. */
  #buffered = 0;
  #writing = false;
  /** Our answer to the client's last ping while it waits in the outbox: a newer ping replaces
   * it (RFC 6455 §5.5.3), so a client that pings without reading cannot grow the outbox. */
  #queuedPong: Uint8Array | undefined;
  #drainWaiters: (() => void)[] = [];
  #opened = false;
  /** A close frame was queued: no message may follow it. */
  #closeSent = false;
  #closeReceived = false;
  /** The connection ends once the outbox is written (the close handshake is done). */
  #endWhenFlushed = false;
  /** Our side of the connection is shut once the outbox is written (a protocol error). */
  #shutWhenFlushed = false;
  /** What `onclose` reports, once known: the client's close, or the protocol error sent. */
  #result: [code: number, reason: string] | undefined;
  #finished = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes came from the client since the idle timer was last armed. */
  #heard = false;
  /** The idle ping was sent and nothing came since. */
  #pinged = false;

  constructor(
    stream: ClientStream,
    leftover: Uint8Array,
    timeouts: Required<ServerWebSocketOptions>,
  ) {
    this.#stream = stream;
    this.#closeTimeoutMs = timeouts.closeTimeoutMs;
    this.#idleTimeoutMs = timeouts.idleTimeoutMs;
    this.#reader.push(leftover);
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  open(): void {
    if (this.#opened || this.#finished) return;
    this.#opened = true;
    this.onopen?.();
    if (this.#finished) return; // aborted by the handler
    if (this.#outbox.length > 0 && !this.#writing) void this.#flush();
    this.#idleTimer = setTimeout(() => this.#checkIdle(), this.#idleTimeoutMs);
    void this.#read();
  }

  send(data: string | Uint8Array): void {
    if (this.#closeSent || this.#finished) return;
    this.#enqueue(
      typeof data === "string"
        ? encodeText(data, "server")
        : encodeFrame(OPCODE.binary, data, "server"),
    );
  }

  close(code?: number, reason?: string): void {
    this.#sendClose(code ?? NO_STATUS, reason ?? "");
  }

  abort(): void {
    this.#finish();
  }

  drained(): Promise<void> {
    if (this.#finished || this.#buffered === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  ping(data: Uint8Array): void {
    this.#sendControl(OPCODE.ping, data);
  }

  pong(data: Uint8Array): void {
    this.#sendControl(OPCODE.pong, data);
  }

  #sendControl(opcode: number, data: Uint8Array): void {
    if (data.length > CONTROL_PAYLOAD_MAX) {
      throw new RangeError(`a control frame carries at most ${CONTROL_PAYLOAD_MAX} bytes`);
    }
    if (this.#closeSent || this.#finished) return;
    this.#enqueue(encodeFrame(opcode, data, "server"));
  }

  /** Queues our close frame (none has been) and bounds the rest of the handshake. A code that
   * may not be sent (1005, 1006...) leaves the frame without one. */
  #sendClose(code: number, reason: string): void {
    if (this.#closeSent || this.#finished) return;
    this.#closeSent = true;
    this.#enqueue(encodeClose(isSendableCloseCode(code) ? code : NO_STATUS, reason, "server"));
    this.#closeTimer = setTimeout(() => this.#finish(), this.#closeTimeoutMs);
  }

  // -- reading --

  async #read(): Promise<void> {
    try {
      while (this.#dispatch()) {
        // After the client's close frame nothing more is read: the connection ends once our
        // answer is written.
        if (this.#closeReceived || this.#finished) return;
        const chunk = await this.#stream.readChunk(READ_SIZE);
        if (this.#finished) return;
        if (chunk === null) return this.#finish();
        this.#heard = true;
        this.#reader.push(chunk);
      }
      // The client broke the protocol and was sent a close frame, then FIN where the stream
      // can (clients wait for the server to close first): what it still sends is discarded
      // until it ends the connection (or the close timer fires). Closing at once could reset
      // the connection before the client has read why.
      while (!this.#finished && (await this.#stream.readChunk(READ_SIZE)) !== null);
      this.#finishWhenFlushed();
    } catch {
      this.#finish();
    }
  }

  /** Handles what the reader has whole; false once the client broke the protocol. */
  #dispatch(): boolean {
    try {
      for (let incoming = this.#reader.next(); incoming !== undefined;) {
        this.#handle(incoming);
        if (this.#closeReceived || this.#finished) return true;
        incoming = this.#reader.next();
      }
      return true;
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#result ??= [error.code, error.message];
      this.#sendClose(error.code, error.message);
      this.#shutWhenFlushed = true;
      if (!this.#writing && this.#outbox.length === 0) this.#shut();
      return false;
    }
  }

  #handle(incoming: Incoming): void {
    switch (incoming.type) {
      case "text":
      case "binary":
        // After our close frame, as in browsers: the session is over for the application.
        if (!this.#closeSent) this.onmessage?.(incoming.data);
        return;
      case "ping":
        if (!this.#closeSent) this.#answerPing(incoming.data);
        return;
      case "pong":
        if (!this.#closeSent) this.onpong?.(incoming.data);
        return;
      case "close":
        this.#closeReceived = true;
        this.#result ??= [incoming.code, incoming.reason];
        // Echo the code (RFC 6455 §5.5.1) unless this answers our own close; then the server
        // ends the TCP connection first (§7.1.1).
        this.#sendClose(incoming.code, "");
        this.#finishWhenFlushed();
        return;
    }
  }

  #answerPing(data: Uint8Array): void {
    const pong = encodeFrame(OPCODE.pong, data, "server");
    const queued = this.#queuedPong;
    const at = queued === undefined ? -1 : this.#outbox.lastIndexOf(queued);
    if (at < 0) this.#enqueue(pong);
    else {
      this.#outbox[at] = pong;
      this.#buffered += pong.length - queued!.length;
    }
    this.#queuedPong = pong;
  }

  /** The idle timer: silence for a period brings a ping, silence for one more the end. */
  #checkIdle(): void {
    if (this.#finished) return;
    if (this.#heard) {
      this.#heard = false;
      this.#pinged = false;
    } else if (!this.#pinged) {
      this.#pinged = true;
      this.ping(new Uint8Array(0));
    } else return this.#finish();
    this.#idleTimer = setTimeout(() => this.#checkIdle(), this.#idleTimeoutMs);
  }

  // -- writing --

  #enqueue(frame: Uint8Array): void {
    if (this.#finished) return;
    this.#outbox.push(frame);
    this.#buffered += frame.length;
    if (this.#opened && !this.#writing) void this.#flush();
  }

  /** Writes the outbox in order, one write at a time (a ByteStream's writes must not overlap). */
  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#outbox.length > 0) {
        const batch = this.#takeBatch();
        await this.#stream.write(batch);
        if (this.#finished) return;
        this.#buffered -= batch.length;
        this.#wakeDrained();
      }
    } catch {
      // The connection is gone.
      return this.#finish();
    } finally {
      this.#writing = false;
    }
    if (this.#endWhenFlushed) this.#finish();
    else if (this.#shutWhenFlushed) this.#shut();
  }

  /** Sends FIN (our close frame is out), where the stream can. */
  #shut(): void {
    try {
      this.#stream.closeWrite?.();
    } catch {
      // closed already
    }
  }

  /** The first queued frame, joined with the small ones behind it. */
  #takeBatch(): Uint8Array {
    const first = this.#outbox.shift()!;
    // Whatever is taken now is out of reach of a newer ping.
    this.#queuedPong = undefined;
    let count = 0;
    let length = first.length;
    while (
      count < this.#outbox.length && length + this.#outbox[count].length <= BATCH_BYTES
    ) length += this.#outbox[count++].length;
    if (count === 0) return first;
    const batch = new Uint8Array(length);
    batch.set(first);
    let at = first.length;
    for (const frame of this.#outbox.splice(0, count)) {
      batch.set(frame, at);
      at += frame.length;
    }
    return batch;
  }

  #wakeDrained(): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }

  // -- the end --

  #finishWhenFlushed(): void {
    if (this.#writing || this.#outbox.length > 0) this.#endWhenFlushed = true;
    else this.#finish();
  }

  /** Ends the connection (any frame not written yet is dropped) and reports it, once. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#idleTimer);
    this.#outbox.length = 0;
    this.#buffered = 0;
    try {
      this.#stream.close();
    } catch {
      // closed already
    }
    this.#wakeDrained();
    const [code, reason] = this.#result ?? [ABNORMAL, ""];
    this.onclose?.(code, reason);
  }
}
