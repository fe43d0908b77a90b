/**
 * The keys of `[upstreams.NAME.sticky]` that issue 12 adds: `mode = "token"` with its keyring
 * (`keys_file` or `keys_env`) and lifetimes (`max_idle`, `max_life`, `clock_skew`), the module's
 * `hmac_key_file` / `hmac_key_env`, and the parts of the snapshot made from them.
 *
 * Secrets are read here, at config load (so a reload is a key rotation), and never appear in a
 * message: a keyring problem names the key path, the file or variable and the line.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import type { Fields } from "./fields.ts";
import type { Server, StickyHeader, StickyToken } from "./types.ts";
import { type Keyring, parseKeyring } from "../sticky/keyring.ts";
import { TokenCheck, type TokenLifetimes } from "../sticky/token_check.ts";

/** `mode = "token"`, read: everything but the check, which needs the servers. */
export interface TokenDraft {
  readonly keyring: Keyring;
  readonly keyIds: readonly string[];
  readonly source: string;
  readonly lifetimes: TokenLifetimes;
}

/** Keys that describe the module's values: meaningless for tokens. */
const MODULE_VALUE_KEYS = [
  "hash",
  "hmac",
  "hmac_key",
  "hmac_key_file",
  "hmac_key_env",
  "text",
  "format",
  "accept_legacy",
];
/** Keys only tokens use. */
const TOKEN_KEYS = ["keys_file", "keys_env", "max_idle", "max_life", "clock_skew"];
/** An environment variable's name. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Header names: RFC 9110 tokens. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers a client cannot choose freely or that the gateway itself rewrites. */
const RESERVED_HEADERS = new Set([
  "host",
  "cookie",
  "connection",
  "content-length",
  "transfer-encoding",
  "upgrade",
]);

/**
 * `mode`: `"cookie"` (the default: the module's values) or `"token"`; undefined after a problem.
 */
export function readStickyMode(fields: Fields): "cookie" | "token" {
  return fields.oneOf("mode", ["cookie", "token"] as const, "cookie")!;
}

/** Under `mode = "token"`: the keys of the module's value modes are problems. */
export function rejectModuleValueKeys(fields: Fields): void {
  for (const key of MODULE_VALUE_KEYS) {
    if (fields.has(key)) {
      fields.problems.add(
        fields.keyPath(key),
        `does not apply under mode = "token" (a token is signed with the keys of keys_file or keys_env); remove it, or remove mode = "token"`,
      );
    }
  }
}

/** Outside `mode = "token"`: its keys are problems. */
export function rejectTokenKeys(fields: Fields): void {
  for (const key of TOKEN_KEYS) {
    if (fields.has(key)) {
      fields.problems.add(
        fields.keyPath(key),
        `is used only with mode = "token" (signed tokens); add mode = "token" or remove it`,
      );
    }
  }
}

/**
 * The keyring and lifetimes of `mode = "token"`, or undefined after a problem (recorded).
 * `baseDir`: the config file's directory (`keys_file` is relative to it).
 */
export function readTokenSettings(fields: Fields, baseDir: string): TokenDraft | undefined {
  const maxIdleMs = fields.duration("max_idle", 0, 1000);
  const maxLifeMs = fields.duration("max_life", 0, 1000);
  const clockSkewMs = fields.duration("clock_skew", 30_000, 0);
  const secret = readSecretSource(fields, "keys_file", "keys_env", baseDir, true);
  if (secret === undefined) return undefined;
  const keyring = parseKeyring(secret.text);
  if (typeof keyring === "string") {
    fields.problems.add(fields.keyPath(secret.key), `${secret.source}: ${keyring}`);
    return undefined;
  }
  if (maxIdleMs > 0 && maxLifeMs > 0 && maxLifeMs < maxIdleMs) {
    fields.problems.add(
      fields.keyPath("max_life"),
      `is shorter than max_idle, which then never applies; make max_life longer or remove max_idle`,
    );
  }
  return {
    keyring,
    keyIds: [...keyring.byId.keys()],
    source: secret.source,
    lifetimes: {
      maxIdleS: Math.floor(maxIdleMs / 1000),
      maxLifeS: Math.floor(maxLifeMs / 1000),
      clockSkewS: Math.floor(clockSkewMs / 1000),
    },
  };
}

/**
 * The module's `hmac_key`, inline or from `hmac_key_file` / `hmac_key_env` (at most one of the
 * three); undefined when none is given or after a problem.
 */
export function readHmacKey(fields: Fields, baseDir: string): string | undefined {
  const inline = fields.string("hmac_key");
  const given = HMAC_KEY_KEYS.filter((k) => fields.has(k));
  if (given.length > 1) {
    fields.problems.add(
      fields.keyPath(given[1]),
      `${given.join(" and ")} are exclusive; give the key one way`,
    );
    return undefined;
  }
  if (inline !== undefined) return inline;
  const secret = readSecretSource(fields, "hmac_key_file", "hmac_key_env", baseDir, false);
  if (secret === undefined) return undefined;
  // A file's or variable's final line break is not part of the key.
  const key = secret.text.replace(/\r?\n$/, "");
  if (key === "" || /[\r\n]/.test(key)) {
    fields.problems.add(
      fields.keyPath(secret.key),
      `${secret.source}: ${
        key === "" ? "is empty" : "has more than one line"
      }; write the key alone`,
    );
    return undefined;
  }
  return key;
}

/** Whether any way of giving the module's hmac key is used. */
export function hasHmacKey(fields: Fields): boolean {
  // The file and variable are looked up without marking them read: they are read (after the
  // older keys, for the "allowed here" order) by readHmacKey.
  return fields.has("hmac_key") || HMAC_KEY_KEYS.some((key) => fields.table[key] !== undefined);
}

const HMAC_KEY_KEYS = ["hmac_key", "hmac_key_file", "hmac_key_env"];

interface SecretText {
  readonly text: string;
  /** The key it was read by. */
  readonly key: string;
  /** `file "…"` or `environment variable NAME`, for messages. */
  readonly source: string;
}

/** The text of `fileKey` (a file) or `envKey` (an environment variable); exactly one when
 * `required`, at most one otherwise. Problems name the file or variable, never its content. */
function readSecretSource(
  fields: Fields,
  fileKey: string,
  envKey: string,
  baseDir: string,
  required: boolean,
): SecretText | undefined {
  const file = fields.string(fileKey);
  const env = fields.string(envKey);
  if (file !== undefined && env !== undefined) {
    fields.problems.add(
      fields.keyPath(envKey),
      `${fileKey} and ${envKey} are exclusive; read the keys from one of them`,
    );
    return undefined;
  }
  if (file !== undefined) {
    const path = resolve(baseDir, file);
    const source = `file ${JSON.stringify(file)}`;
    try {
      return { text: readFileSync(path, "utf8"), key: fileKey, source };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      fields.problems.add(
        fields.keyPath(fileKey),
        `${source} ${
          code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? "error"})`
        } (relative paths are relative to the config file)`,
      );
      return undefined;
    }
  }
  if (env !== undefined) {
    if (!ENV_NAME.test(env)) {
      fields.problems.add(
        fields.keyPath(envKey),
        `${JSON.stringify(env)} is not an environment variable name (letters, digits, _)`,
      );
      return undefined;
    }
    const text = process.env[env];
    if (text === undefined || text === "") {
      fields.problems.add(
        fields.keyPath(envKey),
        `environment variable ${env} is not set (or empty)`,
      );
      return undefined;
    }
    return { text, key: envKey, source: `environment variable ${env}` };
  }
  if (required) {
    fields.problems.add(
      fields.keyPath(fileKey),
      `mode = "token" needs its keys: set keys_file = "sticky.keys" (lines id:secret, secrets of 32 bytes or more, e.g. from openssl rand -base64 48) or keys_env = "VAR"`,
    );
  }
  return undefined;
}

/** `header = "X-Session-Id"`, checked; undefined when absent or wrong. */
export function readStickyHeader(fields: Fields): string | undefined {
  const header = fields.string("header");
  if (header === undefined) return undefined;
  if (!HEADER_NAME.test(header) || RESERVED_HEADERS.has(header.toLowerCase())) {
    fields.problems.add(
      fields.keyPath("header"),
      `${
        JSON.stringify(header)
      } cannot carry a session id; name a request header such as "X-Session-Id" (letters, digits and !#$%&'*+-.^_\`|~; not Host, Cookie or a hop-by-hop header)`,
    );
    return undefined;
  }
  return header;
}

/** The parts of the snapshot's Sticky that issue 12 adds, for an upstream's servers. */
export function stickyExtras(
  upstream: string,
  draft: {
    readonly token?: TokenDraft;
    readonly header?: string;
    readonly indirect: boolean;
    readonly attributes?: { readonly name: string };
  },
  servers: readonly Server[],
): { token?: StickyToken; header?: StickyHeader; hideCookie?: string } {
  return {
    ...(draft.token === undefined ? {} : { token: stickyToken(upstream, draft.token, servers) }),
    ...(draft.header === undefined ? {} : { header: stickyHeader(draft.header, servers) }),
    ...(draft.indirect && draft.attributes !== undefined
      ? { hideCookie: draft.attributes.name.toLowerCase() }
      : {}),
  };
}

/** The snapshot's token part for an upstream's servers: a fresh check (a fresh cache). */
export function stickyToken(
  name: string,
  draft: TokenDraft,
  servers: readonly Server[],
): StickyToken {
  return Object.freeze({
    upstream: name,
    keyring: draft.keyring,
    keyIds: draft.keyIds,
    source: draft.source,
    lifetimes: draft.lifetimes,
    check: new TokenCheck(name, servers, draft.keyring, draft.lifetimes),
  });
}

/** The snapshot's header part: the header's names and the servers rendezvous chooses among. */
export function stickyHeader(header: string, servers: readonly Server[]): StickyHeader {
  return Object.freeze({
    name: header,
    lowerName: header.toLowerCase(),
    primaries: servers.filter((s) => !s.backup),
    backups: servers.filter((s) => s.backup),
  });
}
