/**
 * HTTP/1.1 syntax shared by both ends of the gateway: the upstream client (http1.ts,
 * response_head.ts) and the raw-socket front (src/runtime/front/), which imports it from here
 * (data flows proxy → runtime seam, never the reverse). One token table, one head scanner, one
 * Content-Length parser, one reading of Connection, one chunk encoder and one chunked decoder (RFC 9112 §7.1), so the two sides cannot drift apart in what they
 * accept.
 *
 * @module
 */

/** RFC 9110 §5.6.2 tchar, indexed by byte (or by char code of a latin1 string: >255 reads 0). */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = TOKEN[c + 32] = 1;

/** A Content-Length value: 1*DIGIT (at most 15 digits, within 2^53), else -1. */
export function parseLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** {@link connectionTokens}: `close`. */
export const CLOSE = 1;
/** {@link connectionTokens}: `keep-alive`. */
export const KEEP_ALIVE = 2;
/** {@link connectionTokens}: `upgrade`. */
export const UPGRADE = 4;

/** The Connection tokens that matter here, as bits (any case; repeated headers joined by ","). */
export function connectionTokens(value: string): number {
  // Nearly every message says one of these two, as written here.
  if (value === "keep-alive") return KEEP_ALIVE;
  if (value === "close") return CLOSE;
  const lower = value.toLowerCase();
  if (lower === "keep-alive") return KEEP_ALIVE;
  if (lower === "close") return CLOSE;
  let bits = 0;
  for (const raw of lower.split(",")) {
    const token = raw.trim();
    if (token === "close") bits |= CLOSE;
    else if (token === "keep-alive") bits |= KEEP_ALIVE;
    else if (token === "upgrade") bits |= UPGRADE;
  }
  return bits;
}

/** Whether an HTTP/1.`minor` message with these {@link connectionTokens} leaves the connection
 * open (RFC 9112 §9.3): 1.1 unless `close`; 1.0 only with `keep-alive` and without `close`. */
export function persists(minor: 0 | 1, tokens: number): boolean {
  return minor === 1 ? (tokens & CLOSE) === 0 : (tokens & (CLOSE | KEEP_ALIVE)) === KEEP_ALIVE;
}

/** {@link scanHead}: the head has not all arrived. */
export const HEAD_INCOMPLETE = -1;
/** {@link scanHead}: an LF without its CR. */
export const BARE_LF = -2;
/** {@link scanHead}: a CR without its LF. */
export const BARE_CR = -3;
/** {@link scanHead}: a NUL. */
export const NUL = -4;

/**
 * Where the head (request or response) that starts at `start` ends: the index past its
 * CRLF CRLF; {@link HEAD_INCOMPLETE} when that is not in `buf[start, end)` yet; {@link BARE_LF},
 * {@link BARE_CR} or {@link NUL} at the first such byte (RFC 9112 §2.2, RFC 9110 §5.5: two parsers
 * could read them differently). `from` (>= start) skips bytes already scanned. One byte loop finds
 * the end and checks the bytes: a byte above CR (nearly all) costs one comparison. (A
 * TypedArray's native indexOf from CR to CR was slower on Deno: docs/benchmarks.md.)
 */
export function scanHead(buf: Uint8Array, start: number, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const byte = buf[i];
    if (byte > 13) continue;
    if (byte === 10) {
      if (i === start || buf[i - 1] !== 13) return BARE_LF;
      if (i - 3 >= start && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
    } else if (byte === 13) {
      // A CR last in the buffer waits for the next byte (callers resume 3 bytes back).
      if (i + 1 === end) return HEAD_INCOMPLETE;
      if (buf[i + 1] !== 10) return BARE_CR;
    } else if (byte === 0) return NUL;
  }
  return HEAD_INCOMPLETE;
}

/** One chunk of a chunked body: size line, data, CRLF (`data` not empty: 0 is the last chunk). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = `${data.length.toString(16)}\r\n`;
  const out = new Uint8Array(size.length + data.length + 2);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** The last chunk and the empty trailer section: the end of a chunked body. */
export const LAST_CHUNK: Uint8Array = new TextEncoder().encode("0\r\n\r\n");

/** A connection's read side as a body reader sees it: a buffer, then the socket. */
export interface BufferedInput {
  buf: Uint8Array;
  /** Unread bytes are `buf[start, end)`. */
  start: number;
  end: number;
  /** Reads more into `buf` (after the unread bytes, which it may move); false at the end. */
  fill(): Promise<boolean>;
  /** With nothing buffered: the next bytes from the socket, up to `max`; null at the end. */
  readChunk(max: number): Promise<Uint8Array | null>;
}

/** Bytes taken from the socket at once for a body. */
const READ_SIZE = 64 * 1024;

/**
 * The next piece of a body, at most `max` bytes: a copy of buffered bytes (the buffer is reused),
 * else the socket's next chunk as it came (no copy). Null when the stream ended.
 */
export function readPiece(
  input: BufferedInput,
  max: number,
): Promise<Uint8Array | null> | Uint8Array {
  const buffered = input.end - input.start;
  if (buffered === 0) return input.readChunk(Math.min(max, READ_SIZE));
  const n = Math.min(buffered, max);
  const piece = input.buf.slice(input.start, input.start + n);
  input.start += n;
  return piece;
}

/** Why a chunked body failed: its bytes break the syntax, or the stream ended inside it. */
export type ChunkedFault = "malformed" | "ended";

/** Makes the side's own error (the front's 400, the client's 502) from a decoding failure. */
export type ChunkedError = (fault: ChunkedFault, detail: string) => Error;

/** All trailer lines together. */
const MAX_TRAILERS = 64 * 1024;
/** Past this a sum of hex digits would round (checked before the step). */
const MAX_CHUNK_SIZE = 2 ** 53;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const DONE = 4;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

/**
 * Decodes `Transfer-Encoding: chunked` off a {@link BufferedInput}, strictly: hex size (up to
 * 2^53), optional BWS and extensions without control characters, CRLF after the data, every line
 * ended by CRLF (a bare LF fails) and at most `maxLine` long, trailers read (64 KiB in all) and
 * dropped. Bytes after the body stay in the input for the next message.
 */
export class ChunkedDecoder {
  #state = SIZE;
  /** Bytes of the current chunk's data left. */
  #remaining = 0;
  #trailerBytes = 0;
  /** Bytes of the current line already scanned, from `input.start` (fill may move the buffer). */
  #scanned = 0;
  /** Body bytes handed out so far. */
  received = 0;

  constructor(
    readonly input: BufferedInput,
    readonly error: ChunkedError,
    readonly maxLine: number,
  ) {}

  /** The whole body has been read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** The next piece of body (the caller keeps it), or null at its end. Throws `error(...)`. */
  async next(): Promise<Uint8Array | null> {
    const input = this.input;
    for (;;) {
      switch (this.#state) {
        case DATA: {
          // Buffered bytes come back at once: no await (a tick) for them.
          const read = readPiece(input, this.#remaining);
          const piece = read instanceof Uint8Array ? read : await read;
          if (piece === null) throw this.error("ended", "the connection ended inside a chunk");
          this.#remaining -= piece.length;
          this.received += piece.length;
          if (this.#remaining === 0) this.#state = DATA_END;
          return piece;
        }
        case SIZE:
        case TRAILERS: {
          const lf = this.#lineEnd();
          if (lf < 0) break;
          const start = input.start;
          input.start = lf + 1;
          if (this.#state === SIZE) this.#sizeLine(start, lf - 1);
          else this.#trailer(start, lf - 1);
          continue;
        }
        case DATA_END: {
          if (input.end - input.start < 2) break;
          if (input.buf[input.start] !== 13 || input.buf[input.start + 1] !== 10) {
            throw this.error("malformed", "no CRLF after chunk data");
          }
          input.start += 2;
          this.#state = SIZE;
          continue;
        }
        default:
          return null;
      }
      // The step needs more bytes than are buffered.
      if (!(await input.fill())) throw this.error("ended", "the connection ended inside the body");
    }
  }

  /** The index of the LF ending the line at `input.start`, or -1 when it has not all arrived. */
  #lineEnd(): number {
    const input = this.input;
    const buf = input.buf;
    const start = input.start;
    for (let i = start + this.#scanned; i < input.end; i++) {
      if (buf[i] !== 10) continue;
      if (i === start || buf[i - 1] !== 13) {
        throw this.error("malformed", "bare LF in chunked body");
      }
      this.#scanned = 0;
      return i;
    }
    this.#scanned = input.end - start;
    if (this.#scanned > this.maxLine) throw this.error("malformed", "chunked line too long");
    return -1;
  }

  /** `buf[start, end)` is a chunk-size line without its CRLF. */
  #sizeLine(start: number, end: number): void {
    const buf = this.input.buf;
    let size = 0;
    let i = start;
    for (; i < end && HEX[buf[i]] >= 0; i++) {
      if (size >= MAX_CHUNK_SIZE / 16) throw this.error("malformed", "chunk size over 2^53");
      size = size * 16 + HEX[buf[i]];
    }
    if (i === start) throw this.error("malformed", "bad chunk size line");
    // Optional BWS then chunk extensions (`;name[=value]`), which are ignored.
    while (i < end && (buf[i] === 32 || buf[i] === 9)) i++;
    if (i < end && buf[i] !== 59) throw this.error("malformed", "bad chunk size line");
    for (; i < end; i++) {
      const b = buf[i];
      if ((b < 32 && b !== 9) || b === 127) throw this.error("malformed", "bad chunk extension");
    }
    this.#remaining = size;
    this.#state = size === 0 ? TRAILERS : DATA;
  }

  /** `buf[start, end)` is a trailer line (or the empty line that ends the body). */
  #trailer(start: number, end: number): void {
    if (start === end) {
      this.#state = DONE;
      return;
    }
    this.#trailerBytes += end - start + 2;
    if (this.#trailerBytes > MAX_TRAILERS) throw this.error("malformed", "trailers too large");
  }
}
