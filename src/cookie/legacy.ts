/**
 * Cookie values of the 1.2.x line of nginx-sticky-module-ng (up to 1.2.6, still in openSUSE and
 * old images), accepted with `accept_legacy = true` so that their clients keep their server.
 *
 * That line hashed the peer's binary `struct sockaddr` (Linux layout, `socklen` bytes): IPv4 is
 * 16 bytes `02 00 | port (big-endian) | address | 8 zero bytes`, IPv6 is 28 bytes
 * `0a 00 | port | flowinfo 0 (4) | address (16) | scope_id 0 (4)`; its `text=raw` was the
 * `ip:port` text (`ngx_sock_ntop`), `text=md5|sha1` the digest of that text.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import type { ResolvedAddress } from "../config/address.ts";

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The Linux `struct sockaddr_in` / `sockaddr_in6` bytes of an address, as 1.2.x hashed them.
 *
 * @example
 * ```ts
 * const a = { family: 4, bytes: new Uint8Array([127, 0, 0, 1]), port: 9001, printable: "127.0.0.1:9001" } as const;
 * sockaddrBytes(a).length; // 16
 * ```
 */
export function sockaddrBytes(address: ResolvedAddress): Uint8Array {
  const ipv4 = address.family === 4;
  const out = new Uint8Array(ipv4 ? 16 : 28);
  out[0] = ipv4 ? AF_INET : AF_INET6; // sa_family, little-endian u16
  out[2] = address.port >> 8;
  out[3] = address.port & 0xff;
  out.set(address.bytes, ipv4 ? 4 : 8);
  return out;
}

/**
 * Every value a 1.2.x module could have issued for this address: the md5, sha1 (and with a key,
 * HMAC-md5 and HMAC-sha1) digests of its sockaddr, and the `text=` forms (the text, its md5 and
 * sha1). Lowercase hex, as the module wrote them.
 *
 * @example
 * ```ts
 * const a = { family: 4, bytes: new Uint8Array([127, 0, 0, 1]), port: 9001, printable: "127.0.0.1:9001" } as const;
 * legacyValues(a).includes("2b46daf0ba503cbe30c3b46dfad73e0a"); // true (md5 of the sockaddr)
 * ```
 */
export function legacyValues(address: ResolvedAddress, hmacKey?: string): string[] {
  const sockaddr = sockaddrBytes(address);
  const text = address.printable;
  const values = [
    createHash("md5").update(sockaddr).digest("hex"),
    createHash("sha1").update(sockaddr).digest("hex"),
    text,
    createHash("md5").update(text).digest("hex"),
    createHash("sha1").update(text).digest("hex"),
  ];
  if (hmacKey !== undefined && hmacKey !== "") {
    values.push(
      createHmac("md5", hmacKey).update(sockaddr).digest("hex"),
      createHmac("sha1", hmacKey).update(sockaddr).digest("hex"),
    );
  }
  return values;
}
