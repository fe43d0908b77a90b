/**
 * WebSocket frames (RFC 6455 §5) for both ends the gateway plays: the client toward upstreams
 * (the frames it sends are masked, the frames it receives must not be) and the server toward
 * clients of its own HTTP/1.1 front (the opposite), chosen by a {@link Role}. No extension is
 * ever negotiated (the gateway re-encodes every message), so the RSV bits must be clear.
 *
 * {@link FrameReader} turns received bytes into whole messages (fragments joined, text checked
 * as UTF-8) and control frames; {@link encodeFrame} makes one frame.
 *
 * @module
 */

/**
 * Which end of the connection this side is (RFC 6455 §5.1): a client masks every frame it sends
 * and rejects masked frames; a server sends unmasked frames and requires masked ones.
 */
export type Role = "client" | "server";

export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** What the reader yields: a whole message, or a control frame. */
export type Incoming =
  | { readonly type: "text"; readonly data: string }
  | { readonly type: "binary"; readonly data: Uint8Array }
  | { readonly type: "ping"; readonly data: Uint8Array }
  | { readonly type: "pong"; readonly data: Uint8Array }
  /** `code` 1005 when the close frame had no status code. */
  | { readonly type: "close"; readonly code: number; readonly reason: string };

/** The peer broke the protocol; `code` is the close code to answer with (1002, 1007, 1009). */
export class FrameError extends Error {
  constructor(readonly code: 1002 | 1007 | 1009, message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Close code 1005: the close frame carried no status code (never sent on the wire). */
export const NO_STATUS = 1005;
/** Close code 1006: the connection ended without a close frame (never sent on the wire). */
export const ABNORMAL = 1006;

/** Whether `code` may appear in a close frame (RFC 6455 §7.4, IANA registry). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Mask keys come from a pool of random bytes, refilled when used up (one call per 1024). */
const maskPool = new Uint8Array(4096);
let maskAt = maskPool.length;

function nextMask(): Uint8Array {
  if (maskAt === maskPool.length) {
    crypto.getRandomValues(maskPool);
    maskAt = 0;
  }
  const mask = maskPool.subarray(maskAt, maskAt + 4);
  maskAt += 4;
  return mask;
}

/**
 * XORs `bytes` in place with the 4-byte `key` (RFC 6455 §5.3), key byte 0 on `bytes[0]`. The
 * aligned middle goes a 32-bit word at a time: a 16 MiB message is unmasked in milliseconds.
 */
export function applyMask(bytes: Uint8Array, key: Uint8Array): void {
  const length = bytes.length;
  let i = 0;
  const lead = Math.min(length, (4 - (bytes.byteOffset & 3)) & 3);
  for (; i < lead; i++) bytes[i] ^= key[i & 3];
  const words = (length - i) >>> 2;
  if (words > 0) {
    // The key as a word starting at byte i, in the platform's byte order like the view.
    const rotated = new Uint8Array(4);
    for (let k = 0; k < 4; k++) rotated[k] = key[(i + k) & 3];
    const keyWord = new Uint32Array(rotated.buffer)[0];
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= keyWord;
    i += words * 4;
  }
  for (; i < length; i++) bytes[i] ^= key[i & 3];
}

/** One final frame carrying `payload`, masked when the sender's `role` is the client. */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  role: Role = "client",
): Uint8Array<ArrayBuffer> {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const masked = role === "client";
  const maskBit = masked ? 0x80 : 0;
  const headerLength = 2 + lengthBytes + (masked ? 4 : 0);
  const frame = new Uint8Array(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) {
    frame[1] = maskBit | length;
  } else if (lengthBytes === 2) {
    frame[1] = maskBit | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = maskBit | 127;
    const view = new DataView(frame.buffer);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
  }
  frame.set(payload, headerLength);
  if (masked) {
    const mask = nextMask();
    frame.set(mask, headerLength - 4);
    applyMask(frame.subarray(headerLength), mask);
  }
  return frame;
}

/** A text frame (masked for the client `role`). */
export function encodeText(text: string, role: Role = "client"): Uint8Array<ArrayBuffer> {
  return encodeFrame(OPCODE.text, encoder.encode(text), role);
}

/**
 * A close frame: `code` and `reason` (cut to the 123 bytes a control frame leaves), or an empty
 * payload for {@link NO_STATUS}; masked for the client `role`.
 */
export function encodeClose(
  code: number,
  reason = "",
  role: Role = "client",
): Uint8Array<ArrayBuffer> {
  if (code === NO_STATUS) return encodeFrame(OPCODE.close, new Uint8Array(0), role);
  let text = encoder.encode(reason);
  if (text.length > 123) text = encoder.encode(cutUtf8(reason, 123));
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return encodeFrame(OPCODE.close, payload, role);
}

/** The longest prefix of `text` whose UTF-8 form fits in `max` bytes. */
function cutUtf8(text: string, max: number): string {
  let out = "";
  let bytes = 0;
  for (const char of text) {
    const size = encoder.encode(char).length;
    if (bytes + size > max) break;
    out += char;
    bytes += size;
  }
  return out;
}

/**
 * Parses frames from the peer as bytes arrive: for the client `role` (the default) frames from
 * a server, which must be unmasked; for the server role frames from a client, which must be
 * masked and are unmasked in place (`push` hands its chunks over). Data frames are joined into
 * whole messages of at most `maxMessageBytes`; control frames may come between fragments.
 */
export class FrameReader {
  readonly #maxMessageBytes: number;
  /** Whether received frames must be masked (this side is the server). */
  readonly #masked: boolean;
  readonly #key = new Uint8Array(4);
  readonly #chunks: Uint8Array[] = [];
  /** Index of the first unconsumed chunk. */
  #head = 0;
  #buffered = 0;
  /** The message being assembled from fragments, if any. */
  #messageOpcode = -1;
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;

  constructor(maxMessageBytes: number, role: Role = "client") {
    this.#maxMessageBytes = maxMessageBytes;
    this.#masked = role === "server";
  }

  /** Bytes received and not parsed yet. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Hands `chunk` over (it is kept until parsed, and unmasked in place in the server role). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // A small view of a large buffer (a short read into a fresh 64 KiB array) is copied: kept
    // as it is, a peer trickling bytes could make each byte of a message pin a whole buffer.
    if (chunk.length * 2 < chunk.buffer.byteLength) chunk = chunk.slice();
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next message or control frame, or undefined until more bytes arrive. */
  next(): Incoming | undefined {
    for (;;) {
      if (this.#buffered < 2) return undefined;
      const head = this.#peek(Math.min(this.#buffered, 14));
      const fin = (head[0] & 0x80) !== 0;
      const opcode = head[0] & 0x0f;
      if ((head[0] & 0x70) !== 0) throw new FrameError(1002, "RSV bits set (no extension)");
      if (((head[1] & 0x80) !== 0) !== this.#masked) {
        throw new FrameError(
          1002,
          this.#masked ? "unmasked frame from the client" : "masked frame from the server",
        );
      }
      let length = head[1] & 0x7f;
      let headerLength = 2;
      if (length === 126) {
        if (head.length < 4) return undefined;
        length = (head[2] << 8) | head[3];
        headerLength = 4;
      } else if (length === 127) {
        if (head.length < 10) return undefined;
        const high = ((head[2] << 24) | (head[3] << 16) | (head[4] << 8) | head[5]) >>> 0;
        const low = ((head[6] << 24) | (head[7] << 16) | (head[8] << 8) | head[9]) >>> 0;
        if (high >= 0x200000) throw new FrameError(1009, "frame length over 2^53");
        length = high * 2 ** 32 + low;
        headerLength = 10;
      }
      if (this.#masked) {
        if (head.length < headerLength + 4) return undefined;
        this.#key.set(head.subarray(headerLength, headerLength + 4));
        headerLength += 4;
      }
      const control = opcode >= 0x8;
      if (control) {
        if (opcode > OPCODE.pong) throw new FrameError(1002, `reserved opcode ${opcode}`);
        if (!fin) throw new FrameError(1002, "fragmented control frame");
        if (length > 125) throw new FrameError(1002, "control frame over 125 bytes");
      } else {
        if (opcode > OPCODE.binary) throw new FrameError(1002, `reserved opcode ${opcode}`);
        if (opcode === OPCODE.continuation && this.#messageOpcode < 0) {
          throw new FrameError(1002, "continuation frame without a message");
        }
        if (opcode !== OPCODE.continuation && this.#messageOpcode >= 0) {
          throw new FrameError(1002, "new message inside a fragmented one");
        }
        if (this.#fragmentBytes + length > this.#maxMessageBytes) {
          throw new FrameError(1009, `message over ${this.#maxMessageBytes} bytes`);
        }
      }
      if (this.#buffered < headerLength + length) return undefined;
      this.#skip(headerLength);
      const payload = this.#take(length);
      if (this.#masked) applyMask(payload, this.#key);

      if (control) return controlFrame(opcode, payload);
      if (opcode !== OPCODE.continuation) this.#messageOpcode = opcode;
      if (!fin) {
        this.#fragments.push(payload);
        this.#fragmentBytes += payload.length;
        continue;
      }
      let data = payload;
      if (this.#fragments.length > 0) {
        this.#fragments.push(payload);
        data = concat(this.#fragments, this.#fragmentBytes + payload.length);
        this.#fragments = [];
        this.#fragmentBytes = 0;
      }
      const messageOpcode = this.#messageOpcode;
      this.#messageOpcode = -1;
      if (messageOpcode === OPCODE.binary) return { type: "binary", data };
      return { type: "text", data: decodeUtf8(data) };
    }
  }

  /** A copy of the first `n` buffered bytes, not consumed. */
  #peek(n: number): Uint8Array {
    const first = this.#chunks[this.#head];
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    for (let i = this.#head, at = 0; at < n; i++) {
      const chunk = this.#chunks[i];
      const part = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, part), at);
      at += part;
    }
    return out;
  }

  #skip(n: number): void {
    this.#take(n);
  }

  /** The first `n` buffered bytes, consumed. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    this.#buffered -= n;
    const first = this.#chunks[this.#head];
    if (first.length === n) return this.#shift();
    if (first.length > n) {
      this.#chunks[this.#head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[this.#head];
      const part = Math.min(chunk.length, n - at);
      out.set(part === chunk.length ? chunk : chunk.subarray(0, part), at);
      at += part;
      if (part === chunk.length) this.#shift();
      else this.#chunks[this.#head] = chunk.subarray(part);
    }
    return out;
  }

  /** Removes the first chunk (an index moves; the array is compacted now and then, so that
   * many small reads do not make each removal cost the length of the queue). */
  #shift(): Uint8Array {
    const chunk = this.#chunks[this.#head++];
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
    return chunk;
  }
}

function controlFrame(opcode: number, payload: Uint8Array): Incoming {
  if (opcode === OPCODE.ping) return { type: "ping", data: payload };
  if (opcode === OPCODE.pong) return { type: "pong", data: payload };
  if (payload.length === 0) return { type: "close", code: NO_STATUS, reason: "" };
  if (payload.length === 1) throw new FrameError(1002, "close frame with a 1-byte payload");
  const code = (payload[0] << 8) | payload[1];
  if (!isSendableCloseCode(code)) throw new FrameError(1002, `invalid close code ${code}`);
  return { type: "close", code, reason: decodeUtf8(payload.subarray(2)) };
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new FrameError(1007, "text that is not UTF-8");
  }
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
