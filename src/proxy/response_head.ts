/**
 * Parsing an upstream's HTTP/1.x response head (status line and header lines), shared by the
 * HTTP/1.1 client and the WebSocket handshake.
 *
 * @module
 */
import { UpstreamError } from "./errors.ts";
import type { HeaderPair } from "./headers.ts";

export interface ParsedHead {
  readonly http10: boolean;
  readonly status: number;
  readonly statusText: string;
  /** Names lower-cased, values trimmed, in the order received. */
  readonly headers: HeaderPair[];
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/**
 * Parses the head's text (latin1, without the final blank line). Throws `bad_response` for a bad
 * status line, a header line without a name, or obsolete line folding.
 */
export function parseResponseHead(text: string): ParsedHead {
  const lines = text.split("\r\n");
  const status = STATUS_LINE.exec(lines[0]);
  if (status === null) {
    throw new UpstreamError(
      "bad_response",
      `bad status line ${JSON.stringify(lines[0].slice(0, 80))}`,
    );
  }
  const headers: HeaderPair[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
      throw new UpstreamError(
        "bad_response",
        `bad header line ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    headers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return {
    http10: status[1] === "0",
    status: Number(status[2]),
    statusText: status[3] ?? "",
    headers,
  };
}
