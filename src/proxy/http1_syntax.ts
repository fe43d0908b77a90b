/**
 * HTTP/1.1 syntax shared by both ends of the gateway: the upstream client (http1.ts,
 * response_head.ts) and the raw-socket front (src/runtime/front/), which imports it from here
 * (data flows proxy → runtime seam, never the reverse). One token table, one Content-Length
 * parser, so the two sides cannot drift apart in what they accept.
 *
 * @module
 */

/** RFC 9110 §5.6.2 tchar, indexed by byte (or by char code of a latin1 string: >255 reads 0). */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = TOKEN[c + 32] = 1;

/** A Content-Length value: 1*DIGIT (at most 15 digits, within 2^53), else -1. */
export function parseLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
