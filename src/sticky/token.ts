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
 * The tag covers the text before it and the upstream name and server id themselves, so a token
 * of another upstream, or one whose ref was changed, does not verify. Pure: the clock is a
 * parameter, the keys come from the keyring.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { HmacSha256, sha256 } from "./hmac_sha256.ts";
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
  const signed = `${TOKEN_VERSION}.${key.id}.${ref}.${issuedS.toString(36)}.${seenS.toString(36)}`;
  return `${signed}.${tagOf(key.mac, upstream, serverId, signed)}`;
}

/** The fields of a well-formed token, or undefined (not a token of this version). */
export function readToken(value: string): TokenFields | undefined {
  const parts = value.split(".");
  if (parts.length !== 6 || parts[0] !== TOKEN_VERSION) return undefined;
  const [, keyId, ref, issued, seen, tag] = parts;
  if (ref.length !== 11 || tag.length !== 22 || keyId === "") return undefined;
  const issuedS = parseSeconds(issued);
  const seenS = parseSeconds(seen);
  if (issuedS === undefined || seenS === undefined) return undefined;
  return { keyId, ref, issuedS, seenS, signed: value.slice(0, value.length - 23), tag };
}

/** Whether the token's tag is `key`'s for this upstream and server (constant time). */
export function verifyToken(
  fields: TokenFields,
  key: TokenKey,
  upstream: string,
  serverId: string,
): boolean {
  const expected = tagOf(key.mac, upstream, serverId, fields.signed);
  // Both are 22 base64url characters: compare every one, whatever differs first.
  let diff = expected.length ^ fields.tag.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ fields.tag.charCodeAt(i);
  }
  return diff === 0;
}

function tagOf(mac: HmacSha256, upstream: string, serverId: string, signed: string): string {
  const tag = mac.sign(encoder.encode(`sticky-gateway token\n${upstream}\n${serverId}\n${signed}`));
  return Buffer.from(tag.subarray(0, TAG_BYTES)).toString("base64url");
}

/** Base-36 seconds as written (lower case, no sign, no leading zero), or undefined. */
function parseSeconds(text: string): number | undefined {
  if (text.length === 0 || text.length > 8 || !/^[0-9a-z]+$/.test(text)) return undefined;
  if (text.length > 1 && text[0] === "0") return undefined;
  return parseInt(text, 36);
}
