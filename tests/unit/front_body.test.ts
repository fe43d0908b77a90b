/**
 * The HTTP/1.1 front's request-body reader (src/runtime/front/body.ts): Content-Length bodies of
 * exactly N bytes, chunked decoded strictly (issue 8 point 7: bad size line, missing CRLF after
 * data, size over 2^53, bare LF), trailers dropped, lines bounded, bytes after the body left for
 * the next request; and discarding a body nobody read.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BodyError, BodyReader, type BufferedInput } from "../../src/runtime/front/body.ts";
import { CHUNKED } from "../../src/runtime/front/head.ts";

function bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** An input fed `pieces` one read at a time (as a socket would), with a small buffer. */
class PiecesInput implements BufferedInput {
  buf = new Uint8Array(16);
  start = 0;
  end = 0;
  readonly pieces: Uint8Array[];

  constructor(pieces: string[]) {
    this.pieces = pieces.map(bytes);
  }

  async fill(): Promise<boolean> {
    const piece = this.pieces.shift();
    if (piece === undefined) return false;
    const unread = this.buf.subarray(this.start, this.end);
    const next = new Uint8Array(Math.max(this.buf.length, unread.length + piece.length));
    next.set(unread);
    next.set(piece, unread.length);
    this.buf = next;
    this.start = 0;
    this.end = unread.length + piece.length;
    return true;
  }

  async readChunk(max: number): Promise<Uint8Array | null> {
    assert.equal(this.end, this.start, "readChunk only with nothing buffered");
    const piece = this.pieces.shift();
    if (piece === undefined) return null;
    if (piece.length > max) this.pieces.unshift(piece.subarray(max));
    return piece.subarray(0, max);
  }

  /** What is left for the next request. */
  rest(): string {
    return String.fromCharCode(...this.buf.subarray(this.start, this.end)) +
      this.pieces.map((piece) => String.fromCharCode(...piece)).join("");
  }
}

async function readAll(reader: BodyReader): Promise<string> {
  let out = "";
  for (let piece = await reader.next(); piece !== null; piece = await reader.next()) {
    out += String.fromCharCode(...piece);
  }
  return out;
}

async function chunked(pieces: string[]): Promise<{ body: string; rest: string }> {
  const input = new PiecesInput(pieces);
  const body = await readAll(new BodyReader(input, CHUNKED));
  return { body, rest: input.rest() };
}

async function rejects(pieces: string[], length = CHUNKED): Promise<void> {
  await assert.rejects(readAll(new BodyReader(new PiecesInput(pieces), length)), BodyError);
}

describe("front body reader", () => {
  it("Content-Length: exactly N bytes, from the buffer then the socket; the rest stays", async () => {
    const input = new PiecesInput(["hel", "lo wor", "ldGET /next"]);
    await input.fill();
    const reader = new BodyReader(input, 11);
    assert.equal(await readAll(reader), "hello world");
    assert.equal(reader.done, true);
    assert.equal(input.rest(), "GET /next");
  });

  it("Content-Length: a connection that ends early fails the body", async () => {
    await rejects(["abc"], 5);
  });

  it("chunked: sizes in hex (any case, leading zeros), extensions ignored, split anywhere", async () => {
    const text =
      "5\r\nhello\r\n0A;name=value\r\n0123456789\r\nf ; x\r\nabcdefghijklmno\r\n0\r\n\r\nNEXT";
    assert.deepEqual(await chunked([text]), {
      body: "hello0123456789abcdefghijklmno",
      rest: "NEXT",
    });
    const split = [...text].map((c) => c);
    assert.deepEqual(await chunked(split), {
      body: "hello0123456789abcdefghijklmno",
      rest: "NEXT",
    });
  });

  it("chunked: trailers are read and dropped", async () => {
    assert.deepEqual(await chunked(["3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT"]), {
      body: "abc",
      rest: "NEXT",
    });
  });

  it("chunked: malformed bodies fail (point 7)", async () => {
    await rejects(["zz\r\nabc\r\n0\r\n\r\n"]); // size not hex
    await rejects(["\r\nabc\r\n0\r\n\r\n"]); // no size
    await rejects(["3 x\r\nabc\r\n0\r\n\r\n"]); // junk after the size
    await rejects(["-3\r\nabc\r\n0\r\n\r\n"]);
    await rejects(["3\r\nabcdef\r\n0\r\n\r\n"]); // data longer than its size: no CRLF after it
    await rejects(["3\r\nabc\n0\r\n\r\n"]); // bare LF after data
    await rejects(["3\nabc\r\n0\r\n\r\n"]); // bare LF after the size
    await rejects(["3\r\nabc\r\n0\r\nX: 1\n\r\n"]); // bare LF in a trailer
    // 2^53 + 1 (rounds to 2^53 if summed before the check): refused at its size line.
    await assert.rejects(
      readAll(new BodyReader(new PiecesInput(["20000000000001\r\nabc\r\n0\r\n\r\n"]), CHUNKED)),
      /over 2\^53/,
    );
    await rejects(["3;\x01\r\nabc\r\n0\r\n\r\n"]); // control character in an extension
    await rejects(["3\r\nab"]); // ends inside the data
    await rejects(["3\r\nabc\r\n"]); // ends before the last chunk
    await rejects(["1".repeat(5000)]); // a size line without end
  });

  it("discard: the rest of a body is dropped up to a limit", async () => {
    const input = new PiecesInput(["abc", "defgh", "NEXT"]);
    assert.equal(await new BodyReader(input, 8).discard(100), true);
    assert.equal(input.rest(), "NEXT");
    assert.equal(await new BodyReader(new PiecesInput(["abc"]), 1000).discard(100), false);
    const big = new PiecesInput(["40\r\n", "x".repeat(64), "\r\n0\r\n\r\n"]);
    assert.equal(await new BodyReader(big, CHUNKED).discard(10), false);
  });
});
