/**
 * Request bodies on the HTTP/1.1 front: exactly Content-Length bytes, or chunked decoded strictly
 * (RFC 9112 §7.1: hex size, optional extensions, CRLF after the data, trailers read and dropped),
 * with every line bounded. Works over a {@link BufferedInput}: the connection's buffer (bytes that
 * arrived with the head) first, then the socket.
 *
 * @module
 */
import { CHUNKED } from "./head.ts";

/** The connection's read side as the body reader sees it. */
export interface BufferedInput {
  buf: Uint8Array;
  /** Unread bytes are `buf[start, end)`. */
  start: number;
  end: number;
  /** Reads more into `buf` (after the unread bytes); false at the end of the stream. */
  fill(): Promise<boolean>;
  /** With nothing buffered: the next bytes from the socket, up to `max`; null at the end. */
  readChunk(max: number): Promise<Uint8Array | null>;
}

/** A body that breaks its framing (or ends early): the connection cannot go on. */
export class BodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BodyError";
  }
}

/** The longest chunk-size or trailer line accepted. */
const MAX_LINE = 4096;
/** All trailer lines together. */
const MAX_TRAILERS = 64 * 1024;
/** Bytes read from the socket at once for a body. */
const READ_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 2 ** 53;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const DONE = 4;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

/** Reads one request body off a {@link BufferedInput}. */
export class BodyReader {
  #state: number;
  /** Bytes of data left: of the whole body, or of the current chunk. */
  #remaining: number;
  readonly #chunked: boolean;
  #trailerBytes = 0;
  /** Body bytes handed out so far. */
  received = 0;

  /** @param length the head's `bodyLength`: > 0, or {@link CHUNKED} */
  constructor(readonly input: BufferedInput, length: number) {
    this.#chunked = length === CHUNKED;
    this.#remaining = this.#chunked ? 0 : length;
    this.#state = this.#chunked ? SIZE : length > 0 ? DATA : DONE;
  }

  /** The whole body has been read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** The next piece of body (the caller keeps it), or null at its end. Throws {@link BodyError}. */
  async next(): Promise<Uint8Array | null> {
    for (;;) {
      switch (this.#state) {
        case DATA:
          return await this.#data();
        case SIZE:
          await this.#sizeLine();
          break;
        case DATA_END:
          await this.#dataEnd();
          break;
        case TRAILERS:
          await this.#trailer();
          break;
        default:
          return null;
      }
    }
  }

  /** Reads and drops the rest, up to `limit` more bytes: false when it is longer. */
  async discard(limit: number): Promise<boolean> {
    if (!this.#chunked && this.#remaining > limit) return false;
    let dropped = 0;
    for (;;) {
      const piece = await this.next();
      if (piece === null) return true;
      dropped += piece.length;
      if (dropped > limit) return false;
    }
  }

  async #data(): Promise<Uint8Array> {
    const input = this.input;
    const buffered = input.end - input.start;
    let piece: Uint8Array;
    if (buffered > 0) {
      const n = Math.min(buffered, this.#remaining);
      // A copy: the connection's buffer is reused.
      piece = input.buf.slice(input.start, input.start + n);
      input.start += n;
    } else {
      const chunk = await input.readChunk(Math.min(this.#remaining, READ_SIZE));
      if (chunk === null) throw new BodyError("the connection ended inside the body");
      piece = chunk;
    }
    this.#remaining -= piece.length;
    this.received += piece.length;
    if (this.#remaining === 0) this.#state = this.#chunked ? DATA_END : DONE;
    return piece;
  }

  async #sizeLine(): Promise<void> {
    const [start, end] = await this.#line();
    const buf = this.input.buf;
    let size = 0;
    let i = start;
    for (; i < end && HEX[buf[i]] >= 0; i++) {
      // Checked before the step: past 2^53 the sum would round and pass.
      if (size >= MAX_CHUNK_SIZE / 16) throw new BodyError("chunk size over 2^53");
      size = size * 16 + HEX[buf[i]];
    }
    if (i === start) throw new BodyError("bad chunk size line");
    // Optional BWS then chunk extensions (`;name[=value]`), which are ignored.
    while (i < end && (buf[i] === 32 || buf[i] === 9)) i++;
    if (i < end && buf[i] !== 59) throw new BodyError("bad chunk size line");
    for (; i < end; i++) {
      const b = buf[i];
      if ((b < 32 && b !== 9) || b === 127) throw new BodyError("bad chunk extension");
    }
    this.#remaining = size;
    this.#state = size === 0 ? TRAILERS : DATA;
  }

  async #dataEnd(): Promise<void> {
    const input = this.input;
    while (input.end - input.start < 2) {
      if (!(await input.fill())) throw new BodyError("the connection ended inside the body");
    }
    if (input.buf[input.start] !== 13 || input.buf[input.start + 1] !== 10) {
      throw new BodyError("no CRLF after chunk data");
    }
    input.start += 2;
    this.#state = SIZE;
  }

  async #trailer(): Promise<void> {
    const [start, end] = await this.#line();
    if (start === end) {
      this.#state = DONE;
      return;
    }
    this.#trailerBytes += end - start + 2;
    if (this.#trailerBytes > MAX_TRAILERS) throw new BodyError("trailers too large");
  }

  /** The next line (without its CRLF), consumed: [start, end) in `input.buf`. */
  async #line(): Promise<[number, number]> {
    const input = this.input;
    let from = input.start;
    for (;;) {
      const buf = input.buf;
      for (let i = from; i < input.end; i++) {
        if (buf[i] !== 10) continue;
        if (i === input.start || buf[i - 1] !== 13) throw new BodyError("bare LF in chunked body");
        const start = input.start;
        input.start = i + 1;
        return [start, i - 1];
      }
      if (input.end - input.start > MAX_LINE) throw new BodyError("chunked line too long");
      from = Math.max(input.start, input.end);
      const offset = input.start;
      if (!(await input.fill())) throw new BodyError("the connection ended inside the body");
      // fill() may have moved the unread bytes to the buffer's start.
      from -= offset - input.start;
    }
  }
}
