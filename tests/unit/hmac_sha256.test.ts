/**
 * SHA-256 and HMAC-SHA256 (src/sticky/hmac_sha256.ts) against node:crypto, over many random
 * lengths of message and key, on both paths (a message of at most 55 bytes finished by one
 * WebAssembly call, a longer one block by block), with calls of every kind interleaved (the
 * module's memory is shared by all of them); and the embedded WebAssembly against its source:
 * src/sticky/sha256.wat assembled again must give the bytes, and the text, of sha256_wasm.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import { HmacSha256, sha256 } from "../../src/sticky/hmac_sha256.ts";
import { SHA256_WASM } from "../../src/sticky/sha256_wasm.ts";
import { assembleSha256, generatedModule } from "../../src/sticky/sha256_wasm_build.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
/** A random integer in [0, n). */
const below = (n: number) => Math.floor(Math.random() * n);
/** Lengths around every boundary of the padding, then random ones. */
const LENGTHS = [
  ...[0, 1, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 127, 128, 129, 300, 1000, 4099],
  ...Array.from({ length: 300 }, () => below(200)),
];

describe("the embedded WebAssembly", () => {
  it("is src/sticky/sha256.wat assembled (run src/sticky/sha256_wasm_build.ts after editing)", async () => {
    const bytes = await assembleSha256();
    assert.equal(hex(SHA256_WASM), hex(bytes), "sha256_wasm.ts embeds other bytes");
    const file = new URL("../../src/sticky/sha256_wasm.ts", import.meta.url);
    assert.equal(readFileSync(file, "utf8"), generatedModule(bytes), "sha256_wasm.ts was edited");
  });
});

describe("SHA-256", () => {
  it("equals node:crypto for messages of every length around the block size and random ones", () => {
    for (const length of LENGTHS) {
      const message = randomBytes(length);
      assert.equal(
        hex(sha256(message)),
        createHash("sha256").update(message).digest("hex"),
        `message ${length} bytes`,
      );
    }
    assert.equal(
      hex(sha256(new Uint8Array(0))),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });

  it("hashes a view by its own bytes (offset, length), not its buffer's", () => {
    const buffer = randomBytes(300);
    const view = new Uint8Array(buffer.buffer, buffer.byteOffset + 7, 150);
    assert.equal(hex(sha256(view)), createHash("sha256").update(view).digest("hex"));
  });
});

describe("HMAC-SHA256", () => {
  it("equals node:crypto for random keys and messages, short and long, interleaved", () => {
    for (const length of LENGTHS) {
      const keyLength = [0, 1, 32, 63, 64, 65, 200][below(7)] + below(3);
      const key = randomBytes(keyLength);
      const message = randomBytes(length);
      const mac = new HmacSha256(key);
      const expected = createHmac("sha256", key).update(message).digest("hex");
      const label = `message ${length} bytes, key ${keyLength} bytes`;
      assert.equal(hex(mac.sign(message)), expected, label);
      // Another key's tag, and a hash, in between: nothing of one call may leak into the next.
      new HmacSha256(randomBytes(32)).sign(randomBytes(below(120)));
      sha256(randomBytes(below(200)));
      const out = new Uint8Array(32).fill(0xff);
      assert.equal(mac.sign(message, out), out);
      assert.equal(hex(out), expected, `${label}, into out`);
    }
  });

  it("signAfter(absorbed(block), m) is the tag of block + m, for m of random lengths", () => {
    for (const length of LENGTHS) {
      const key = randomBytes(32 + below(40));
      const block = randomBytes(64);
      const message = randomBytes(length);
      const mac = new HmacSha256(key);
      const absorbed = mac.absorbed(block);
      const expected = createHmac("sha256", key).update(block).update(message).digest("hex");
      assert.equal(hex(mac.signAfter(absorbed, message)), expected, `message ${length} bytes`);
      assert.equal(hex(mac.sign(Buffer.concat([block, message]))), expected);
      // The absorbed state is the caller's and stays as it was: a second tag is the same.
      assert.equal(hex(mac.signAfter(absorbed, message)), expected);
    }
    assert.throws(() => new HmacSha256(randomBytes(32)).absorbed(new Uint8Array(63)), /64-byte/);
  });

  it("signAfterAscii(absorbed, text) is signAfter of its bytes; undefined for non-ASCII or long text", () => {
    const mac = new HmacSha256(Buffer.from("k".repeat(40)));
    const absorbed = mac.absorbed(new Uint8Array(64).fill(7));
    for (let length = 0; length <= 55; length++) {
      const text = Array.from({ length }, (_, i) => String.fromCharCode(33 + (i * 7 + length) % 94))
        .join("");
      const out = new Uint8Array(32);
      assert.equal(
        hex(mac.signAfterAscii(absorbed, text, out)!),
        hex(mac.signAfter(absorbed, Buffer.from(text))),
        `length ${length}`,
      );
    }
    assert.equal(mac.signAfterAscii(absorbed, "1.k1.é", new Uint8Array(32)), undefined);
    assert.equal(mac.signAfterAscii(absorbed, "x".repeat(56), new Uint8Array(32)), undefined);
  });

  it("gives RFC 4231's test vectors", () => {
    const cases: [string, string, string][] = [
      // Test case 1, 2 and 6 (a key longer than a block).
      [
        "0b".repeat(20),
        hexOf("Hi There"),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      ],
      [
        hexOf("Jefe"),
        hexOf("what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      ],
      [
        "aa".repeat(131),
        hexOf("Test Using Larger Than Block-Size Key - Hash Key First"),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      ],
    ];
    for (const [key, message, tag] of cases) {
      assert.equal(
        hex(new HmacSha256(Buffer.from(key, "hex")).sign(Buffer.from(message, "hex"))),
        tag,
      );
    }
  });
});

function hexOf(text: string): string {
  return Buffer.from(text).toString("hex");
}
