/**
 * An HTTP response as `curl -i` prints it, read into status, headers and body: the bench's checks
 * before any load (bench/run.ts, the TLS phase).
 *
 * @module
 */

/** A response as curl printed it. */
export interface HttpReply {
  readonly status: number;
  /** Lower-case names, in order. */
  readonly headers: readonly [string, string][];
  readonly body: string;
  /** The first value of a header (lower-case name). */
  header(name: string): string | undefined;
  /** Every value of a header (lower-case name). */
  all(name: string): string[];
}

/** Reads `curl -i`'s output (the head, a blank line, the body). */
export function parseHttpReply(text: string): HttpReply {
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 4);
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: [string, string][] = lines.map((l) => {
    const c = l.indexOf(":");
    return [l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim()];
  });
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body,
    header: (n) => headers.find(([k]) => k === n)?.[1],
    all: (n) => headers.filter(([k]) => k === n).map(([, v]) => v),
  };
}
