/**
 * Finding the sticky cookie in a request's `Cookie` header with nginx's rules, without parsing
 * every cookie into objects.
 *
 * @module
 */

const SPACE = 0x20;
const TAB = 0x09;
const SEMICOLON = 0x3b;
const COMMA = 0x2c;
const EQUALS = 0x3d;

/**
 * The value of the first cookie called `lowerName` (compared case-insensitively), or `null`.
 *
 * nginx (`ngx_http_parse_multi_header_lines`) splits pairs at `;` and at `,`, skips spaces around
 * `=`, keeps spaces before a `;` and does not strip quotes. The runtimes hand us several `Cookie`
 * lines joined by `", "`, so a value also ends at `,`, with trailing blanks trimmed there as
 * nginx trims the end of a line. (nginx would keep `B,x` whole in `route=B,x`; no server's value
 * can contain a comma, so such a cookie names no server there and is `B` here.)
 *
 * @param header the request's `Cookie` header, or null when it has none
 * @param lowerName the cookie name in lower case
 * @example
 * ```ts
 * findCookie("a=1; ROUTE=abc; route=def", "route"); // "abc"
 * findCookie("route = abc ;x=1", "route"); // "abc " (which then names no server)
 * ```
 */
export function findCookie(header: string | null, lowerName: string): string | null {
  if (header === null) return null;
  const end = header.length;
  const nameLength = lowerName.length;
  let i = 0;
  while (i < end) {
    while (i < end && isBlank(header.charCodeAt(i))) i++;
    if (i + nameLength <= end && matchesName(header, i, lowerName)) {
      let j = i + nameLength;
      while (j < end && header.charCodeAt(j) === SPACE) j++;
      if (j < end && header.charCodeAt(j) === EQUALS) {
        return readValue(header, j + 1);
      }
    }
    i = nextPair(header, i);
  }
  return null;
}

function readValue(header: string, start: number): string {
  const end = header.length;
  let i = start;
  while (i < end && header.charCodeAt(i) === SPACE) i++;
  const valueStart = i;
  while (i < end) {
    const c = header.charCodeAt(i);
    if (c === SEMICOLON) return header.slice(valueStart, i);
    if (c === COMMA) break;
    i++;
  }
  let valueEnd = i;
  while (valueEnd > valueStart && isBlank(header.charCodeAt(valueEnd - 1))) valueEnd--;
  return header.slice(valueStart, valueEnd);
}

function matchesName(header: string, at: number, lowerName: string): boolean {
  for (let k = 0; k < lowerName.length; k++) {
    let c = header.charCodeAt(at + k);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20; // ASCII upper → lower
    if (c !== lowerName.charCodeAt(k)) return false;
  }
  return true;
}

function nextPair(header: string, from: number): number {
  for (let i = from; i < header.length; i++) {
    const c = header.charCodeAt(i);
    if (c === SEMICOLON || c === COMMA) return i + 1;
  }
  return header.length;
}

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}
