/**
 * The front's {@link ProxyRequest}: the parsed head as it is, read through a small header view
 * instead of a Web `Request` and `Headers` (on Deno those two cost about as much per request as
 * the rest of the front together: WebIDL checks of every header, a URL parse, a sorted copy on
 * every iteration).
 *
 * @module
 */
import type { ProxyRequest, RequestHeaders } from "../contracts.ts";

/**
 * A request head's headers: names in lower case (head.ts lowers them) and values, alternating.
 * Several lines of one name read as one value, joined as `Headers` joins them (", "; Cookie
 * lines with "; ", as HTTP/2 joins them, RFC 9113 §8.2.3).
 *
 * @example
 * ```ts
 * const headers = new HeadHeaders(["host", "a", "cookie", "x=1", "accept", "*\/*", "cookie", "y=2"]);
 * headers.get("cookie"); // "x=1; y=2"
 * [...headers].length; // 3: host, cookie (joined), accept
 * ```
 */
export class HeadHeaders implements RequestHeaders {
  constructor(readonly lines: readonly string[]) {}

  get(name: string): string | null {
    const lines = this.lines;
    let value: string | null = null;
    for (let i = 0; i < lines.length; i += 2) {
      if (lines[i] !== name) continue;
      value = value === null ? lines[i + 1] : `${value}${separator(name)}${lines[i + 1]}`;
    }
    return value;
  }

  has(name: string): boolean {
    const lines = this.lines;
    for (let i = 0; i < lines.length; i += 2) if (lines[i] === name) return true;
    return false;
  }

  *[Symbol.iterator](): Generator<[string, string]> {
    const lines = this.lines;
    let cookieAt = -1;
    for (let i = 0; i < lines.length; i += 2) {
      const name = lines[i];
      if (name === "cookie") {
        // One Cookie header, where the first line was: the rest are joined to it.
        if (cookieAt >= 0) continue;
        cookieAt = i;
        yield [name, this.get("cookie")!];
        continue;
      }
      yield [name, lines[i + 1]];
    }
  }
}

function separator(name: string): string {
  return name === "cookie" ? "; " : ", ";
}

/**
 * The absolute URL of a request target: origin-form under the connection's authority, `*` as
 * `/*` (answered by the front), absolute-form as sent with "/" for an empty path.
 *
 * @example
 * ```ts
 * requestUrl("/a?b", "example.com"); // "http://example.com/a?b"
 * requestUrl("http://example.com?q", "ignored"); // "http://example.com/?q"
 * ```
 */
export function requestUrl(target: string, authority: string): string {
  if (target.charCodeAt(0) === 47) return `http://${authority}${target}`;
  if (target === "*") return `http://${authority}/*`;
  const from = target.indexOf("//") + 2;
  let end = from;
  while (end < target.length && !"/?#".includes(target[end])) end++;
  return target[end] === "/" ? target : `${target.slice(0, end)}/${target.slice(end)}`;
}

/** What the front keeps per request beside the head: the connection's signal. */
export interface SignalSource {
  signal(): AbortSignal;
}

/** A request of the HTTP/1.1 front (see the module's comment). */
export class FrontRequest<C extends SignalSource = SignalSource> implements ProxyRequest {
  readonly headers: HeadHeaders;

  constructor(
    readonly method: string,
    readonly url: string,
    lines: readonly string[],
    readonly body: ReadableStream<Uint8Array> | null,
    readonly httpVersion: string,
    readonly connection: C,
  ) {
    this.headers = new HeadHeaders(lines);
  }

  /** Made on first read (the proxy reads it only for slow exchanges). */
  get signal(): AbortSignal {
    return this.connection.signal();
  }
}
