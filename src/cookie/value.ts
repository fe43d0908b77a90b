/**
 * Cookie values exactly as nginx-sticky-module-ng v1.3.0 computes them.
 *
 * The input is the server's address text *as written in the config* (`S`), never a resolved or
 * normalized address: that is what keeps cookies issued by nginx valid after a migration.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";

/** How a server's address text becomes its cookie value. */
export type CookieValueMode = "md5" | "sha1" | "index" | "hmac-md5" | "hmac-sha1" | "raw";

/**
 * The cookie value that names one server.
 *
 * @param mode how the value is derived (`md5` is the module's default)
 * @param addressText the address exactly as written in `servers`
 * @param index the server's position among the upstream's servers (used by `index` mode)
 * @param hmacKey the key for the `hmac-*` modes
 * @example
 * ```ts
 * cookieValue("md5", "127.0.0.1:9001", 0); // "422db4e6da7b4bba46bd476612df0469"
 * cookieValue("index", "127.0.0.1:9003", 2); // "2"
 * ```
 */
export function cookieValue(
  mode: CookieValueMode,
  addressText: string,
  index: number,
  hmacKey = "",
): string {
  if (mode === "raw") return addressText;
  if (mode === "index") return String(index);
  // Digests are remembered: a reload of 1,000 servers computes none of them again (one call
  // into the runtime's crypto each costs microseconds on Deno).
  const key = `${mode}\n${hmacKey}\n${addressText}`;
  let value = DIGESTS.get(key);
  if (value === undefined) {
    if (DIGESTS.size >= REMEMBERED) DIGESTS.clear();
    value = digest(mode, addressText, hmacKey);
    DIGESTS.set(key, value);
  }
  return value;
}

/** Digests computed so far, by mode, key and address text (bounded: cleared when full). */
const DIGESTS = new Map<string, string>();
const REMEMBERED = 65_536;

function digest(mode: CookieValueMode, addressText: string, hmacKey: string): string {
  switch (mode) {
    case "md5":
    case "sha1":
      return createHash(mode).update(addressText).digest("hex");
    case "hmac-md5":
      return createHmac("md5", hmacKey).update(addressText).digest("hex");
    case "hmac-sha1":
      return createHmac("sha1", hmacKey).update(addressText).digest("hex");
    default:
      throw new TypeError(`not a digest mode: ${mode}`);
  }
}

/**
 * The value nginx's own `sticky cookie` (nginx >= 1.29.6) gives a peer: lowercase hex MD5 of its
 * resolved printable address (`127.0.0.1:80`, `[::1]:80`, never the text as written).
 *
 * @example
 * ```ts
 * nginxCookieValue("127.0.0.1:19101"); // "fcd6d2d84f578c7cf43723b120257fda"
 * ```
 */
export function nginxCookieValue(printableAddress: string): string {
  return createHash("md5").update(printableAddress).digest("hex");
}

/**
 * Parses an `index`-mode cookie value the way nginx's `ngx_atoi` does: ASCII digits only, no
 * sign, leading zeros allowed. Returns -1 for anything else, including overflow.
 *
 * @example
 * ```ts
 * parseIndexValue("01"); // 1
 * parseIndexValue("+1"); // -1
 * ```
 */
export function parseIndexValue(value: string): number {
  if (value.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
    if (n > 0x7fffffff) return -1; // ngx_atoi reports overflow as an error
  }
  return n;
}
