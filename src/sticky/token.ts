/**
 * Signed sticky tokens (`mode = "token"`): a cookie value that names a server, carries its own
 * times and cannot be forged without a key. Text, URL-safe, 52-60 characters:
 *
 *     1.k1.Vb3xX2sQm9w.tqm3a8.tqm3b0.3nV5hH6k0o2Kx7yWq1ZrAA
 *     │ │  │           │      │      └ tag: HMAC-SHA256, first 16 bytes (128 bits), base64url
 *     │ │  │           │      └ last seen (s since the epoch, base 36)
 *     │ │  │           └ issued (s since the epoch, base 36)
 *     │ │  └ server ref: first 8 bytes of SHA-256(upstream, server id), base64url
 *     │ └ key id
 *     └ format version
 *
 * The tag is HMAC-SHA256 (first 16 bytes) over the server's context block (SHA-256 of
 * "sticky-gateway token\n" + upstream + "\n" + server id, zero-padded to 64 bytes: absorbed once
 * per key and server) followed by the text before the tag. So it covers the upstream name and
 * server id themselves: a token of another upstream, or one whose ref was changed, does not
 * verify. A verification costs two SHA-256 compressions. Pure: the clock is a
 * parameter, the keys come from the keyring.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { sha256 } from "./hmac_sha256.ts";
import type { TokenKey } from "./keyring.ts";

/** The format version this code writes and reads. */
export const TOKEN_VERSION = "1";
/** Tag bytes kept (128 bits). */
const TAG_BYTES = 16;
const encoder = new TextEncoder();

/** A token's fields as read (not yet verified). */
export interface TokenFields {
  readonly keyId: string;
  /** The server ref (base64url), to look the server up. */
  readonly ref: string;
  readonly issuedS: number;
  readonly seenS: number;
  /** The signed text (everything before the tag) and the tag as sent. */
  readonly signed: string;
  readonly tag: string;
}

/**
 * The ref of a server in tokens: the first 8 bytes of SHA-256 of upstream and server id.
 *
 * @example
 * ```ts
 * import { serverRef } from "./token.ts";
 * if (serverRef("app", "web-1").length !== 11) throw new Error("11 base64url characters");
 * ```
 */
export function serverRef(upstream: string, serverId: string): string {
  const digest = sha256(encoder.encode(`${upstream}\n${serverId}`));
  return Buffer.from(digest.subarray(0, 8)).toString("base64url");
}

/**
 * A new token naming `serverId` of `upstream`, signed with `key`.
 *
 * @example
 * ```ts
 * import { HmacSha256 } from "./hmac_sha256.ts";
 * import { readToken, signToken, verifyToken } from "./token.ts";
 * const key = { id: "k1", mac: new HmacSha256(new Uint8Array(32).fill(7)) };
 * const value = signToken(key, "app", "web-1", 1_780_000_000, 1_780_000_000);
 * const fields = readToken(value)!;
 * if (!verifyToken(fields, key, "app", "web-1") || verifyToken(fields, key, "other", "web-1")) {
 *   throw new Error(value);
 * }
 * ```
 */
export function signToken(
  key: TokenKey,
  upstream: string,
  serverId: string,
  issuedS: number,
  seenS: number,
): string {
  return signTokenWithRef(key, upstream, serverId, serverRef(upstream, serverId), issuedS, seenS);
}

/** {@link signToken} with the server's ref already known (`serverRef(upstream, serverId)`). */
export function signTokenWithRef(
  key: TokenKey,
  upstream: string,
  serverId: string,
  ref: string,
  issuedS: number,
  seenS: number,
): string {
  return signWithContext(cachedContext(key, upstream, serverId), ref, issuedS, seenS);
}

/** A key with a server's context block absorbed (see {@link tokenContext}). */
export interface TokenContext {
  readonly key: TokenKey;
  readonly absorbed: Int32Array;
  /** The last token signed with it, by its two times: every new client of a server in the same
   * second gets the same token (a token has no per-client part), signed once. */
  last?: { readonly issuedS: number; readonly seenS: number; readonly token: string };
}

/**
 * The state that signs and verifies tokens of one server under one key: the context block
 * absorbed, so that a tag costs two SHA-256 compressions. Made once per key and server (e.g. by
 * a TokenCheck), it spares the look-up {@link signToken} and {@link verifyToken} make.
 */
export function tokenContext(key: TokenKey, upstream: string, serverId: string): TokenContext {
  return { key, absorbed: key.mac.absorbed(contextBlock(upstream, serverId)) };
}

/** A token signed with `context` (its key and server), the server's `ref` given. */
export function signWithContext(
  context: TokenContext,
  ref: string,
  issuedS: number,
  seenS: number,
): string {
  const last = context.last;
  if (last !== undefined && last.issuedS === issuedS && last.seenS === seenS) return last.token;
  const signed = `${TOKEN_VERSION}.${context.key.id}.${ref}.${base36(issuedS)}.${base36(seenS)}`;
  const bytes = tagBytes(context, signed);
  let text = "";
  for (let j = 0; j < TAG_CHARS; j += 2) {
    text += SEXTET_PAIRS[(sextet(bytes, j) << 6) | sextet(bytes, j + 1)];
  }
  const token = `${signed}.${text}`;
  context.last = { issuedS, seenS, token };
  return token;
}

/** Whether the token's tag is `context`'s (its key and server), compared in constant time. */
export function verifyWithContext(fields: TokenFields, context: TokenContext): boolean {
  const tag = fields.tag;
  if (tag.length !== TAG_CHARS) return false;
  const bytes = tagBytes(context, fields.signed);
  // Every character compared, whatever differs first; the expected text is never built.
  let diff = 0;
  for (let i = 0; i < TAG_CHARS; i++) {
    diff |= BASE64URL.charCodeAt(sextet(bytes, i)) ^ tag.charCodeAt(i);
  }
  return diff === 0;
}

// The seconds of the last two calls (issue time and now), written: most tokens of a second share
// them.
let lastSeconds = -1;
let lastText = "";
let otherSeconds = -1;
let otherText = "";

function base36(seconds: number): string {
  if (seconds === lastSeconds) return lastText;
  if (seconds === otherSeconds) return otherText;
  otherSeconds = lastSeconds;
  otherText = lastText;
  lastSeconds = seconds;
  lastText = seconds.toString(36);
  return lastText;
}

/** The fields of a well-formed token, or undefined (not a token of this version). */
export function readToken(value: string): TokenFields | undefined {
  // Scanned by hand: a token is read on every first sight of it, split() and regexps cost more.
  if (value.length < 42 || value.charCodeAt(0) !== 0x31 || value.charCodeAt(1) !== DOT) {
    return undefined;
  }
  const keyEnd = value.indexOf(".", 2);
  if (keyEnd <= 2) return undefined;
  const refEnd = keyEnd + 12;
  if (value.charCodeAt(refEnd) !== DOT) return undefined;
  const issuedEnd = value.indexOf(".", refEnd + 1);
  const seenEnd = issuedEnd < 0 ? -1 : value.indexOf(".", issuedEnd + 1);
  if (seenEnd < 0 || value.length - seenEnd - 1 !== TAG_CHARS) return undefined;
  const ref = value.slice(keyEnd + 1, refEnd);
  const tag = value.slice(seenEnd + 1);
  if (ref.indexOf(".") >= 0 || tag.indexOf(".") >= 0) return undefined;
  const issuedS = parseSeconds(value, refEnd + 1, issuedEnd);
  const seenS = parseSeconds(value, issuedEnd + 1, seenEnd);
  if (issuedS < 0 || seenS < 0) return undefined;
  return {
    keyId: value.slice(2, keyEnd),
    ref,
    issuedS,
    seenS,
    signed: value.slice(0, seenEnd),
    tag,
  };
}

const DOT = 0x2e;

/** Whether the token's tag is `key`'s for this upstream and server (constant time). */
export function verifyToken(
  fields: TokenFields,
  key: TokenKey,
  upstream: string,
  serverId: string,
): boolean {
  return verifyWithContext(fields, cachedContext(key, upstream, serverId));
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Every pair of base64url characters, by its 12 bits: a tag's text in 11 concatenations. */
const SEXTET_PAIRS = Array.from({ length: 4096 }, (_, i) => BASE64URL[i >> 6] + BASE64URL[i & 63]);
/** base64url characters of {@link TAG_BYTES} bytes, unpadded (22: an even number). */
const TAG_CHARS = Math.ceil((TAG_BYTES * 8) / 6);

/** The i-th 6-bit group of `bytes` (big-endian bit order, as base64 reads them). */
function sextet(bytes: Uint8Array, i: number): number {
  const bit = i * 6;
  const at = bit >> 3;
  const pair = (bytes[at] << 8) | (at + 1 < TAG_BYTES ? bytes[at + 1] : 0);
  return (pair >> (10 - (bit & 7))) & 63;
}

/** The signed text's bytes are written here, reused (one thread computes one tag at a time). */
let input = new Uint8Array(64);
const digest = new Uint8Array(32);
/** Per key: its contexts by upstream and server, for the calls that name them by text. */
const contexts = new WeakMap<TokenKey, Map<string, TokenContext>>();

function cachedContext(key: TokenKey, upstream: string, serverId: string): TokenContext {
  let byServer = contexts.get(key);
  if (byServer === undefined) contexts.set(key, byServer = new Map());
  const name = `${upstream}\n${serverId}`;
  let context = byServer.get(name);
  if (context === undefined) {
    if (byServer.size >= 4096) byServer.clear();
    context = tokenContext(key, upstream, serverId);
    byServer.set(name, context);
  }
  return context;
}

/**
 * The context block of a server's tokens: SHA-256 of "sticky-gateway token\n" + upstream + "\n"
 * + server id, zero-padded to one 64-byte block (fixed length, so no two contexts run into the
 * signed text alike).
 */
export function contextBlock(upstream: string, serverId: string): Uint8Array {
  const block = new Uint8Array(64);
  block.set(sha256(encoder.encode(`sticky-gateway token\n${upstream}\n${serverId}`)));
  return block;
}

/**
 * HMAC-SHA256 of the server's context block + the signed text: the block absorbed once per key
 * and server, the signed text (ASCII once its key and ref were found, which only ASCII can be;
 * encoded otherwise) copied byte by byte. One compression for the text, one for the outer hash.
 * The digest is written into a reused array.
 */
function tagBytes(context: TokenContext, signed: string): Uint8Array {
  const { key: { mac }, absorbed } = context;
  // A token's signed text is short ASCII: straight into the HMAC's memory.
  const tag = mac.signAfterAscii(absorbed, signed, digest);
  if (tag !== undefined) return tag;
  if (input.length < signed.length) input = new Uint8Array(signed.length * 2);
  for (let i = 0; i < signed.length; i++) {
    const c = signed.charCodeAt(i);
    if (c > 0x7f) return mac.signAfter(absorbed, encoder.encode(signed), digest);
    input[i] = c;
  }
  return mac.signAfter(absorbed, input.subarray(0, signed.length), digest);
}

/** Base-36 seconds as written in `text[start, end)` (lower case, no sign, no leading zero, at most
 * 8 digits), or -1. */
function parseSeconds(text: string, start: number, end: number): number {
  const length = end - start;
  if (length <= 0 || length > 8) return -1;
  if (length > 1 && text.charCodeAt(start) === 0x30) return -1;
  let seconds = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x7a ? c - 0x57 : -1;
    if (digit < 0) return -1;
    seconds = seconds * 36 + digit;
  }
  return seconds;
}
