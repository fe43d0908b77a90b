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
import { describe, type Fields } from "./fields.ts";
import { formatDuration } from "./duration.ts";
import { cookieValue, type CookieValueMode, nginxCookieValue } from "../cookie/value.ts";
import { legacyValues } from "../cookie/legacy.ts";
import { type Address, type HostsTable, resolveAddress, type ResolvedAddress } from "./address.ts";
import type { Problems } from "./problems.ts";
import {
  type CookieFormat,
  invalidHeaderValue,
  NGINX_MAX_EXPIRES,
  renderSetCookie,
  type SetCookieTemplate,
  type StickyCookieAttributes,
} from "../cookie/set_cookie.ts";
import type { RouteSource } from "./types.ts";
import {
  hasHmacKey,
  readHmacKey,
  readStickyHeader,
  readStickyMode,
  readTokenSettings,
  rejectModuleValueKeys,
  rejectTokenKeys,
  type TokenDraft,
} from "./sticky_token.ts";

/** The sticky table, read; cookie values and templates are made per server by the caller. */
export interface StickyDraft {
  /** Absent with `cookie = false` (no cookie of its own). */
  readonly attributes?: StickyCookieAttributes;
  readonly mode: CookieValueMode;
  readonly hmacKey?: string;
  readonly noFallback: boolean;
  readonly format: CookieFormat;
  readonly acceptLegacy: boolean;
  /** `route_from`; absent = no route stickiness. */
  readonly routeFrom?: readonly RouteSource[];
  readonly routeDelimiter: string;
  /** `mode = "token"`: the keyring and lifetimes; absent = the module's values. */
  readonly token?: TokenDraft;
  /** `header = "…"`: header stickiness; absent = none. */
  readonly header?: string;
  /** `indirect = true`: the cookie is removed from requests sent upstream. */
  readonly indirect: boolean;
}

// RFC 6265 token characters for the name (and RFC 9110's token, the same set, for header names).
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
/** The keys that describe the upstream's own cookie: meaningless with `cookie = false`. */
const OWN_COOKIE_KEYS = [
  "name",
  "format",
  "accept_legacy",
  "hash",
  "hmac",
  "hmac_key",
  "text",
  "domain",
  "path",
  "expires",
  "secure",
  "httponly",
  "samesite",
  "partitioned",
  "mode",
  "keys_file",
  "keys_env",
  "max_idle",
  "max_life",
  "clock_skew",
  "indirect",
  "hmac_key_file",
  "hmac_key_env",
];
/** The module's value modes and its extra attribute: nginx's own cookie has none of them. */
const MODULE_ONLY_KEYS = [
  "hash",
  "hmac",
  "hmac_key",
  "hmac_key_file",
  "hmac_key_env",
  "text",
  "partitioned",
];

/**
 * Reads the sticky table; undefined when it has problems (every one recorded). Keys are read in
 * the README's order, so problems (and the "allowed here" list) come in that order too.
 */
export function readSticky(fields: Fields, baseDir = "."): StickyDraft | undefined {
  if (fields.table["cookie"] === false) return readRouteOnly(fields);
  const problems = fields.problems;
  const problemsBefore = problems.list.length;
  // Looked at first: they decide how the other keys read (checked as keys below). Keys are read
  // in the README's order, the older ones first, so "allowed here" lists them in that order.
  const tokenMode = fields.table["mode"] === "token";
  const nginx = !tokenMode && fields.table["format"] === "nginx";
  const name = readName(fields);
  if (nginx) rejectModuleKeys(fields);
  const plainModule = !nginx && !tokenMode;
  const mode = plainModule ? readMode(fields) : "md5";
  const moduleAttributes = nginx ? undefined : readModuleAttributes(fields, name);
  const attributes = moduleAttributes === undefined
    ? readNginxAttributes(fields, name)
    : tokenMode
    ? { ...moduleAttributes, valuePerResponse: true }
    : moduleAttributes;
  const noFallback = fields.boolean("no_fallback", false);
  const format = fields.oneOf("format", ["module", "nginx"] as const, "module")!;
  const acceptLegacy = fields.boolean("accept_legacy", false);
  const { routeFrom, routeDelimiter } = readRouting(fields);
  fields.boolean("cookie", true);
  readStickyMode(fields);
  if (tokenMode) rejectModuleValueKeys(fields);
  else rejectTokenKeys(fields);
  const token = tokenMode ? readTokenSettings(fields, baseDir) : undefined;
  const header = readStickyHeader(fields);
  const indirect = fields.boolean("indirect", false);
  const hmacKey = plainModule ? readHmacKey(fields, baseDir) : undefined;
  fields.finish();
  if (problems.list.length !== problemsBefore) return undefined;
  return {
    attributes,
    mode,
    hmacKey,
    noFallback,
    format,
    acceptLegacy,
    routeFrom,
    routeDelimiter,
    indirect,
    ...(token === undefined ? {} : { token }),
    ...(header === undefined ? {} : { header }),
  };
}

/** `cookie = false`: route stickiness only (nginx `sticky route`), no cookie of its own. */
function readRouteOnly(fields: Fields): StickyDraft | undefined {
  const problems = fields.problems;
  const problemsBefore = problems.list.length;
  const { routeFrom, routeDelimiter } = readRouting(fields);
  const noFallback = fields.boolean("no_fallback", false);
  const header = readStickyHeader(fields);
  fields.boolean("cookie", true);
  if (
    routeFrom === undefined && fields.table["route_from"] === undefined &&
    fields.table["header"] === undefined
  ) {
    problems.add(
      fields.keyPath("cookie"),
      `false leaves the upstream without stickiness; add route_from (e.g. route_from = ["cookie:JSESSIONID"]) or header = "X-Session-Id", or remove cookie = false`,
    );
  }
  for (const key of OWN_COOKIE_KEYS) {
    if (fields.has(key)) {
      problems.add(
        fields.keyPath(key),
        `does not apply with cookie = false (the upstream sets and reads no cookie of its own); remove it`,
      );
    }
  }
  fields.finish();
  if (problems.list.length !== problemsBefore) return undefined;
  return {
    mode: "md5",
    noFallback,
    format: "module",
    acceptLegacy: false,
    routeFrom,
    routeDelimiter,
    indirect: false,
    ...(header === undefined ? {} : { header }),
  };
}

/** The cookie's attributes as nginx-sticky-module-ng (and our additions) take them. */
function readModuleAttributes(fields: Fields, name: string): StickyCookieAttributes {
  const problems = fields.problems;
  const domain = readDomain(fields);
  const path = readPath(fields) ?? "/";
  const expiresMs = readExpires(fields, 1000);
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
  return {
    name,
    domain,
    path,
    expiresSeconds: expiresMs === undefined ? undefined : Math.floor(expiresMs / 1000),
    secure,
    httpOnly,
    sameSite,
    partitioned,
  };
}

/**
 * The attributes of nginx's own `sticky cookie NAME [expires=] [domain=] [path=] [samesite=]
 * [secure] [httponly]`: no path unless given, `expires = "max"` and `"0"` as nginx takes them,
 * `samesite` in any case and sent as written (nginx accepts `none` without `secure` too).
 */
function readNginxAttributes(fields: Fields, name: string): StickyCookieAttributes {
  const domain = readDomain(fields);
  const path = readPath(fields);
  const expiresSeconds = fields.raw("expires") === "max"
    ? NGINX_MAX_EXPIRES
    : secondsOf(readExpires(fields, 0));
  const secure = fields.boolean("secure", false);
  const httpOnly = fields.boolean("httponly", false);
  const sameSite = fields.string("samesite");
  if (sameSite !== undefined && !/^(strict|lax|none)$/i.test(sameSite)) {
    fields.problems.add(
      fields.keyPath("samesite"),
      `${JSON.stringify(sameSite)} is not one of strict, lax, none (any case; sent as written)`,
    );
  }
  return {
    name,
    domain,
    path,
    expiresSeconds,
    secure,
    httpOnly,
    sameSite,
    partitioned: false,
    format: "nginx",
  };
}

/** The module's value modes and `partitioned`: problems under `format = "nginx"`. */
function rejectModuleKeys(fields: Fields): void {
  for (const key of MODULE_ONLY_KEYS) {
    if (fields.has(key)) {
      fields.problems.add(
        fields.keyPath(key),
        `does not apply under format = "nginx" (nginx's own cookie value is the MD5 of the server's resolved address, or its route); remove it, or use format = "module"`,
      );
    }
  }
}

function secondsOf(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.floor(ms / 1000);
}

function readName(fields: Fields): string {
  const name = fields.string("name", "route");
  if (!COOKIE_NAME.test(name)) {
    fields.problems.add(
      fields.keyPath("name"),
      `"${name}" is not a cookie name; use letters, digits and !#$%&'*+-.^_\`|~ (no spaces, "=", ";" or ",")`,
    );
  }
  return name;
}

const ROUTE_SOURCE = /^(cookie|query|header):(.*)$/;
/** A query parameter's name as `$arg_NAME` can match it: no separator, space or control. */
const QUERY_NAME = /^[A-Za-z0-9._~-]+$/;
/** `route_delimiter`: a few visible ASCII characters. */
const DELIMITER = /^[\x21-\x7e]{0,8}$/;

/** `route_from` and `route_delimiter`. */
function readRouting(
  fields: Fields,
): { routeFrom?: readonly RouteSource[]; routeDelimiter: string } {
  const problems = fields.problems;
  const raw = fields.raw("route_from");
  const routeDelimiter = fields.string("route_delimiter", ".");
  if (!DELIMITER.test(routeDelimiter)) {
    problems.add(
      fields.keyPath("route_delimiter"),
      `${
        JSON.stringify(routeDelimiter)
      } is not a delimiter; use up to 8 visible ASCII characters such as "." (Tomcat's jvmRoute), or "" for the whole value`,
    );
  }
  if (raw === undefined) {
    if (fields.table["route_delimiter"] !== undefined) {
      problems.add(
        fields.keyPath("route_delimiter"),
        `is used only with route_from; add route_from or remove it`,
      );
    }
    return { routeDelimiter };
  }
  const path = fields.keyPath("route_from");
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.add(
      path,
      `must be a non-empty array such as ["cookie:JSESSIONID", "header:X-Route", "query:route"]`,
    );
    return { routeDelimiter };
  }
  const sources: RouteSource[] = [];
  const seen = new Set<string>();
  raw.forEach((entry, i) => {
    const source = routeSource(entry);
    if (typeof source === "string") {
      problems.add(`${path}[${i}]`, source);
      return;
    }
    const key = `${source.kind}:${source.lowerName}`;
    if (seen.has(key)) {
      problems.add(`${path}[${i}]`, `${JSON.stringify(entry)} is listed twice; remove one`);
      return;
    }
    seen.add(key);
    sources.push(source);
  });
  return { routeFrom: sources, routeDelimiter };
}

/** One `route_from` entry, or why it is not one. */
function routeSource(entry: unknown): RouteSource | string {
  const expected =
    `write "cookie:NAME", "query:NAME" or "header:NAME" (nginx's $cookie_NAME, $arg_NAME, $http_NAME)`;
  if (typeof entry !== "string") return `${describe(entry)} is not a string; ${expected}`;
  const match = ROUTE_SOURCE.exec(entry);
  if (match === null) return `${JSON.stringify(entry)} is not a route source; ${expected}`;
  const kind = match[1] as RouteSource["kind"];
  const name = match[2];
  const valid = kind === "query" ? QUERY_NAME.test(name) : COOKIE_NAME.test(name);
  if (!valid) {
    return `${JSON.stringify(name)} in ${JSON.stringify(entry)} is not a ${
      kind === "header" ? "header" : kind === "cookie" ? "cookie" : "query parameter"
    } name; use letters, digits and ${kind === "query" ? "-._~" : "!#$%&'*+-.^_`|~"} (no spaces${
      kind === "query" ? ', "&", "=" or "#"' : ', "=", ";" or ","'
    })`;
  }
  return { kind, name, lowerName: name.toLowerCase() };
}

/** `hash`, `hmac` (+ `hmac_key`) or `text`: how a server's address becomes its cookie value. */
function readMode(fields: Fields): CookieValueMode {
  const problems = fields.problems;
  const hash = fields.oneOf("hash", ["md5", "sha1", "index"] as const);
  const hmac = fields.oneOf("hmac", ["md5", "sha1"] as const);
  const hmacKey = hasHmacKey(fields) && fields.table["hmac_key"] !== "";
  const text = fields.oneOf("text", ["raw"] as const);
  const modes = [hash && "hash", hmac && "hmac", text && "text"].filter(Boolean);
  if (modes.length > 1) {
    problems.add(
      fields.path,
      `${modes.join(" and ")} are exclusive; choose one of hash, hmac and text`,
    );
  }
  if (hmac !== undefined && !hmacKey) {
    problems.add(
      fields.keyPath("hmac_key"),
      `is required with hmac = "${hmac}"; set a secret key`,
    );
  }
  if (hmacKey && hmac === undefined) {
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

/** `path`, or undefined when absent or wrong (the caller picks the default). */
function readPath(fields: Fields): string | undefined {
  const path = attributeText(fields, "path");
  if (path === undefined) return undefined;
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

function readExpires(fields: Fields, minMs: number): number | undefined {
  if (fields.raw("expires") === "max") {
    fields.problems.add(
      fields.keyPath("expires"),
      `"max" is nginx's own sticky cookie's (format = "nginx"); the module's cookie needs a duration such as "1y"`,
    );
    return undefined;
  }
  const expiresMs = fields.duration("expires", undefined, minMs, false);
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

/** A token as long as the longest a key id allows, for the load-time render (token mode). */
const SAMPLE_TOKEN = `1.${"k".repeat(16)}.${"A".repeat(11)}.tqm3a8.tqm3b0.${"A".repeat(22)}`;
/** A fixed clock for the load-time render: the Expires date is then part of what is checked. */
const CHECK_CLOCK_MS = Date.UTC(2026, 0, 1);

/** Set-Cookie headers checked so far: "" when valid, else the problem (bounded). */
const CHECKED = new Map<string, string>();

/**
 * Why the `Set-Cookie` one server would send is not a valid header value, or undefined when it
 * is. The attributes were checked one by one already; this checks the whole header as the runtime
 * will see it, so that no config value can make a response fail.
 */
export function setCookieProblem(template: SetCookieTemplate): string | undefined {
  const header = renderSetCookie(template, CHECK_CLOCK_MS, SAMPLE_TOKEN);
  // Remembered by the header's text: a reload checks no header it checked before (the check
  // asks the runtime's Headers, microseconds a server).
  let problem = CHECKED.get(header);
  if (problem === undefined) {
    problem = invalidHeaderValue(header) ?? "";
    if (CHECKED.size >= 65_536) CHECKED.clear();
    CHECKED.set(header, problem);
  }
  if (problem === "") return undefined;
  return `the Set-Cookie would be ${
    JSON.stringify(header)
  }, which is not a valid header value (${problem})`;
}

/** What the sticky values of one server are made from (a server entry, read). */
export interface StickyServerInput {
  readonly address: Address;
  readonly route?: string;
  readonly backup: boolean;
  /** `upstreams.NAME.servers[i]`, for messages. */
  readonly keyPath: string;
}

/** Every server's values: `values[i]` is what its Set-Cookie carries. */
export interface StickyValues {
  readonly values: readonly string[];
  /** Further values naming server i (nginx: its other resolved addresses). */
  readonly aliases: readonly (readonly string[])[];
  /** 1.2.x module values naming server i (`accept_legacy`). */
  readonly legacy: readonly (readonly string[])[];
}

/**
 * The cookie values of an upstream's servers, in config order. `index` mode numbers primaries
 * first, then backups (the module gives backups the primaries' digests by mistake; each server
 * here has its own value). Under `format = "nginx"` and with `accept_legacy`, a server's host is
 * resolved (see {@link resolveAddress}); a host that cannot be is a problem naming the server.
 */
export function stickyValues(
  draft: StickyDraft,
  servers: readonly StickyServerInput[],
  problems: Problems,
  hosts: () => HostsTable,
): StickyValues {
  checkRoutes(draft, servers, problems);
  const primaryCount = servers.filter((s) => !s.backup).length;
  let primarySeen = 0;
  let backupSeen = 0;
  const values: string[] = [];
  const aliases: string[][] = [];
  const legacy: string[][] = [];
  for (const server of servers) {
    const valueIndex = server.backup ? primaryCount + backupSeen++ : primarySeen++;
    const nginxDigest = draft.format === "nginx" && server.route === undefined;
    const resolved = nginxDigest || draft.acceptLegacy
      ? resolvedOrProblem(draft, server, problems, hosts)
      : [];
    const printable = resolved.map((address) => nginxCookieValue(address.printable));
    // A token is made per response: no fixed value.
    if (draft.attributes === undefined || draft.token !== undefined) values.push("");
    else if (draft.format === "module") {
      values.push(cookieValue(draft.mode, server.address.text, valueIndex, draft.hmacKey));
    } else values.push(server.route ?? printable[0] ?? "");
    aliases.push(nginxDigest ? printable.slice(1) : []);
    legacy.push(draft.acceptLegacy ? resolved.flatMap((a) => legacyValues(a, draft.hmacKey)) : []);
  }
  return { values, aliases, legacy };
}

function resolvedOrProblem(
  draft: StickyDraft,
  server: StickyServerInput,
  problems: Problems,
  hosts: () => HostsTable,
): ResolvedAddress[] {
  const resolved = resolveAddress(server.address, hosts());
  if (typeof resolved !== "string") return resolved;
  const why = draft.format === "nginx"
    ? `format = "nginx" makes the cookie value from the address nginx resolved at start`
    : `accept_legacy makes the 1.2.x values from the address nginx resolved at start`;
  problems.add(
    `${server.keyPath}.address`,
    `${resolved}; ${why}: write that address (e.g. "10.0.0.5:${server.address.port}"; nginx connects to it too) and keep the name as id = ${
      JSON.stringify(server.address.host)
    }, or add the name to /etc/hosts`,
  );
  return [];
}

/** Where `route` may be used, and that `route_from` can find each one. */
function checkRoutes(
  draft: StickyDraft,
  servers: readonly StickyServerInput[],
  problems: Problems,
): void {
  const delimiter = draft.routeDelimiter;
  for (const server of servers) {
    if (server.route === undefined) continue;
    if (draft.routeFrom === undefined && draft.format !== "nginx") {
      problems.add(
        `${server.keyPath}.route`,
        `is used only with route_from or format = "nginx" in the sticky table; add one or remove route`,
      );
    } else if (
      draft.routeFrom !== undefined && delimiter !== "" && server.route.includes(delimiter)
    ) {
      problems.add(
        `${server.keyPath}.route`,
        `${JSON.stringify(server.route)} contains route_delimiter ${
          JSON.stringify(delimiter)
        }, so no value can name it (the route is what follows the last one); rename it or change route_delimiter`,
      );
    }
  }
  if (draft.routeFrom !== undefined && servers.every((s) => s.route === undefined)) {
    problems.add(
      servers[0]?.keyPath.replace(/\.servers\[\d+\]$/, ".sticky.route_from") ?? "route_from",
      `no server has a route; give servers one, e.g. { address = "10.0.0.1:8080", route = "node1" }`,
    );
  }
}
