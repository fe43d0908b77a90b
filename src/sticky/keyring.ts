/**
 * The keys that sign and verify sticky tokens (`mode = "token"`): read from a file or an
 * environment variable, one `id:secret` per line. The first key signs; every key verifies, so a
 * rotation (a new first line, then a reload) moves no client. Secrets never leave this module:
 * messages and the API name key ids only.
 *
 * @module
 */
import { HmacSha256 } from "./hmac_sha256.ts";

/** One key: its id (in tokens and messages) and its HMAC state; the secret itself is not kept. */
export interface TokenKey {
  readonly id: string;
  readonly mac: HmacSha256;
}

/** Keys by id; `signing` is the first. */
export interface Keyring {
  readonly signing: TokenKey;
  readonly byId: ReadonlyMap<string, TokenKey>;
}

/** Key ids: short, and safe in a token and a message. */
const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;
/** The least secret length in bytes (as HMAC-SHA256's own output; the issue's floor). */
export const MIN_SECRET_BYTES = 32;

/**
 * Reads keyring text: one `id:secret` per line (blank lines and `#` comments skipped). Returns
 * the keyring, or the problems (each naming the line and the key id, never a secret).
 *
 * @example
 * ```ts
 * import { parseKeyring } from "./keyring.ts";
 * const ring = parseKeyring("# rotated 2026-12\nk2:" + "b".repeat(32) + "\nk1:" + "a".repeat(32) + "\n");
 * if (typeof ring === "string" || ring.signing.id !== "k2" || ring.byId.size !== 2) throw new Error();
 * ```
 */
export function parseKeyring(text: string): Keyring | string {
  const keys: TokenKey[] = [];
  const byId = new Map<string, TokenKey>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    const where = `line ${i + 1}`;
    if (colon < 0) return `${where}: write each key as id:secret (no ":" found)`;
    const id = line.slice(0, colon);
    const secret = new TextEncoder().encode(line.slice(colon + 1));
    if (!KEY_ID.test(id)) {
      return `${where}: the key id must be 1-16 of A-Z a-z 0-9 _ - (it is sent in every token)`;
    }
    if (byId.has(id)) return `${where}: key id "${id}" appears twice`;
    if (secret.length < MIN_SECRET_BYTES) {
      return `${where}: the secret of key "${id}" has ${secret.length} bytes; use at least ${MIN_SECRET_BYTES} (e.g. openssl rand -base64 48)`;
    }
    const key = { id, mac: new HmacSha256(secret) };
    keys.push(key);
    byId.set(id, key);
  }
  if (keys.length === 0) return "no key: write at least one line id:secret";
  return { signing: keys[0], byId };
}
