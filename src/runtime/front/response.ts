/**
 * Response heads of the HTTP/1.1 front: the framing a response goes out with (the handler's
 * Content-Length kept exactly, else chunked on HTTP/1.1, close-delimited on HTTP/1.0, nothing for
 * HEAD, 1xx, 204, 304), and the head's bytes (status line, headers, Set-Cookie one per line, a
 * cached Date, Connection). Pure apart from the clock.
 *
 * @module
 */
import { parseLength } from "./head.ts";

/** No body is sent (HEAD, 1xx, 204, 304, or an empty body with `content-length: 0`). */
export const NO_BODY = 0;
/** Exactly `length` bytes. */
export const LENGTH = 1;
export const CHUNKED_BODY = 2;
/** The body ends when the connection closes (HTTP/1.0 without a length). */
export const UNTIL_CLOSE = 3;

/** How a response's body goes out. */
export interface Framing {
  readonly kind: 0 | 1 | 2 | 3;
  /** For {@link LENGTH}. */
  readonly length: number;
}

/**
 * The framing of a response to `method` on HTTP/1.`minor`: `contentLength` is the response's
 * Content-Length header (null without), `hasBody` whether it has a body stream.
 * A Content-Length that is not a number is ignored (the body is then chunked).
 */
export function responseFraming(
  method: string,
  minor: number,
  status: number,
  contentLength: string | null,
  hasBody: boolean,
): Framing {
  if (method === "HEAD" || status < 200 || status === 204 || status === 304) {
    return { kind: NO_BODY, length: 0 };
  }
  const length = contentLength === null ? -1 : parseLength(contentLength);
  if (length >= 0) return { kind: length === 0 ? NO_BODY : LENGTH, length };
  if (!hasBody) return { kind: NO_BODY, length: 0 };
  return { kind: minor === 1 ? CHUNKED_BODY : UNTIL_CLOSE, length: -1 };
}

const REASONS: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

let dateSecond = -1;
let dateLine = "";

/** `date: <IMF-fixdate>\r\n`, made once a second. */
export function currentDateLine(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${new Date(second * 1000).toUTCString()}\r\n`;
  }
  return dateLine;
}

/**
 * The response head as text: status line (its statusText, else the standard reason), the
 * response's headers less the framing and connection ones (which `framing` and `close` decide),
 * Set-Cookie one per line, a Date unless it has one, and the empty line.
 *
 * @param keepAliveHeader say `connection: keep-alive` (to an HTTP/1.0 client that asked)
 * @param toHead the request was HEAD: a missing length is not made up as 0
 */
export function responseHead(
  response: Response,
  framing: Framing,
  close: boolean,
  keepAliveHeader: boolean,
  toHead = false,
): string {
  const status = response.status;
  let head = `HTTP/1.1 ${status} ${response.statusText || (REASONS[status] ?? "Unknown")}\r\n`;
  let hasDate = false;
  let cookies = false;
  for (const [name, value] of response.headers) {
    switch (name) {
      case "content-length":
        // A HEAD or 304 answer keeps the length the upstream gave (it describes the resource).
        if (framing.kind === NO_BODY && status !== 204 && status >= 200) break;
        continue;
      case "transfer-encoding":
      case "connection":
      case "keep-alive":
        continue;
      case "set-cookie":
        cookies = true;
        continue;
      case "date":
        hasDate = true;
    }
    head += `${name}: ${value}\r\n`;
  }
  if (cookies) {
    for (const cookie of response.headers.getSetCookie()) head += `set-cookie: ${cookie}\r\n`;
  }
  if (!hasDate) head += currentDateLine();
  if (framing.kind === LENGTH) head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === CHUNKED_BODY) head += "transfer-encoding: chunked\r\n";
  else if (framing.kind === NO_BODY && !toHead && needsZeroLength(response, status)) {
    head += "content-length: 0\r\n";
  }
  if (close) head += "connection: close\r\n";
  else if (keepAliveHeader) head += "connection: keep-alive\r\n";
  return head + "\r\n";
}

/** What {@link scanPairs} found; one object reused (the front writes one head at a time). */
export interface PairsScan {
  /** The header lines to send (framing and connection ones left out), CRLF-terminated. */
  lines: string;
  /** The Content-Length value, or null. */
  contentLength: string | null;
  hasDate: boolean;
}

const scan: PairsScan = { lines: "", contentLength: null, hasDate: false };

/**
 * The header lines of `pairs` (names lower-cased, as a `Headers` would give them), less the
 * framing and connection ones, which {@link pairsHead} decides; the Content-Length kept aside.
 * Returns a reused object, valid until the next call.
 */
export function scanPairs(pairs: readonly (readonly [string, string])[]): PairsScan {
  let lines = "";
  let contentLength: string | null = null;
  let hasDate = false;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i];
    const name = pair[0].toLowerCase();
    switch (name) {
      case "content-length":
        contentLength = pair[1];
        continue;
      case "transfer-encoding":
      case "connection":
      case "keep-alive":
        continue;
      case "date":
        hasDate = true;
    }
    lines += `${name}: ${pair[1]}\r\n`;
  }
  scan.lines = lines;
  scan.contentLength = contentLength;
  scan.hasDate = hasDate;
  return scan;
}

/**
 * The head of a response given as parts (status, reason, the lines of {@link scanPairs}): the
 * same head {@link responseHead} writes for the Response made of them.
 */
export function pairsHead(
  status: number,
  statusText: string,
  scanned: PairsScan,
  framing: Framing,
  close: boolean,
  keepAliveHeader: boolean,
  toHead = false,
): string {
  let head = `HTTP/1.1 ${status} ${
    statusText || (REASONS[status] ?? "Unknown")
  }\r\n${scanned.lines}`;
  if (!scanned.hasDate) head += currentDateLine();
  if (framing.kind === LENGTH) head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === CHUNKED_BODY) head += "transfer-encoding: chunked\r\n";
  else if (framing.kind === NO_BODY && status >= 200 && status !== 204) {
    // A HEAD or 304 answer keeps the length the upstream gave (it describes the resource); other
    // bodyless answers that may have a body say so with 0.
    if (scanned.contentLength !== null) head += `content-length: ${scanned.contentLength}\r\n`;
    else if (!toHead && status !== 304) head += "content-length: 0\r\n";
  }
  if (close) head += "connection: close\r\n";
  else if (keepAliveHeader) head += "connection: keep-alive\r\n";
  return head + "\r\n";
}

/** A bodyless answer that may have a body says so with `content-length: 0` (unless it had one). */
function needsZeroLength(response: Response, status: number): boolean {
  return status >= 200 && status !== 204 && status !== 304 &&
    !response.headers.has("content-length");
}

const encoder = new TextEncoder();

/**
 * `head` (latin1 text: one byte per character) followed by the first `bodyLength` bytes of
 * `body`, as one array to write: one write, one packet for the usual small response. Written
 * into `into` when it is large enough (a connection's reused buffer: no allocation); `view`, an
 * earlier result that is a view of `into`, is reused when it has the length needed (no new view).
 */
export function encodeHead(
  head: string,
  body?: Uint8Array,
  bodyLength = body?.length ?? 0,
  into?: Uint8Array,
  view?: Uint8Array,
): Uint8Array {
  const n = head.length;
  const total = n + bodyLength;
  const out = into === undefined || into.length < total
    ? new Uint8Array(total)
    : view !== undefined && view.length === total
    ? view
    : into.subarray(0, total);
  const { read, written } = encoder.encodeInto(head, out);
  if (read !== n || written !== n) {
    // Not ASCII: header values are latin1 (one byte per character), not UTF-8.
    for (let i = 0; i < n; i++) out[i] = head.charCodeAt(i);
  }
  if (body !== undefined && bodyLength > 0) {
    out.set(bodyLength === body.length ? body : body.subarray(0, bodyLength), n);
  }
  return out;
}

// One chunk encoder for both ends (src/proxy/http1_syntax.ts).
export { encodeChunk, LAST_CHUNK } from "../../proxy/http1_syntax.ts";
