/**
 * HMAC-SHA256 (RFC 2104, FIPS 180-4) in plain TypeScript, for signing and verifying sticky tokens
 * on the request path. A key's inner and outer pad states are computed once, so a short message
 * costs two or three compressions and no call into the runtime: node:crypto's `createHmac` costs
 * tens of µs per call on Deno (each call crosses into Rust several times), about 1 µs on Bun,
 * while this costs about 1 µs on both (docs/benchmarks.md). The result is checked against
 * node:crypto in tests/unit/hmac_sha256.test.ts.
 *
 * @module
 */

const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);
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
const BLOCK = 64;

/** The message schedule, reused (one thread runs one compression at a time). */
const W = new Int32Array(64);

/** Compresses the 64-byte block at `bytes[at..]` into `state`. */
function compress(state: Int32Array, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) {
    const j = at + i * 4;
    W[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15];
    const w2 = W[i - 2];
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let e = state[4], f = state[5], g = state[6], h = state[7];
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + s1 + ch + K[i] + W[i]) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (s0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
  state[5] = (state[5] + f) | 0;
  state[6] = (state[6] + g) | 0;
  state[7] = (state[7] + h) | 0;
}

/** The padded tail buffer, reused; large enough for any message this module is given. */
let tail = new Uint8Array(4 * BLOCK);

/** Hashes `message` on from `state` (which has absorbed `before` bytes); writes the digest. */
function finish(
  state: Int32Array,
  before: number,
  message: Uint8Array,
  out: Uint8Array,
): void {
  let at = 0;
  for (; at + BLOCK <= message.length; at += BLOCK) compress(state, message, at);
  const rest = message.length - at;
  const padded = rest + 9 <= BLOCK ? BLOCK : 2 * BLOCK;
  if (tail.length < padded) tail = new Uint8Array(padded);
  tail.fill(0, 0, padded);
  tail.set(message.subarray(at), 0);
  tail[rest] = 0x80;
  const bits = (before + message.length) * 8;
  // Messages here are far below 2^32 bits: the high word stays 0.
  tail[padded - 4] = bits >>> 24;
  tail[padded - 3] = bits >>> 16;
  tail[padded - 2] = bits >>> 8;
  tail[padded - 1] = bits;
  compress(state, tail, 0);
  if (padded === 2 * BLOCK) compress(state, tail, BLOCK);
  for (let i = 0; i < 8; i++) {
    const word = state[i];
    out[i * 4] = word >>> 24;
    out[i * 4 + 1] = word >>> 16;
    out[i * 4 + 2] = word >>> 8;
    out[i * 4 + 3] = word;
  }
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
  const out = new Uint8Array(32);
  finish(INITIAL.slice(), 0, message, out);
  return out;
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
  readonly #inner = new Int32Array(8);
  readonly #outer = new Int32Array(8);
  readonly #state = new Int32Array(8);
  readonly #innerDigest = new Uint8Array(32);

  constructor(secret: Uint8Array) {
    const key = new Uint8Array(BLOCK);
    key.set(secret.length > BLOCK ? sha256(secret) : secret);
    const pad = new Uint8Array(BLOCK);
    this.#inner.set(INITIAL);
    for (let i = 0; i < BLOCK; i++) pad[i] = key[i] ^ 0x36;
    compress(this.#inner, pad, 0);
    this.#outer.set(INITIAL);
    for (let i = 0; i < BLOCK; i++) pad[i] = key[i] ^ 0x5c;
    compress(this.#outer, pad, 0);
  }

  /**
   * The inner hash state after this key's pad and one more 64-byte `block`: with it,
   * {@link signAfter} MACs `block` + a message at the cost of the message's blocks alone (a fixed
   * context, absorbed once, costs nothing per message).
   */
  absorbed(block: Uint8Array): Int32Array {
    if (block.length !== BLOCK) throw new Error(`absorbed() takes one ${BLOCK}-byte block`);
    const state = this.#inner.slice();
    compress(state, block, 0);
    return state;
  }

  /** The tag of `block` + `message`, where `absorbed` is `this.absorbed(block)`. */
  signAfter(absorbed: Int32Array, message: Uint8Array, out: Uint8Array = new Uint8Array(32)) {
    const state = this.#state;
    state.set(absorbed);
    finish(state, 2 * BLOCK, message, this.#innerDigest);
    state.set(this.#outer);
    finish(state, BLOCK, this.#innerDigest, out);
    return out;
  }

  /** The 32-byte tag of `message`, written into `out` when given (else a new array). */
  sign(message: Uint8Array, out: Uint8Array = new Uint8Array(32)): Uint8Array {
    const state = this.#state;
    state.set(this.#inner);
    finish(state, BLOCK, message, this.#innerDigest);
    state.set(this.#outer);
    finish(state, BLOCK, this.#innerDigest, out);
    return out;
  }
}
