/**
 * `host:port` text, as written in `listen` and `servers`.
 *
 * @module
 */

/** A parsed address. `text` is kept byte-exact: it is what sticky cookie values hash. */
export interface Address {
  readonly text: string;
  /** Host to connect to or bind, without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
}

const HOSTNAME =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV6_BODY = /^[0-9A-Fa-f:.]+$/;

/**
 * Parses `host:port`, `[v6]:port`, or (when `defaultPort` is given) a bare host.
 * Returns an error message saying what is allowed when the text is not an address.
 *
 * @example
 * ```ts
 * parseAddress("[::1]:9001"); // { text: "[::1]:9001", host: "::1", port: 9001 }
 * ```
 */
export function parseAddress(text: string, defaultPort?: number): Address | string {
  const expected = defaultPort === undefined
    ? `expected "host:port" such as "127.0.0.1:8080" or "[::1]:8080"`
    : `expected "host:port" such as "127.0.0.1:9001", "[::1]:9001" or "backend.internal:8080"`;
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return `"${text}" has no closing "]"; ${expected}`;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) return `"${text}" is not an address; ${expected}`;
    portText = rest === "" ? undefined : rest.slice(1);
    if (!IPV6_BODY.test(host) || !host.includes(":")) {
      return `"${host}" in "${text}" is not an IPv6 address; ${expected}`;
    }
  } else {
    const colon = text.lastIndexOf(":");
    if (colon >= 0 && text.indexOf(":") !== colon) {
      return `"${text}" looks like an IPv6 address without brackets; write "[${text}]:PORT"`;
    }
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (!HOSTNAME.test(host)) {
      return `"${host}" in "${text}" is not a host name or IPv4 address; ${expected}`;
    }
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return `"${text}" has no port; ${expected}`;
    port = defaultPort;
  } else {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
      return `port "${portText}" in "${text}" is not a number from 0 to 65535`;
    }
    port = Number(portText);
  }
  return { text, host, port };
}

/** Whether the address is on this machine's loopback (used by `--demo`). */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
