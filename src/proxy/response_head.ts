/**
 * Parsing an upstream's HTTP/1.x response head (status line and header lines), shared by the
 * HTTP/1.1 client and the WebSocket handshake.
 *
 * It runs once per proxied request, so it scans the text with `indexOf` instead of splitting it
 * and matching regexes, and takes lower-cased header names from a small cache: an upstream sends
 * the same few names in the same case every time, and on Bun `toLowerCase` alone cost about
 * 75 ns a header (docs/benchmarks.md, "What was tried").
 *
 * @module
 */
import { UpstreamError } from "./errors.ts";
import type { HeaderPair } from "./headers.ts";
import { BARE_CR, HEAD_INCOMPLETE, NUL, scanHead, TOKEN } from "./http1_syntax.ts";

export interface ParsedHead {
  readonly http10: boolean;
  readonly status: number;
  readonly statusText: string;
  /** Names lower-cased, values trimmed, in the order received. */
  readonly headers: HeaderPair[];
}

const SPACE = 32;
const TAB = 9;

/**
 * Parses the head's text (latin1, without the final blank line), as {@link findHeadEnd} found and
 * checked it (no NUL, no bare CR or LF). Throws `bad_response` for a bad status line or a status
 * outside 100-599, a header line without a name or whose name is not a token, obsolete line
 * folding.
 *
 * @example
 * ```ts
 * const head = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 2");
 * head.headers; // [["content-length", "2"]]
 * ```
 */
export function parseResponseHead(text: string): ParsedHead {
  const length = text.length;
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = length;
  const status = statusCode(text, lineEnd);
  if (status < 100 || status > 599) {
    throw new UpstreamError(
      "bad_response",
      `bad status line ${JSON.stringify(text.slice(0, Math.min(lineEnd, 80)))}`,
    );
  }
  const headers: HeaderPair[] = [];
  for (let start = lineEnd + 2; start < length;) {
    let end = text.indexOf("\r\n", start);
    if (end < 0) end = length;
    const colon = text.indexOf(":", start);
    const first = text.charCodeAt(start);
    if (colon <= start || colon > end || first === SPACE || first === TAB) {
      throw new UpstreamError(
        "bad_response",
        `bad header line ${JSON.stringify(text.slice(start, Math.min(end, start + 80)))}`,
      );
    }
    headers.push([lowerName(text, start, colon), trimmed(text, colon + 1, end)]);
    start = end + 2;
  }
  return {
    http10: text.charCodeAt(7) === 48,
    status,
    statusText: lineEnd > 13 ? text.slice(13, lineEnd) : "",
    headers,
  };
}

/**
 * Where the head starting at `start` ends (the index of the CR of its "\r\n\r\n"), scanning
 * `buffer` from `from` up to `end`; -1 when it has not all arrived. Throws `bad_response` for a
 * NUL, a bare CR or a bare LF anywhere in it (RFC 9110 §5.5: such values must not be passed on;
 * the runtimes refuse them in a Response, or worse, do not). The scan is the front's too
 * ({@link scanHead}).
 */
export function findHeadEnd(buffer: Uint8Array, start: number, from: number, end: number): number {
  const found = scanHead(buffer, start, from, end);
  if (found >= 0) return found - 4;
  if (found === HEAD_INCOMPLETE) return -1;
  throw new UpstreamError(
    "bad_response",
    found === NUL
      ? "a NUL in the head"
      : found === BARE_CR
      ? "a bare CR in the head"
      : "a bare LF in the head",
  );
}

/** The code of a status line `HTTP/1.x NNN[ reason]` ending at `lineEnd`, or -1 if malformed. */
function statusCode(text: string, lineEnd: number): number {
  if (!text.startsWith("HTTP/1.") || lineEnd < 12 || text.charCodeAt(8) !== SPACE) return -1;
  const minor = text.charCodeAt(7);
  if (minor !== 48 && minor !== 49) return -1;
  if (lineEnd > 12 && text.charCodeAt(12) !== SPACE) return -1;
  let code = 0;
  for (let i = 9; i < 12; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    code = code * 10 + digit;
  }
  return code;
}

/** `text[start..end)` without leading and trailing spaces and tabs. */
function trimmed(text: string, start: number, end: number): string {
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

// The last name seen in each of 256 slots (by length and first and last character), with its
// lower-case form. `startsWith` at an offset compares in place, so a hit allocates nothing.
const SEEN_NAMES: string[] = new Array(256).fill("");
const LOWER_NAMES: string[] = new Array(256).fill("");

/** `text[start..end)` in lower case; `bad_response` when it is not a token. A name from the
 * cache was checked when it entered it, so the usual names cost no check. */
function lowerName(text: string, start: number, end: number): string {
  const length = end - start;
  const slot = (length * 31 + text.charCodeAt(start) * 7 + text.charCodeAt(end - 1)) & 255;
  const seen = SEEN_NAMES[slot];
  if (seen.length === length && text.startsWith(seen, start)) return LOWER_NAMES[slot];
  const name = text.slice(start, end);
  if (!isToken(name)) {
    throw new UpstreamError("bad_response", `header name ${JSON.stringify(name)} is not a token`);
  }
  const lower = name.toLowerCase();
  SEEN_NAMES[slot] = name;
  LOWER_NAMES[slot] = lower;
  return lower;
}

/** A non-empty run of tchar (the table shared with the front's request heads). */
function isToken(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    // A char code above 255 reads undefined: not a token.
    if (TOKEN[name.charCodeAt(i)] !== 1) return false;
  }
  return true;
}
