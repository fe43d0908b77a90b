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

/**
 * One address a server resolves to, as nginx holds it: the bytes of the IP, the port, and the
 * text `ngx_sock_ntop` prints (`127.0.0.1:80`, `[::1]:80`), which nginx's own `sticky cookie`
 * hashes. The 1.2.x sticky module hashed the binary `struct sockaddr` made from the same bytes.
 */
export interface ResolvedAddress {
  readonly family: 4 | 6;
  /** 4 bytes (IPv4) or 16 (IPv6), network order. */
  readonly bytes: Uint8Array;
  readonly port: number;
  /** `ip:port`, IPv6 as `[v6]:port`, as nginx prints a peer's name. */
  readonly printable: string;
}

/** Host name → its addresses (IPv4 first, then IPv6, as nginx orders getaddrinfo's answer). */
export type HostsTable = ReadonlyMap<string, readonly Uint8Array[]>;

const IPV4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/;

/**
 * An IPv4 literal as nginx's `ngx_inet_addr` reads it: four decimal octets, leading zeros allowed
 * (`127.000.000.001` is 127.0.0.1); undefined when it is not one.
 *
 * @example
 * ```ts
 * parseIpv4("127.000.000.001"); // Uint8Array [127, 0, 0, 1]
 * ```
 */
export function parseIpv4(text: string): Uint8Array | undefined {
  const match = IPV4.exec(text);
  if (match === null) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const octet = Number(match[i + 1]);
    if (octet > 255) return undefined;
    bytes[i] = octet;
  }
  return bytes;
}

/**
 * An IPv6 literal (without brackets; `::`, and a dotted IPv4 tail allowed) as 16 bytes, or
 * undefined when it is not one.
 *
 * @example
 * ```ts
 * parseIpv6("::1"); // 15 zero bytes, then 1
 * ```
 */
export function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 1 || halves[1] === "" ? [] : halves[1].split(":");
  const words: number[] = [];
  const all = [...head, ...tail];
  const last = all[all.length - 1];
  let v4: Uint8Array | undefined;
  if (last !== undefined && last.includes(".")) {
    v4 = parseIpv4(last);
    if (v4 === undefined) return undefined;
    if (tail.length > 0) tail.pop();
    else head.pop();
  }
  for (const group of [...head, ...tail]) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return undefined;
  }
  const groups = head.length + tail.length + (v4 === undefined ? 0 : 2);
  if (halves.length === 1 ? groups !== 8 : groups > 7) return undefined;
  for (const group of head) words.push(parseInt(group, 16));
  for (let i = groups; i < 8; i++) words.push(0);
  for (const group of tail) words.push(parseInt(group, 16));
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  if (v4 !== undefined) bytes.set(v4, 12);
  return bytes;
}

/**
 * An IPv6 address as nginx's `ngx_inet6_ntop` prints it: lower-case hex without leading zeros,
 * the first longest run of two or more zero groups as `::`, and the IPv4 forms (`::ffff:a.b.c.d`,
 * `::a.b.c.d`) dotted.
 *
 * @example
 * ```ts
 * formatIpv6(parseIpv6("2001:0DB8:0:0:0:0:0:1")!); // "2001:db8::1"
 * ```
 */
export function formatIpv6(bytes: Uint8Array): string {
  let zero = -1;
  let last = -1;
  let max = 1;
  let n = 0;
  for (let i = 0; i < 16; i += 2) {
    if (bytes[i] !== 0 || bytes[i + 1] !== 0) {
      if (max < n) [zero, max] = [last, n];
      n = 0;
      continue;
    }
    if (n++ === 0) last = i;
  }
  if (max < n) [zero, max] = [last, n];
  let text = "";
  let end = 16;
  if (zero === 0) {
    if (
      (max === 5 && bytes[10] === 0xff && bytes[11] === 0xff) || max === 6 ||
      (max === 7 && bytes[14] !== 0 && bytes[15] !== 1)
    ) end = 12;
    text += ":";
  }
  for (let i = 0; i < end; i += 2) {
    if (i === zero) {
      text += ":";
      i += (max - 1) * 2;
      continue;
    }
    text += (bytes[i] * 256 + bytes[i + 1]).toString(16);
    if (i < 14) text += ":";
  }
  if (end === 12) text += `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  return text;
}

/** `ip:port` as nginx prints a peer (`ngx_sock_ntop` with the port). */
function printable(bytes: Uint8Array, port: number): string {
  return bytes.length === 4
    ? `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}:${port}`
    : `[${formatIpv6(bytes)}]:${port}`;
}

/**
 * The hosts file's names and their addresses, in the order nginx would take them from
 * getaddrinfo (IPv4 before IPv6, file order within each). Names compare case-insensitively.
 *
 * @example
 * ```ts
 * parseHosts("127.0.0.1 localhost\n::1 localhost ip6-localhost\n").get("localhost")?.length; // 2
 * ```
 */
export function parseHosts(text: string): HostsTable {
  const v4 = new Map<string, Uint8Array[]>();
  const v6 = new Map<string, Uint8Array[]>();
  for (const line of text.split("\n")) {
    const [ip, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (ip === undefined || names.length === 0) continue;
    const bytes = parseIpv4(ip) ?? parseIpv6(ip.replace(/%.*$/, ""));
    if (bytes === undefined) continue;
    const table = bytes.length === 4 ? v4 : v6;
    for (const name of names) {
      const key = name.toLowerCase();
      const list = table.get(key) ?? [];
      if (!list.some((b) => b.every((x, i) => x === bytes[i]))) list.push(bytes);
      table.set(key, list);
    }
  }
  const merged = new Map<string, Uint8Array[]>(v4);
  for (const [name, list] of v6) merged.set(name, [...(merged.get(name) ?? []), ...list]);
  return merged;
}

/**
 * The addresses a server's host resolves to at config load, as nginx resolves a `server` line
 * once at start: an IP literal is itself; a name is looked up in the hosts file (the resolver's
 * first source). Returns a message when the name is not there: nginx would have asked DNS, and a
 * config load here does not wait for the network.
 */
export function resolveAddress(address: Address, hosts: HostsTable): ResolvedAddress[] | string {
  const host = address.host;
  const literal = host.includes(":") ? parseIpv6(host) : parseIpv4(host);
  const list = literal !== undefined ? [literal] : hosts.get(host.toLowerCase());
  if (list === undefined || list.length === 0) {
    return `"${host}" is not an IP address and not in the hosts file`;
  }
  return list.map((bytes) => ({
    family: bytes.length === 4 ? 4 : 6,
    bytes,
    port: address.port,
    printable: printable(bytes, address.port),
  }));
}
