/**
 * Request bodies on the HTTP/1.1 front: exactly Content-Length bytes, or chunked decoded strictly
 * by the one decoder the upstream client uses too (src/proxy/http1_syntax.ts: hex size, optional
 * extensions, CRLF after the data, trailers read and dropped, every line bounded). Works over a
 * {@link BufferedInput}: the connection's buffer (bytes that arrived with the head) first, then
 * the socket. Any failure is a {@link BodyError}: 400 bad_request, the connection closed.
 *
 * @module
 */
import {
  type BufferedInput,
  ChunkedDecoder,
  type ChunkedFault,
  readPiece,
} from "../../proxy/http1_syntax.ts";
import { CHUNKED } from "./head.ts";

export type { BufferedInput };

/** A body that breaks its framing (or ends early): the connection cannot go on. */
export class BodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BodyError";
  }
}

/** The longest chunk-size or trailer line accepted from a client. */
const MAX_LINE = 4096;
/** connection.ts tells a client that left from a bad body by this message. */
const ENDED = "the connection ended inside the body";

function bodyError(fault: ChunkedFault, detail: string): BodyError {
  return new BodyError(fault === "ended" ? ENDED : detail);
}

/** Reads one request body off a {@link BufferedInput}. */
export class BodyReader {
  /** Bytes of a Content-Length body left (unused when chunked). */
  #remaining: number;
  #received = 0;
  readonly #chunked: ChunkedDecoder | undefined;

  /** @param length the head's `bodyLength`: > 0, or {@link CHUNKED} */
  constructor(readonly input: BufferedInput, length: number) {
    this.#chunked = length === CHUNKED ? new ChunkedDecoder(input, bodyError, MAX_LINE) : undefined;
    this.#remaining = length === CHUNKED ? 0 : length;
  }

  /** Body bytes handed out so far. */
  get received(): number {
    return this.#chunked === undefined ? this.#received : this.#chunked.received;
  }

  /** The whole body has been read. */
  get done(): boolean {
    return this.#chunked === undefined ? this.#remaining === 0 : this.#chunked.done;
  }

  /** The next piece of body (the caller keeps it), or null at its end. Throws {@link BodyError}. */
  next(): Promise<Uint8Array | null> {
    // The decoder's promise as it is: no second await per piece.
    return this.#chunked === undefined ? this.#nextOfLength() : this.#chunked.next();
  }

  async #nextOfLength(): Promise<Uint8Array | null> {
    if (this.#remaining === 0) return null;
    const piece = await readPiece(this.input, this.#remaining);
    if (piece === null) throw new BodyError(ENDED);
    this.#remaining -= piece.length;
    this.#received += piece.length;
    return piece;
  }

  /** Reads and drops the rest, up to `limit` more bytes: false when it is longer. */
  async discard(limit: number): Promise<boolean> {
    if (this.#chunked === undefined && this.#remaining > limit) return false;
    let dropped = 0;
    for (;;) {
      const piece = await this.next();
      if (piece === null) return true;
      dropped += piece.length;
      if (dropped > limit) return false;
    }
  }
}
