/**
 * Escaping of client-provided text (target, user agent, referer, request id…) before it reaches a
 * log line, so a client can neither forge a line (CR, LF), break a field (a quote, a space in a
 * key=value) nor send escape sequences to an operator's terminal (ESC, C1 controls).
 *
 * @module
 */

/** Anything but printable ASCII without `"` and `\`. */
const UNSAFE_QUOTED = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
/** The same, and a space (a key=value value ends at one). */
const UNSAFE_BARE = /[^\x21\x23-\x5b\x5d-\x7e]/;

/**
 * Text for a quoted field of nginx's combined format, escaped as nginx's `escape=default` does:
 * `"`, `\`, control characters and every byte outside printable ASCII become `\xHH`. Header
 * values arrive as Latin-1 (one character per byte), so a character up to U+00FF is its byte; one
 * above is written as its UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { escapeQuoted } from "./escape.ts";
 *
 * if (escapeQuoted('a"b\n') !== "a\\x22b\\x0A") throw new Error("escaped");
 * ```
 */
export function escapeQuoted(text: string): string {
  return UNSAFE_QUOTED.test(text) ? escapeAll(text, false) : text;
}

/** {@link escapeQuoted} that also escapes a space (`\x20`): for an unquoted key=value value. */
export function escapeBare(text: string): string {
  return UNSAFE_BARE.test(text) ? escapeAll(text, true) : text;
}

const encoder = new TextEncoder();

function escapeAll(text: string, space: boolean): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (code > 0x20 && code < 0x7f && code !== 0x22 && code !== 0x5c) out += char;
    else if (code === 0x20 && !space) out += char;
    else if (code <= 0xff) out += hex(code);
    else for (const byte of encoder.encode(char)) out += hex(byte);
  }
  return out;
}

function hex(byte: number): string {
  return `\\x${byte.toString(16).toUpperCase().padStart(2, "0")}`;
}

/** Characters JSON.stringify leaves as they are but a terminal or a line splitter acts on. */
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029]/;
const JSON_UNSAFE_ALL = new RegExp(JSON_UNSAFE.source, "g");

/**
 * `JSON.stringify(value)` with DEL, the C1 controls and U+2028/U+2029 also written as `\uXXXX`
 * (JSON.stringify already escapes `"`, `\` and U+0000–U+001F): one line that no terminal
 * interprets.
 *
 * @example
 * ```ts
 * import { safeJson } from "./escape.ts";
 *
 * if (safeJson({ ua: "a\u009bb\n" }) !== '{"ua":"a\\u009bb\\n"}') throw new Error("escaped");
 * ```
 */
export function safeJson(value: unknown): string {
  const text = JSON.stringify(value);
  return JSON_UNSAFE.test(text) ? text.replace(JSON_UNSAFE_ALL, jsonEscape) : text;
}

function jsonEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}
