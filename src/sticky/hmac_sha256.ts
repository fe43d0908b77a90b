/**
 * HMAC-SHA256 (RFC 2104, FIPS 180-4) for signing and verifying sticky tokens on the request path.
 * A key's inner and outer pad states are computed once, so a short message costs two
 * compressions (three for a longer one) and no call into the runtime: node:crypto's `createHmac`
 * costs tens of µs per call on Deno (each call crosses into Rust several times). The compression
 * is WebAssembly (src/sticky/sha256.wat, embedded by sha256_wasm.ts), and a message of at most
 * 55 bytes (every token's) is finished, inner and outer hash, in one call: a token's tag costs
 * 1.6-2 times less CPU than the same in JS did (2.0 -> 1.3 µs on Deno, 2.5 -> 1.35 µs on Bun, on
 * a shared, loaded machine). The results are checked against node:crypto in
 * tests/unit/hmac_sha256.test.ts.
 *
 * There is no JS fallback: Deno, Bun and the compiled binary all have WebAssembly. Only a V8 run
 * without a JIT (`deno run --v8-flags=--jitless`) lacks it; there a hash throws when first asked
 * for (so md5 cookies still work), rather than at import.
 *
 * @module
 */
import { SHA256_WASM } from "./sha256_wasm.ts";

/** What sha256.wat exports. */
interface Sha256Wasm {
  readonly memory: WebAssembly.Memory;
  /** Compresses the `count` (1 or 2) blocks at {@link BLOCKS} into the state at 0. */
  compress(count: number): void;
  /** HMAC's finish of the `length` (≤ {@link SHORT}) bytes at {@link BLOCKS}: the inner hash
   * from `i0..i7` (having absorbed `before` bytes), the outer one from `o0..o7`; the tag is
   * written at {@link DIGEST}. */
  hmac(
    length: number,
    before: number,
    i0: number,
    i1: number,
    i2: number,
    i3: number,
    i4: number,
    i5: number,
    i6: number,
    i7: number,
    o0: number,
    o1: number,
    o2: number,
    o3: number,
    o4: number,
    o5: number,
    o6: number,
    o7: number,
  ): void;
}

const BLOCK = 64;
/** Byte offsets in the module's memory (see sha256.wat): the blocks to compress, the tag. */
const BLOCKS = 64;
const DIGEST = 192;
/** The longest message one padded block holds: 64 bytes less the 0x80 and the 8-byte length. */
const SHORT = BLOCK - 9;
const INITIAL = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

function unavailable(): never {
  throw new Error(
    "SHA-256 (signed sticky tokens) needs WebAssembly, which this runtime lacks (V8's --jitless?)",
  );
}

const wasm: Sha256Wasm | undefined = typeof WebAssembly === "object"
  ? new WebAssembly.Instance(new WebAssembly.Module(SHA256_WASM)).exports as unknown as Sha256Wasm
  : undefined;
const compress = wasm?.compress ?? unavailable;
const hmac = wasm?.hmac ?? unavailable;
/** The module's memory as bytes, and its first 8 words (the state). Valid for good: the memory
 * never grows. */
const memory = new Uint8Array(wasm?.memory.buffer ?? new ArrayBuffer(256));
const state = new Int32Array(memory.buffer, 0, 8);

/** Hashes `message` on from `from` (which has absorbed `before` bytes), padded: the digest is in
 * the module's state. Any length; the path of long messages and of SHA-256 alone. */
function finish(from: Int32Array, before: number, message: Uint8Array): void {
  state.set(from);
  let at = 0;
  for (; at + BLOCK <= message.length; at += BLOCK) {
    memory.set(message.subarray(at, at + BLOCK), BLOCKS);
    compress(1);
  }
  const rest = message.length - at;
  const padded = rest + 9 <= BLOCK ? BLOCK : 2 * BLOCK;
  memory.fill(0, BLOCKS, BLOCKS + padded);
  memory.set(message.subarray(at), BLOCKS);
  memory[BLOCKS + rest] = 0x80;
  const bits = (before + message.length) * 8;
  const end = BLOCKS + padded;
  const high = Math.floor(bits / 2 ** 32);
  memory[end - 8] = high >>> 24;
  memory[end - 7] = high >>> 16;
  memory[end - 6] = high >>> 8;
  memory[end - 5] = high;
  memory[end - 4] = bits >>> 24;
  memory[end - 3] = bits >>> 16;
  memory[end - 2] = bits >>> 8;
  memory[end - 1] = bits;
  compress(padded / BLOCK);
}

/** The module's state as a digest (its words big-endian) written into `out`. */
function digestInto(out: Uint8Array): Uint8Array {
  for (let i = 0; i < 8; i++) {
    const word = state[i];
    out[i * 4] = word >>> 24;
    out[i * 4 + 1] = word >>> 16;
    out[i * 4 + 2] = word >>> 8;
    out[i * 4 + 3] = word;
  }
  return out;
}

/** The state after `from` and the one 64-byte `block`. */
function compressed(from: Int32Array, block: Uint8Array): Int32Array {
  state.set(from);
  memory.set(block, BLOCKS);
  compress(1);
  return state.slice();
}

/**
 * The SHA-256 digest of `message` (32 bytes).
 *
 * @example
 * ```ts
 * import { sha256 } from "./hmac_sha256.ts";
 * const hex = Array.from(sha256(new TextEncoder().encode("abc")), (b) => b.toString(16).padStart(2, "0")).join("");
 * if (hex !== "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") throw new Error(hex);
 * ```
 */
export function sha256(message: Uint8Array): Uint8Array {
  finish(INITIAL, 0, message);
  return digestInto(new Uint8Array(32));
}

/**
 * An HMAC-SHA256 key, its pads absorbed once.
 *
 * @example
 * ```ts
 * import { HmacSha256 } from "./hmac_sha256.ts";
 * const mac = new HmacSha256(new TextEncoder().encode("key"));
 * const tag = mac.sign(new TextEncoder().encode("The quick brown fox jumps over the lazy dog"));
 * const hex = Array.from(tag, (b) => b.toString(16).padStart(2, "0")).join("");
 * if (hex !== "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8") throw new Error(hex);
 * ```
 */
export class HmacSha256 {
  readonly #inner: Int32Array;
  readonly #outer: Int32Array;
  readonly #innerDigest = new Uint8Array(32);

  constructor(secret: Uint8Array) {
    const key = new Uint8Array(BLOCK);
    key.set(secret.length > BLOCK ? sha256(secret) : secret);
    const pad = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) pad[i] = key[i] ^ 0x36;
    this.#inner = compressed(INITIAL, pad);
    for (let i = 0; i < BLOCK; i++) pad[i] = key[i] ^ 0x5c;
    this.#outer = compressed(INITIAL, pad);
  }

  /**
   * The inner hash state after this key's pad and one more 64-byte `block`: with it,
   * {@link signAfter} MACs `block` + a message at the cost of the message's blocks alone (a fixed
   * context, absorbed once, costs nothing per message).
   *
   * @example
   * ```ts
   * import { HmacSha256 } from "./hmac_sha256.ts";
   * const mac = new HmacSha256(new Uint8Array(32).fill(1));
   * const block = new Uint8Array(64).fill(2);
   * const message = new TextEncoder().encode("1.k1.ref.issued.seen");
   * const whole = new Uint8Array([...block, ...message]);
   * if (mac.signAfter(mac.absorbed(block), message).join() !== mac.sign(whole).join()) {
   *   throw new Error("signAfter(absorbed(block), m) is sign(block + m)");
   * }
   * ```
   */
  absorbed(block: Uint8Array): Int32Array {
    if (block.length !== BLOCK) throw new Error(`absorbed() takes one ${BLOCK}-byte block`);
    return compressed(this.#inner, block);
  }

  /** The tag of `block` + `message`, where `absorbed` is `this.absorbed(block)`. */
  signAfter(absorbed: Int32Array, message: Uint8Array, out: Uint8Array = new Uint8Array(32)) {
    return this.#tag(absorbed, 2 * BLOCK, message, out);
  }

  /**
   * {@link signAfter} of an ASCII `text` (a token's signed part): its characters go straight into
   * the module's memory, no byte array in between. Undefined when `text` is not ASCII or too long
   * for one block; the caller encodes it then.
   */
  signAfterAscii(absorbed: Int32Array, text: string, out: Uint8Array): Uint8Array | undefined {
    const length = text.length;
    if (length > SHORT) return undefined;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0x7f) return undefined;
      memory[BLOCKS + i] = c;
    }
    return this.#hashShort(absorbed, 2 * BLOCK, length, out);
  }

  /** The 32-byte tag of `message`, written into `out` when given (else a new array). */
  sign(message: Uint8Array, out: Uint8Array = new Uint8Array(32)): Uint8Array {
    return this.#tag(this.#inner, BLOCK, message, out);
  }

  /** The tag of what `from` absorbed (`before` bytes) + `message`, into `out`. */
  #tag(from: Int32Array, before: number, message: Uint8Array, out: Uint8Array): Uint8Array {
    const length = message.length;
    if (length > SHORT) {
      finish(from, before, message);
      finish(this.#outer, BLOCK, digestInto(this.#innerDigest));
      return digestInto(out);
    }
    // A token's text: one call does both hashes. Bytes and words copied one by one: set() and
    // subarray() on arrays this small cost more than the loops.
    for (let i = 0; i < length; i++) memory[BLOCKS + i] = message[i];
    return this.#hashShort(from, before, length, out);
  }

  /** The tag of what `from` absorbed (`before` bytes) + the `length` bytes at BLOCKS. */
  #hashShort(from: Int32Array, before: number, length: number, out: Uint8Array): Uint8Array {
    const o = this.#outer;
    hmac(
      length,
      before,
      from[0],
      from[1],
      from[2],
      from[3],
      from[4],
      from[5],
      from[6],
      from[7],
      o[0],
      o[1],
      o[2],
      o[3],
      o[4],
      o[5],
      o[6],
      o[7],
    );
    for (let i = 0; i < 32; i++) out[i] = memory[DIGEST + i];
    return out;
  }
}
