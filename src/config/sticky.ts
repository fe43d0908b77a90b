/**
 * `[upstreams.NAME.sticky]`: the cookie's name, value mode and attributes.
 *
 * Every value that goes into the `Set-Cookie` header is checked here, at load: a header value is
 * a ByteString, so a character outside Latin-1 would make every `Set-Cookie` throw at the first
 * request (each new visitor a 502), and a Latin-1 one would go out as one byte where nginx sends
 * UTF-8. Non-ASCII is refused with the ASCII to write instead (the percent-encoded path, the
 * punycode domain), and {@link setCookieProblem} checks each server's rendered header once more.
 *
 * @module
 */
import { domainToASCII } from "node:url";
import type { Fields } from "./fields.ts";
import { formatDuration } from "./duration.ts";
import type { CookieValueMode } from "../cookie/value.ts";
import {
  invalidHeaderValue,
  renderSetCookie,
  type SetCookieTemplate,
  type StickyCookieAttributes,
} from "../cookie/set_cookie.ts";

/** The sticky table, read; cookie values and templates are made per server by the caller. */
export interface StickyDraft {
  readonly attributes: StickyCookieAttributes;
  readonly mode: CookieValueMode;
  readonly hmacKey?: string;
  readonly noFallback: boolean;
}

// RFC 6265 token characters for the name.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Characters that would end or split an attribute (header injection).
// deno-lint-ignore no-control-regex
const UNSAFE_ATTRIBUTE = /[\x00-\x1f\x7f;]/;
const NON_ASCII = /[\u0080-\u{10ffff}]/u;
const NON_ASCII_RUNS = /[\u0080-\u{10ffff}]+/gu;
/** RFC 6265's domain-value (a host name; a leading "." is allowed and ignored by browsers). */
const DOMAIN = /^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** Browsers keep a cookie at most 400 days (RFC 6265bis); far beyond that, the module's Expires
 * date could leave the four-digit years that cookie dates hold. */
const MAX_EXPIRES_MS = 1000 * 365 * 86_400_000;

/** Reads the sticky table; undefined when it has problems (every one recorded). */
export function readSticky(fields: Fields): StickyDraft | undefined {
  const problems = fields.problems;
  const problemsBefore = problems.list.length;
  const name = fields.string("name", "route");
  if (!COOKIE_NAME.test(name)) {
    problems.add(
      fields.keyPath("name"),
      `"${name}" is not a cookie name; use letters, digits and !#$%&'*+-.^_\`|~ (no spaces, "=", ";" or ",")`,
    );
  }
  const mode = readMode(fields);
  const hmacKey = fields.string("hmac_key");
  const domain = readDomain(fields);
  const path = readPath(fields);
  const expiresMs = readExpires(fields);
  const secure = fields.boolean("secure", false);
  const httpOnly = fields.boolean("httponly", false);
  const sameSite = fields.oneOf("samesite", ["Strict", "Lax", "None"] as const);
  const partitioned = fields.boolean("partitioned", false);
  if (sameSite === "None" && !secure) {
    problems.add(
      fields.keyPath("samesite"),
      `"None" needs secure = true (browsers drop SameSite=None cookies without Secure)`,
    );
  }
  if (partitioned && (!secure || sameSite !== "None")) {
    const missing = [
      ...(secure ? [] : ["secure = true"]),
      ...(sameSite === "None"
        ? []
        : [`samesite = "None"${sameSite === undefined ? "" : ` (not "${sameSite}")`}`]),
    ];
    problems.add(
      fields.keyPath("partitioned"),
      `needs secure = true and samesite = "None": a partitioned cookie is for cross-site iframes, ` +
        `where browsers send only SameSite=None cookies, and they drop Partitioned ones without ` +
        `Secure; set ${missing.join(" and ")}, or remove partitioned`,
    );
  }
  const noFallback = fields.boolean("no_fallback", false);
  fields.finish();
  if (problems.list.length !== problemsBefore) return undefined;
  const attributes: StickyCookieAttributes = {
    name,
    domain,
    path,
    expiresSeconds: expiresMs === undefined ? undefined : Math.floor(expiresMs / 1000),
    secure,
    httpOnly,
    sameSite,
    partitioned,
  };
  return { attributes, mode, hmacKey, noFallback };
}

/** `hash`, `hmac` (+ `hmac_key`) or `text`: how a server's address becomes its cookie value. */
function readMode(fields: Fields): CookieValueMode {
  const problems = fields.problems;
  const hash = fields.oneOf("hash", ["md5", "sha1", "index"] as const);
  const hmac = fields.oneOf("hmac", ["md5", "sha1"] as const);
  const hmacKey = fields.string("hmac_key");
  const text = fields.oneOf("text", ["raw"] as const);
  const modes = [hash && "hash", hmac && "hmac", text && "text"].filter(Boolean);
  if (modes.length > 1) {
    problems.add(
      fields.path,
      `${modes.join(" and ")} are exclusive; choose one of hash, hmac and text`,
    );
  }
  if (hmac !== undefined && !hmacKey) {
    problems.add(fields.keyPath("hmac_key"), `is required with hmac = "${hmac}"; set a secret key`);
  }
  if (hmacKey !== undefined && hmac === undefined) {
    problems.add(
      fields.keyPath("hmac_key"),
      `is only used with hmac = "md5" or "sha1"; remove it or set hmac`,
    );
  }
  return hmac !== undefined ? `hmac-${hmac}` : text !== undefined ? "raw" : hash ?? "md5";
}

function readDomain(fields: Fields): string | undefined {
  const domain = attributeText(fields, "domain");
  if (domain === undefined) return undefined;
  const path = fields.keyPath("domain");
  if (NON_ASCII.test(domain)) {
    const ascii = punycode(domain);
    fields.problems.add(
      path,
      `${
        JSON.stringify(domain)
      } has characters outside ASCII, which a Set-Cookie header cannot carry; write it in punycode${
        ascii === undefined ? "" : `: domain = ${JSON.stringify(ascii)}`
      }`,
    );
    return undefined;
  }
  if (!DOMAIN.test(domain)) {
    fields.problems.add(
      path,
      `${
        JSON.stringify(domain)
      } is not a domain name; write a host name such as "example.com" or ".example.com" (letters, digits, "-", "_" and "."; no scheme, port or path)`,
    );
    return undefined;
  }
  return domain;
}

/** The ASCII (punycode) form of a domain name, or undefined when it has none. */
function punycode(domain: string): string | undefined {
  const ascii = domainToASCII(domain);
  return DOMAIN.test(ascii) ? ascii : undefined;
}

function readPath(fields: Fields): string {
  const path = attributeText(fields, "path") ?? "/";
  const key = fields.keyPath("path");
  if (NON_ASCII.test(path)) {
    const encoded = percentEncoded(path);
    fields.problems.add(
      key,
      `${
        JSON.stringify(path)
      } has characters outside ASCII, which a Set-Cookie header cannot carry (browsers match it against the percent-encoded request path); write ${
        encoded === undefined ? "it percent-encoded" : `path = ${JSON.stringify(encoded)}`
      }`,
    );
    return "/";
  }
  if (!path.startsWith("/")) {
    fields.problems.add(key, `"${path}" must start with "/"`);
    return "/";
  }
  if (path.endsWith(" ")) {
    fields.problems.add(
      key,
      `${JSON.stringify(path)} ends with a space, which browsers strip; write path = ${
        JSON.stringify(path.trimEnd())
      }`,
    );
    return "/";
  }
  return path;
}

/** The path with its non-ASCII runs percent-encoded as UTF-8 (as encodeURI would), the rest
 * ("%" included) as written; undefined for text that is not Unicode (a lone surrogate). */
function percentEncoded(path: string): string | undefined {
  try {
    return path.replace(NON_ASCII_RUNS, (run) => encodeURIComponent(run));
  } catch {
    return undefined;
  }
}

function readExpires(fields: Fields): number | undefined {
  const expiresMs = fields.duration("expires", undefined, 1000, false);
  if (expiresMs !== undefined && expiresMs > MAX_EXPIRES_MS) {
    fields.problems.add(
      fields.keyPath("expires"),
      `${JSON.stringify(fields.raw("expires"))} is too long; the most allowed is ${
        formatDuration(MAX_EXPIRES_MS)
      } (browsers keep a cookie at most 400 days anyway)`,
    );
    return undefined;
  }
  return expiresMs;
}

/** A string attribute that may not be empty nor end or split the attribute; undefined if absent. */
function attributeText(fields: Fields, key: string): string | undefined {
  const value = fields.string(key);
  if (value === undefined) return undefined;
  if (value === "") {
    fields.problems.add(fields.keyPath(key), `is empty; give a value or remove the key`);
    return undefined;
  }
  if (UNSAFE_ATTRIBUTE.test(value)) {
    fields.problems.add(
      fields.keyPath(key),
      `${
        JSON.stringify(value)
      } contains ";" or a control character, which would end or split the Set-Cookie attribute`,
    );
    return undefined;
  }
  return value;
}

/** A fixed clock for the load-time render: the Expires date is then part of what is checked. */
const CHECK_CLOCK_MS = Date.UTC(2026, 0, 1);

/**
 * Why the `Set-Cookie` one server would send is not a valid header value, or undefined when it
 * is. The attributes were checked one by one already; this checks the whole header as the runtime
 * will see it, so that no config value can make a response fail.
 */
export function setCookieProblem(template: SetCookieTemplate): string | undefined {
  const header = renderSetCookie(template, CHECK_CLOCK_MS);
  const problem = invalidHeaderValue(header);
  return problem === undefined
    ? undefined
    : `the Set-Cookie would be ${
      JSON.stringify(header)
    }, which is not a valid header value (${problem})`;
}
