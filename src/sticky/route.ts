/**
 * Route stickiness: the route a request names, read from an application's own cookie, a header
 * or a query parameter (`route_from`), as nginx's `sticky route $cookie_X $http_X $arg_X` reads
 * its variables: the first non-empty one wins. Pure; no allocation beyond the value's slice.
 *
 * @module
 */
import type { RouteSource, Sticky } from "../config/mod.ts";
import { findCookie } from "../cookie/read.ts";
import type { RequestHeaders } from "../runtime/contracts.ts";

/**
 * The route the request names (the part after the last `route_delimiter`, or the whole value),
 * or undefined when no source has a non-empty value.
 *
 * @param target the request target (path and query) as sent
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * const sticky = parseConfig(`[upstreams.app]
 * servers = [{ address = "127.0.0.1:9001", route = "node1" }]
 * [upstreams.app.sticky]
 * route_from = ["cookie:JSESSIONID"]
 * `).upstreams.get("app")!.sticky!;
 * routeOf(sticky, new Headers({ cookie: "JSESSIONID=abc.node1" }), "/"); // "node1"
 * ```
 */
export function routeOf(
  sticky: Sticky,
  headers: RequestHeaders,
  target: string,
): string | undefined {
  const sources = sticky.routeFrom;
  if (sources === undefined) return undefined;
  for (let i = 0; i < sources.length; i++) {
    const value = sourceValue(sources[i], headers, target);
    if (value !== null && value !== "") return afterDelimiter(value, sticky.routeDelimiter ?? ".");
  }
  return undefined;
}

function sourceValue(source: RouteSource, headers: RequestHeaders, target: string): string | null {
  switch (source.kind) {
    case "cookie":
      return findCookie(headers.get("cookie"), source.lowerName);
    case "header":
      return headers.get(source.lowerName);
    case "query":
      return queryArg(target, source.lowerName);
  }
}

/**
 * `route_delimiter`: the route is what follows the delimiter's last occurrence (Tomcat's
 * `JSESSIONID=<id>.<jvmRoute>`), else the whole value; "" = always the whole value.
 *
 * @example
 * ```ts
 * afterDelimiter("abc.def.node1", "."); // "node1"
 * afterDelimiter("node1", "."); // "node1"
 * ```
 */
export function afterDelimiter(value: string, delimiter: string): string {
  if (delimiter === "") return value;
  const at = value.lastIndexOf(delimiter);
  return at < 0 ? value : value.slice(at + delimiter.length);
}

/**
 * A query parameter as nginx's `$arg_NAME` finds it (`ngx_http_arg`): the first `NAME=` at the
 * start of the query or after a `&`, the name compared case-insensitively; the value up to the
 * next `&`, not decoded. Null when absent.
 *
 * @param lowerName the parameter name in lower case
 * @example
 * ```ts
 * queryArg("/app?a=1&Route=node2&x", "route"); // "node2"
 * ```
 */
export function queryArg(target: string, lowerName: string): string | null {
  const query = target.indexOf("?");
  if (query < 0) return null;
  const end = target.length;
  let at = query + 1;
  while (at < end) {
    if (nameAt(target, at, lowerName) && target.charCodeAt(at + lowerName.length) === EQUALS) {
      const start = at + lowerName.length + 1;
      const amp = target.indexOf("&", start);
      return target.slice(start, amp < 0 ? end : amp);
    }
    const amp = target.indexOf("&", at);
    if (amp < 0) return null;
    at = amp + 1;
  }
  return null;
}

const EQUALS = 0x3d;

function nameAt(text: string, at: number, lowerName: string): boolean {
  if (at + lowerName.length >= text.length) return false;
  for (let k = 0; k < lowerName.length; k++) {
    let c = text.charCodeAt(at + k);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerName.charCodeAt(k)) return false;
  }
  return true;
}
