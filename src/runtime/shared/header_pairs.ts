/**
 * A request head's header lines (names and values, alternating, as a parser or `rawHeaders`
 * gives them) into a Web `Headers`: the front's and Bun's TLS listener's one way of doing it.
 *
 * @module
 */

/**
 * Appends the pairs to `headers`. Several Cookie headers become one, joined with "; " (as HTTP/2
 * does, RFC 9113 §8.2.3): `Headers` would join them with ", ", which breaks cookie values.
 * HTTP/2 pseudo-headers (names starting with ":") are left out.
 *
 * @example
 * ```ts
 * const headers = new Headers();
 * appendHeaderPairs(headers, ["Host", "a", "Cookie", "x=1", "cookie", "y=2"]);
 * headers.get("cookie"); // "x=1; y=2"
 * ```
 */
export function appendHeaderPairs(headers: Headers, pairs: readonly string[]): void {
  let cookie: string | undefined;
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i];
    if (name.charCodeAt(0) === 58) continue; // ":" starts a pseudo-header
    if (name.length === 6 && name.toLowerCase() === "cookie") {
      cookie = cookie === undefined ? pairs[i + 1] : `${cookie}; ${pairs[i + 1]}`;
      continue;
    }
    headers.append(name, pairs[i + 1]);
  }
  if (cookie !== undefined) headers.append("cookie", cookie);
}
