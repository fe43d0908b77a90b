import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  applyMask,
  encodeClose,
  encodeFrame,
  encodeText,
  FrameError,
  FrameReader,
  type Incoming,
  OPCODE,
} from "../../src/proxy/ws_frames.ts";

/** A frame as a server sends it (unmasked), built by hand from RFC 6455 §5.2. */
function serverFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): Uint8Array {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const head: number[] = [((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode];
  const maskBit = options.mask ? 0x80 : 0;
  if (data.length < 126) head.push(maskBit | data.length);
  else if (data.length < 65536) head.push(maskBit | 126, data.length >> 8, data.length & 0xff);
  else {
    head.push(maskBit | 127, 0, 0, 0, 0);
    head.push((data.length >>> 24) & 0xff, (data.length >>> 16) & 0xff);
    head.push((data.length >>> 8) & 0xff, data.length & 0xff);
  }
  if (options.mask) head.push(0, 0, 0, 0);
  const frame = new Uint8Array(head.length + data.length);
  frame.set(head);
  frame.set(data, head.length);
  return frame;
}

function readAll(reader: FrameReader): Incoming[] {
  const out: Incoming[] = [];
  for (let frame = reader.next(); frame !== undefined; frame = reader.next()) out.push(frame);
  return out;
}

/** Unmasks a frame made by encodeFrame: [opcode, fin, payload]. */
function decodeClientFrame(
  frame: Uint8Array,
): { opcode: number; fin: boolean; payload: Uint8Array } {
  assert.ok(frame[1] & 0x80, "client frames are masked");
  let length = frame[1] & 0x7f;
  let at = 2;
  if (length === 126) {
    length = (frame[2] << 8) | frame[3];
    at = 4;
  } else if (length === 127) {
    length = Number(new DataView(frame.buffer, frame.byteOffset).getBigUint64(2));
    at = 10;
  }
  const mask = frame.subarray(at, at + 4);
  const payload = frame.subarray(at + 4).map((byte, i) => byte ^ mask[i & 3]);
  assert.equal(payload.length, length);
  return { opcode: frame[0] & 0x0f, fin: (frame[0] & 0x80) !== 0, payload };
}

describe("encodeFrame (client → server, masked)", () => {
  for (const size of [0, 125, 126, 65535, 65536, 200_000]) {
    it(`a ${size}-byte payload: the right length form, masked, unmasks to the payload`, () => {
      const payload = new Uint8Array(size).map((_, i) => i % 251);
      const frame = encodeFrame(OPCODE.binary, payload);
      const decoded = decodeClientFrame(frame);
      assert.equal(decoded.opcode, OPCODE.binary);
      assert.ok(decoded.fin);
      assert.deepEqual(decoded.payload, payload);
      const expectedHeader = size < 126 ? 2 : size < 65536 ? 4 : 10;
      assert.equal(frame.length, expectedHeader + 4 + size);
    });
  }

  it("close frames carry the code and a reason cut to 123 bytes (whole characters)", () => {
    const close = decodeClientFrame(encodeClose(4001, "bye"));
    assert.equal(close.opcode, OPCODE.close);
    assert.deepEqual([...close.payload], [0x0f, 0xa1, ...new TextEncoder().encode("bye")]);
    assert.equal(decodeClientFrame(encodeClose(1005)).payload.length, 0, "1005: no status");
    const long = decodeClientFrame(encodeClose(1000, "é".repeat(100)));
    assert.equal(long.payload.length, 2 + 122, "61 two-byte characters fit in 123 bytes");
  });
});

describe("FrameReader (server → client)", () => {
  it("text, binary, ping, pong and close frames", () => {
    const reader = new FrameReader(1 << 20);
    reader.push(serverFrame(OPCODE.text, "héllo"));
    reader.push(serverFrame(OPCODE.binary, new Uint8Array([1, 2, 3])));
    reader.push(serverFrame(OPCODE.ping, "p"));
    reader.push(serverFrame(OPCODE.pong, "q"));
    reader.push(serverFrame(OPCODE.close, new Uint8Array([0x03, 0xe9, 0x61])));
    reader.push(serverFrame(OPCODE.close, new Uint8Array(0)));
    assert.deepEqual(readAll(reader), [
      { type: "text", data: "héllo" },
      { type: "binary", data: new Uint8Array([1, 2, 3]) },
      { type: "ping", data: new TextEncoder().encode("p") },
      { type: "pong", data: new TextEncoder().encode("q") },
      { type: "close", code: 1001, reason: "a" },
      { type: "close", code: 1005, reason: "" },
    ]);
  });

  it("16- and 64-bit lengths, bytes arriving one at a time", () => {
    const reader = new FrameReader(1 << 20);
    const medium = "m".repeat(300);
    const large = new Uint8Array(70_000).map((_, i) => i & 0xff);
    const bytes = new Uint8Array([
      ...serverFrame(OPCODE.text, medium),
      ...serverFrame(OPCODE.binary, large),
    ]);
    const out: Incoming[] = [];
    for (const byte of bytes) {
      reader.push(new Uint8Array([byte]));
      out.push(...readAll(reader));
    }
    assert.deepEqual(out, [{ type: "text", data: medium }, { type: "binary", data: large }]);
    assert.equal(reader.buffered, 0);
  });

  it("a small view of a large buffer is copied, not kept (a trickle cannot pin buffers)", () => {
    const reader = new FrameReader(1 << 20);
    const frame = serverFrame(OPCODE.binary, new Uint8Array(10_000));
    const views: Uint8Array[] = [];
    for (let at = 0; at < frame.length; at += 1000) {
      const large = new Uint8Array(64 * 1024);
      large.set(frame.subarray(at, at + 1000));
      views.push(large.subarray(0, Math.min(1000, frame.length - at)));
      reader.push(views[views.length - 1]);
    }
    for (const view of views) view.fill(0xee); // the reader must not see this
    assert.deepEqual(readAll(reader), [{ type: "binary", data: new Uint8Array(10_000) }]);
  });

  it("fragments are joined, with control frames between them; UTF-8 split across fragments", () => {
    const reader = new FrameReader(1 << 20);
    const bytes = new TextEncoder().encode("a✓b");
    reader.push(serverFrame(OPCODE.text, bytes.subarray(0, 2), { fin: false }));
    reader.push(serverFrame(OPCODE.ping, ""));
    reader.push(serverFrame(OPCODE.continuation, bytes.subarray(2, 3), { fin: false }));
    reader.push(serverFrame(OPCODE.continuation, bytes.subarray(3)));
    assert.deepEqual(readAll(reader), [
      { type: "ping", data: new Uint8Array(0) },
      { type: "text", data: "a✓b" },
    ]);
  });

  const violations: [string, Uint8Array[], number][] = [
    ["a masked frame", [serverFrame(OPCODE.text, "x", { mask: true })], 1002],
    ["RSV bits (no extension was negotiated)", [serverFrame(OPCODE.text, "x", { rsv: 4 })], 1002],
    ["a reserved opcode", [serverFrame(0x3, "x")], 1002],
    ["a fragmented ping", [serverFrame(OPCODE.ping, "x", { fin: false })], 1002],
    ["a ping over 125 bytes", [serverFrame(OPCODE.ping, "x".repeat(126))], 1002],
    ["a continuation without a message", [serverFrame(OPCODE.continuation, "x")], 1002],
    ["a message inside a fragmented one", [
      serverFrame(OPCODE.text, "x", { fin: false }),
      serverFrame(OPCODE.text, "y"),
    ], 1002],
    ["text that is not UTF-8", [serverFrame(OPCODE.text, new Uint8Array([0xff]))], 1007],
    ["a close code that may not be sent", [
      serverFrame(OPCODE.close, new Uint8Array([0x03, 0xee])),
    ], 1002],
    ["a 1-byte close payload", [serverFrame(OPCODE.close, new Uint8Array([3]))], 1002],
    ["a message over the limit", [serverFrame(OPCODE.binary, new Uint8Array(1025))], 1009],
    ["fragments over the limit together", [
      serverFrame(OPCODE.binary, new Uint8Array(600), { fin: false }),
      serverFrame(OPCODE.continuation, new Uint8Array(600)),
    ], 1009],
  ];
  for (const [what, frames, code] of violations) {
    it(`${what} → FrameError ${code}`, () => {
      const reader = new FrameReader(1024);
      for (const frame of frames) reader.push(frame);
      assert.throws(
        () => readAll(reader),
        (error) => error instanceof FrameError && error.code === code,
      );
    });
  }
});

describe("the server role (the front's client WebSockets)", () => {
  for (const size of [0, 125, 126, 65535, 65536, 200_000]) {
    it(`encodeFrame: a ${size}-byte payload unmasked, in the right length form`, () => {
      const payload = new Uint8Array(size).map((_, i) => i % 251);
      const frame = encodeFrame(OPCODE.binary, payload, "server");
      assert.deepEqual(frame, serverFrame(OPCODE.binary, payload), "as RFC 6455 §5.2 lays it out");
    });
  }

  it("server frames read back by the client role; client frames by the server role", () => {
    const large = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
    const toClient = new FrameReader(1 << 20, "client");
    toClient.push(encodeText("héllo", "server"));
    toClient.push(encodeFrame(OPCODE.binary, large, "server"));
    toClient.push(encodeClose(4001, "bye", "server"));
    assert.deepEqual(readAll(toClient), [
      { type: "text", data: "héllo" },
      { type: "binary", data: large },
      { type: "close", code: 4001, reason: "bye" },
    ]);
    const toServer = new FrameReader(1 << 20, "server");
    const bytes = new Uint8Array([
      ...encodeText("héllo"),
      ...encodeFrame(OPCODE.binary, large),
      ...encodeFrame(OPCODE.ping, new Uint8Array([9])),
      ...encodeClose(1005),
    ]);
    const out: Incoming[] = [];
    // In uneven pieces, so that headers and mask keys are split across chunks.
    for (let at = 0; at < bytes.length; at += 7) {
      toServer.push(bytes.slice(at, at + 7));
      out.push(...readAll(toServer));
    }
    assert.deepEqual(out, [
      { type: "text", data: "héllo" },
      { type: "binary", data: large },
      { type: "ping", data: new Uint8Array([9]) },
      { type: "close", code: 1005, reason: "" },
    ]);
  });

  it("masked fragments are joined, each with its own key", () => {
    const reader = new FrameReader(1 << 20, "server");
    const text = new TextEncoder().encode("a✓b");
    const first = encodeFrame(OPCODE.text, text.subarray(0, 2));
    first[0] &= 0x7f;
    const second = encodeFrame(OPCODE.continuation, text.subarray(2));
    reader.push(first);
    reader.push(encodeFrame(OPCODE.pong, new Uint8Array([1])));
    reader.push(second);
    assert.deepEqual(readAll(reader), [
      { type: "pong", data: new Uint8Array([1]) },
      { type: "text", data: "a✓b" },
    ]);
  });

  it("an unmasked frame from a client → FrameError 1002", () => {
    const reader = new FrameReader(1024, "server");
    reader.push(serverFrame(OPCODE.text, "x"));
    assert.throws(
      () => readAll(reader),
      (error) => error instanceof FrameError && error.code === 1002,
    );
  });

  it("a message over the limit is refused from its header, before its payload arrives", () => {
    const reader = new FrameReader(1024, "server");
    reader.push(encodeFrame(OPCODE.binary, new Uint8Array(1025)).subarray(0, 8));
    assert.throws(
      () => readAll(reader),
      (error) => error instanceof FrameError && error.code === 1009,
    );
  });

  it("applyMask: byte-wise XOR with the key at any alignment and length, undone by itself", () => {
    const key = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
    const backing = new Uint8Array(1100).map((_, i) => (i * 31) & 0xff);
    for (const offset of [0, 1, 2, 3]) {
      for (const length of [0, 1, 3, 4, 5, 7, 8, 15, 16, 17, 1031]) {
        const bytes = backing.slice().subarray(offset, offset + length);
        const original = bytes.slice();
        applyMask(bytes, key);
        assert.deepEqual(bytes, original.map((byte, i) => byte ^ key[i & 3]));
        applyMask(bytes, key);
        assert.deepEqual(bytes, original);
      }
    }
  });
});
