/**
 * `[admin]`: the admin listener (metrics, health probes, the API and the status page).
 * `listen` is required when the table is present; `token` or `token_file` (not both) sets the
 * bearer token the API asks for. A listener off loopback must have a token: anyone who can reach
 * it could otherwise drain every server.
 *
 * A `token_file` is read once, when the config loads (relative to the config file's directory),
 * and trimmed, so `openssl rand -hex 32 > admin.token` works as it is.
 *
 * @module
 */
import { type Address, isLoopback, parseAddress } from "./address.ts";
import type { Fields } from "./fields.ts";
import type { Problems } from "./problems.ts";
import { readConfigFile } from "./files.ts";

/** The shortest token accepted: 16 characters leave guessing out of reach of a rate-less API. */
export const MIN_TOKEN_LENGTH = 16;
/** RFC 6750's token68 (what `Authorization: Bearer` carries): no spaces, no quotes. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Stands in for a listen address that has a problem (the config is refused anyway). */
const FALLBACK_LISTEN: Address = { text: "127.0.0.1:9901", host: "127.0.0.1", port: 9901 };
const GENERATE = "e.g. openssl rand -hex 32";

/** The admin listener's settings, as `readAdminSettings` returns them (frozen). */
export interface AdminSettings {
  /** Where the admin listener binds; its Host header is checked against this. */
  readonly listen: Address;
  /** The bearer token the API asks for; undefined = no token (loopback only). */
  readonly token?: string;
  /** The file the token was read from, for messages. */
  readonly tokenFile?: string;
}

/**
 * Reads the `[admin]` table (call it only when the table is present), recording problems with
 * their key paths and fixes.
 *
 * @example
 * ```ts
 * import { Fields } from "./fields.ts";
 * import { Problems } from "./problems.ts";
 * const problems = new Problems();
 * const fields = new Fields({ listen: "127.0.0.1:9901" }, "admin", problems);
 * const admin = readAdminSettings(fields, problems, ".");
 * console.log(admin.listen.port, problems.empty); // 9901 true
 * ```
 */
export function readAdminSettings(
  fields: Fields,
  problems: Problems,
  baseDir: string,
): AdminSettings {
  const listen = readListen(fields, problems);
  const inline = fields.string("token");
  const tokenFile = fields.string("token_file");
  fields.finish();
  if (inline !== undefined && tokenFile !== undefined) {
    problems.add(
      fields.path,
      "token and token_file are exclusive; keep one of them (token_file keeps the secret out of the config)",
    );
    return Object.freeze({ listen: listen ?? FALLBACK_LISTEN });
  }
  const token = inline !== undefined
    ? checkToken(fields.keyPath("token"), inline, "", problems)
    : tokenFile !== undefined
    ? readTokenFile(fields.keyPath("token_file"), tokenFile, baseDir, problems)
    : undefined;
  if (listen !== undefined && inline === undefined && tokenFile === undefined) {
    if (!isLoopback(listen.host)) {
      problems.add(
        fields.keyPath("listen"),
        `"${listen.text}" is not loopback; set admin.token or admin.token_file (${GENERATE}), or listen on "127.0.0.1:${listen.port}"`,
      );
    }
  }
  return Object.freeze({
    listen: listen ?? FALLBACK_LISTEN,
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
  });
}

function readListen(fields: Fields, problems: Problems): Address | undefined {
  const text = fields.string("listen");
  if (text === undefined) {
    if (!fields.has("listen")) {
      problems.add(
        fields.keyPath("listen"),
        `is required when [admin] is present, e.g. listen = "127.0.0.1:9901"`,
      );
    }
    return undefined;
  }
  const address = parseAddress(text);
  if (typeof address === "string") {
    problems.add(fields.keyPath("listen"), address);
    return undefined;
  }
  return address;
}

/** The token if it is usable, else undefined with a problem recorded at `path`. */
function checkToken(
  path: string,
  token: string,
  source: string,
  problems: Problems,
): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH) {
    problems.add(
      path,
      `the token${source} has ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (${GENERATE})`,
    );
    return undefined;
  }
  if (!TOKEN.test(token)) {
    problems.add(
      path,
      `the token${source} may hold only A-Z a-z 0-9 - . _ ~ + / (and = at the end), as a bearer token does (${GENERATE})`,
    );
    return undefined;
  }
  return token;
}

function readTokenFile(
  path: string,
  file: string,
  baseDir: string,
  problems: Problems,
): string | undefined {
  const text = readConfigFile(problems, path, file, baseDir, "the token");
  if (text === undefined) return undefined;
  return checkToken(path, text.trim(), ` in ${JSON.stringify(file)}`, problems);
}
