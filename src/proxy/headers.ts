/**
 * Header rules between client and upstream: hop-by-hop headers are dropped both ways
 * (RFC 9110 §7.6.1), `X-Forwarded-*` are set, `Host` passes as the client sent it.
 *
 * @module
 */
import type { ClientInfo, RequestHeaders } from "../runtime/contracts.ts";
export type { ClientInfo };

/** A header as a name/value pair; repeated headers (Set-Cookie) stay separate pairs. */
export type HeaderPair = [name: string, value: string];

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);

/** Headers the `Connection` header lists (they are hop-by-hop too), or undefined for none. */
export function connectionTokens(connection: string | null | undefined): Set<string> | undefined {
  // The usual values first, without splitting (every keep-alive response carries one).
  if (!connection || connection === "keep-alive" || connection === "close") return undefined;
  let tokens: Set<string> | undefined;
  for (const raw of connection.split(",")) {
    const token = raw.trim().toLowerCase();
    if (token === "" || token === "close" || token === "keep-alive") continue;
    (tokens ??= new Set()).add(token);
  }
  return tokens;
}

/**
 * The headers to send upstream: the client's, less hop-by-hop ones, with `X-Forwarded-For`
 * appended to, `X-Forwarded-Proto`/`X-Forwarded-Host` set and `X-Request-Id` (the client's when
 * sane, see request_record.ts) last. `authority` stands in for a
 * missing Host header (HTTP/2 requests carry `:authority` instead, which Deno leaves out).
 * `hideCookie` (a lower-case cookie name, `indirect = true`): that cookie is taken out of the
 * `Cookie` header ({@link withoutCookie}), and the header left out when nothing remains.
 */
export function upstreamRequestHeaders(
  headers: RequestHeaders,
  client: ClientInfo,
  authority?: string,
  requestId?: string,
  hideCookie?: string,
): HeaderPair[] {
  const listed = connectionTokens(headers.get("connection"));
  const out: HeaderPair[] = [];
  let forwardedFor: string | undefined;
  let host: string | undefined;
  const flat = flatHeaders(headers);
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i];
    const value = flat[i + 1];
    if (HOP_BY_HOP.has(name) || (listed !== undefined && listed.has(name))) continue;
    switch (name) {
      case "x-forwarded-for":
        // Several lines are one list (a `Headers` joins them; the front's view does not).
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case "x-forwarded-proto":
      case "x-forwarded-host":
        continue;
      case "x-request-id":
        if (requestId !== undefined) continue;
        break;
      case "host":
        host = value;
        break;
      case "cookie":
        if (hideCookie !== undefined) {
          const kept = withoutCookie(value, hideCookie);
          if (kept !== "") out.push([name, kept]);
          continue;
        }
    }
    out.push([name, value]);
  }
  if (host === undefined && authority) {
    host = authority;
    out.unshift(["host", authority]);
  }
  out.push([
    "x-forwarded-for",
    forwardedFor === undefined ? client.remoteAddress : `${forwardedFor}, ${client.remoteAddress}`,
  ]);
  out.push(["x-forwarded-proto", client.protocol]);
  if (host !== undefined) out.push(["x-forwarded-host", host]);
  if (requestId !== undefined) out.push(["x-request-id", requestId]);
  return out;
}

/**
 * The headers as names and values, alternating, as the iteration gives them (one Cookie header):
 * the front's parsed lines themselves when they hold at most one Cookie line (nearly always), so
 * the usual request costs no iterator, no pair arrays and no copy.
 */
function flatHeaders(headers: RequestHeaders): readonly string[] {
  const lines = headers.lines;
  if (lines !== undefined) {
    let cookies = 0;
    for (let i = 0; i < lines.length; i += 2) if (lines[i] === "cookie") cookies++;
    if (cookies <= 1) return lines;
  }
  const flat: string[] = [];
  for (const [name, value] of headers) flat.push(name, value);
  return flat;
}

/**
 * Appends the upstream's response headers that may reach the client to `out`: hop-by-hop
 * headers are dropped, and so is the upstream's own Set-Cookie for the sticky cookie's name
 * (the gateway owns that cookie). Other Set-Cookie headers pass as separate headers.
 *
 * @param stickyLowerName the sticky cookie's name in lower case, or undefined
 */
export function appendClientResponseHeaders(
  upstream: readonly HeaderPair[],
  stickyLowerName: string | undefined,
  out: HeaderPair[],
): void {
  let listed: Set<string> | undefined;
  for (const pair of upstream) {
    if (pair[0].toLowerCase() === "connection") listed = connectionTokens(pair[1]);
  }
  for (const pair of upstream) {
    const name = pair[0].toLowerCase();
    if (HOP_BY_HOP.has(name) || (listed !== undefined && listed.has(name))) continue;
    if (
      name === "set-cookie" && stickyLowerName !== undefined && setsCookie(pair[1], stickyLowerName)
    ) continue;
    out.push(pair);
  }
}

function setsCookie(setCookie: string, lowerName: string): boolean {
  const equals = setCookie.indexOf("=");
  return equals >= 0 && setCookie.slice(0, equals).trim().toLowerCase() === lowerName;
}

const SPACE = 0x20;
const TAB = 0x09;
const SEMICOLON = 0x3b;
const COMMA = 0x2c;
const EQUALS = 0x3d;

/**
 * A `Cookie` header value without the cookies called `lowerName` (compared case-insensitively,
 * found as the sticky cookie is read: pairs end at `;` or `,`). Every other byte stays as it was:
 * a removed pair takes the separator and blanks after it along, or, when it is the last pair,
 * those before it. "" when nothing remains.
 *
 * @example
 * ```ts
 * withoutCookie("a=1; route=x; b=2", "route"); // "a=1; b=2"
 * withoutCookie("a=1;route=x", "route"); // "a=1"
 * withoutCookie("ROUTE=x", "route"); // ""
 * ```
 */
export function withoutCookie(header: string, lowerName: string): string {
  let text = header;
  let i = 0;
  while (i < text.length) {
    const pairStart = skipBlanks(text, i);
    const pairEnd = pairEndAt(text, pairStart);
    if (!namesCookie(text, pairStart, pairEnd, lowerName)) {
      i = pairEnd + 1;
      continue;
    }
    if (pairEnd < text.length) {
      // Not the last pair: remove it up to the next pair's first character.
      text = text.slice(0, pairStart) + text.slice(skipBlanks(text, pairEnd + 1));
      i = pairStart;
    } else {
      // The last pair: remove it with the separator (and blanks) before it.
      let cut = pairStart;
      while (cut > 0 && isBlank(text.charCodeAt(cut - 1))) cut--;
      if (cut > 0) cut--;
      while (cut > 0 && isBlank(text.charCodeAt(cut - 1))) cut--;
      text = text.slice(0, cut);
    }
  }
  return text;
}

function skipBlanks(text: string, from: number): number {
  let i = from;
  while (i < text.length && isBlank(text.charCodeAt(i))) i++;
  return i;
}

/** Where the pair starting at `from` ends: its separator, or the end. */
function pairEndAt(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === SEMICOLON || c === COMMA) return i;
  }
  return text.length;
}

/** The pair in [start, end) is `lowerName[ ]*=…`. */
function namesCookie(text: string, start: number, end: number, lowerName: string): boolean {
  const nameEnd = start + lowerName.length;
  if (nameEnd > end) return false;
  for (let k = 0; k < lowerName.length; k++) {
    let c = text.charCodeAt(start + k);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerName.charCodeAt(k)) return false;
  }
  let j = nameEnd;
  while (j < end && text.charCodeAt(j) === SPACE) j++;
  return j < end && text.charCodeAt(j) === EQUALS;
}

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}
