/**
 * The request-head parser of the HTTP/1.1 front (RFC 9112), pure: bytes in, a {@link RequestHead}
 * or the failure code to answer with. Strict where laxness lets two parsers disagree about where a
 * request ends (request smuggling): one Content-Length of digits only, Transfer-Encoding exactly
 * `chunked`, never both, no obs-fold, no bare LF, token header names, one Host.
 *
 * Byte loops over lookup tables, one string decode per head, offsets kept in a reused array.
 *
 * @module
 */
import {
  connectionTokens,
  HEAD_INCOMPLETE,
  parseLength,
  persists,
  scanHead,
  TOKEN,
  UPGRADE,
} from "../../proxy/http1_syntax.ts";

// The front's modules (connection.ts, response.ts) take the one Content-Length parser from here.
export { parseLength };

/** What a head can fail with; each is answered from src/proxy/errors.ts and the connection closed. */
export type HeadFailure = "bad_request" | "headers_too_large" | "unsupported_transfer_coding";

/** `bodyLength` of a chunked request. */
export const CHUNKED = -1;

/** A parsed request head. */
export interface RequestHead {
  readonly method: string;
  /** As sent: origin-form, absolute-form or `*`. */
  readonly target: string;
  /** HTTP/1.`minor`. */
  readonly minor: 0 | 1;
  /** Names (in lower case) and values, alternating. */
  readonly headers: string[];
  /** The one Host header's value, or undefined (HTTP/1.0 only). */
  readonly host: string | undefined;
  /** 0: no body; > 0: exactly that many bytes; {@link CHUNKED}. */
  readonly bodyLength: number;
  /** The connection may carry another request after this one. */
  readonly keepAlive: boolean;
  /** `Connection: upgrade` was sent: a WebSocket handshake may follow. */
  readonly upgrade: boolean;
  /** `Expect: 100-continue` on an HTTP/1.1 request with a body. */
  readonly expectContinue: boolean;
  /** Index just past the head's empty line. */
  readonly end: number;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** Characters allowed in a Host header (RFC 3986 host and port; no comma: merged duplicates). */
const HOST_CHARS = new Uint8Array(128);
for (const c of "-._~!$&'()*+;=:[]%") HOST_CHARS[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) HOST_CHARS[c] = 1;
for (let c = 65; c <= 90; c++) HOST_CHARS[c] = HOST_CHARS[c + 32] = 1;

/**
 * Where the head that starts at `start` ends: the index past its CRLF CRLF, -1 when it is not
 * complete in `buf[start, end)`, -2 on a bare LF, a bare CR or a NUL (scanHead in
 * src/proxy/http1_syntax.ts, the upstream client's too). `from` (>= start) skips bytes scanned.
 */
export function findHeadEnd(buf: Uint8Array, start: number, end: number, from: number): number {
  const found = scanHead(buf, start, from, end);
  return found < HEAD_INCOMPLETE ? -2 : found;
}

/** The hard cap on a request head: memory stays bounded whatever the client sends. */
export function headCap(clientMaxHeaderSize: number): number {
  return Math.max(64 * 1024, 2 * clientMaxHeaderSize);
}

const decoder = new TextDecoder();
/** Offsets of the head's parts: [nameStart, nameEnd, valueStart, valueEnd] per header;
 * nameEnd negated when the name has upper-case letters. */
const offsets: number[] = [];
/** 1 for the upper-case ASCII letters. */
const UPPER = new Uint8Array(256);
for (let c = 65; c <= 90; c++) UPPER[c] = 1;

/**
 * Parses the complete head `buf[start, end)` (`end` from {@link findHeadEnd}).
 */
export function parseHead(buf: Uint8Array, start: number, end: number): RequestHead | HeadFailure {
  // Request line: METHOD SP target SP HTTP/1.x CRLF.
  let i = start;
  while (TOKEN[buf[i]] === 1) i++;
  if (i === start || buf[i] !== SP) return "bad_request";
  const methodEnd = i;
  const targetStart = ++i;
  for (let b = buf[i]; b > SP && b < 127; b = buf[++i]);
  if (i === targetStart || buf[i] !== SP) return "bad_request";
  const targetEnd = i++;
  if (
    buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 || buf[i + 3] !== 80 ||
    buf[i + 4] !== 47 || buf[i + 5] !== 49 || buf[i + 6] !== 46 ||
    (buf[i + 7] !== 49 && buf[i + 7] !== 48) || buf[i + 8] !== CR || buf[i + 9] !== LF
  ) return "bad_request";
  const minor = buf[i + 7] === 49 ? 1 : 0;
  i += 10;

  // Header lines up to the empty line.
  offsets.length = 0;
  let high = 0;
  while (buf[i] !== CR) {
    const nameStart = i;
    // A line starting with SP or HTAB is obs-fold; those fail the token test too. Upper-case
    // letters are noted, so that only such names are lowered (most clients send "Host").
    let upper = 0;
    for (let b = buf[i]; TOKEN[b] === 1; b = buf[++i]) upper |= UPPER[b];
    if (i === nameStart || buf[i] !== COLON) return "bad_request";
    const nameEnd = i++;
    while (buf[i] === SP || buf[i] === HTAB) i++;
    const valueStart = i;
    let b = buf[i];
    for (; b !== CR && b !== LF && b !== 0; b = buf[++i]) high |= b;
    if (b !== CR || buf[i + 1] !== LF) return "bad_request";
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) {
      valueEnd--;
    }
    offsets.push(nameStart, upper === 0 ? nameEnd : -nameEnd, valueStart, valueEnd);
    i += 2;
  }
  if (buf[i + 1] !== LF || i + 2 !== end) return "bad_request";

  const text = high < 128 ? decoder.decode(buf.subarray(start, end)) : latin1(buf, start, end);
  return interpret(text, start, methodEnd, targetStart, targetEnd, minor, end);
}

/** The head's meaning once it is well-formed: framing, keep-alive, Host. */
function interpret(
  text: string,
  base: number,
  methodEnd: number,
  targetStart: number,
  targetEnd: number,
  minor: 0 | 1,
  end: number,
): RequestHead | HeadFailure {
  const method = text.slice(0, methodEnd - base);
  const target = text.slice(targetStart - base, targetEnd - base);
  if (!validTarget(method, target)) return "bad_request";
  const headers: string[] = [];
  let host: string | undefined;
  let hosts = 0;
  let contentLength: string | undefined;
  let lengths = 0;
  let transferEncoding: string | undefined;
  let connection: string | undefined;
  let expect = false;
  for (let k = 0; k < offsets.length; k += 4) {
    const nameEnd = offsets[k + 1];
    const name = nameEnd > 0
      ? text.slice(offsets[k] - base, nameEnd - base)
      : text.slice(offsets[k] - base, -nameEnd - base).toLowerCase();
    const value = text.slice(offsets[k + 2] - base, offsets[k + 3] - base);
    headers.push(name, value);
    switch (name.length) {
      case 4:
        if (name === "host") {
          hosts++;
          host = value;
        }
        break;
      case 6:
        if (name === "expect") expect = value.toLowerCase() === "100-continue";
        break;
      case 10:
        if (name === "connection") {
          connection = connection === undefined ? value : `${connection}, ${value}`;
        }
        break;
      case 14:
        if (name === "content-length") {
          lengths++;
          contentLength = value;
        }
        break;
      case 17:
        if (name === "transfer-encoding") {
          transferEncoding = transferEncoding === undefined
            ? value
            : `${transferEncoding}, ${value}`;
        }
    }
  }
  if (hosts > 1 || (hosts === 0 && minor === 1)) return "bad_request";
  if (host !== undefined && !validHost(host)) return "bad_request";
  let bodyLength = 0;
  if (transferEncoding !== undefined) {
    if (lengths > 0 || minor === 0) return "bad_request";
    if (transferEncoding.toLowerCase() !== "chunked") return "unsupported_transfer_coding";
    bodyLength = CHUNKED;
  } else if (lengths > 0) {
    if (lengths > 1) return "bad_request";
    bodyLength = parseLength(contentLength!);
    if (bodyLength < 0) return "bad_request";
  }
  if (bodyLength !== 0 && (method === "GET" || method === "HEAD")) return "bad_request";
  const tokens = connection === undefined ? 0 : connectionTokens(connection);
  const keepAlive = persists(minor, tokens);
  return {
    method,
    target,
    minor,
    headers,
    host,
    bodyLength,
    keepAlive,
    upgrade: (tokens & UPGRADE) !== 0,
    expectContinue: expect && minor === 1 && bodyLength !== 0,
    end,
  };
}

/** origin-form, absolute-form (http/https), or `*` for OPTIONS. */
function validTarget(method: string, target: string): boolean {
  const first = target.charCodeAt(0);
  if (first === 47) return true; // "/"
  if (target === "*") return method === "OPTIONS";
  const lower = target.slice(0, 8).toLowerCase();
  return lower.startsWith("http://") || lower === "https://";
}

function validHost(host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c >= 128 || HOST_CHARS[c] !== 1) return false;
  }
  return true;
}

/** Bytes as ISO-8859-1 (obs-text in header values passes byte for byte). */
function latin1(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode(...buf.subarray(i, Math.min(end, i + 4096)));
  }
  return out;
}
