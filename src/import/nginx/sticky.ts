/**
 * The two `sticky` directives: nginx-sticky-module-ng's (`sticky [hash=…] name=… …`) with the
 * module's own validation and error words, and nginx's own (≥ 1.29.6: `sticky cookie NAME …`,
 * `sticky route $var …`, `sticky learn …`) with nginx's.
 *
 * @module
 */
import { parseDuration } from "../../config/duration.ts";
import { NginxParseError } from "./errors.ts";
import type { Notes, StickyModel } from "./model.ts";
import type { Directive } from "./reader.ts";
import type { Word } from "./tokenizer.ts";
import { routeSource, type VariableMaps } from "./variables.ts";

/** Which syntax a `sticky` line is: nginx's own starts with cookie, route or learn. */
export function isNativeSticky(directive: Directive): boolean {
  const first = directive.args[0]?.value;
  return first === "cookie" || first === "route" || first === "learn";
}

/** The module's error, in its own words (the misspelled "arguement" included). */
function moduleError(word: Word | Directive, words: string): NginxParseError {
  return new NginxParseError(
    word.at,
    `sticky: ${words} (nginx-sticky-module-ng refuses this line)`,
  );
}

const MODULE_VALUE_KEYS = ["name", "domain", "path", "expires", "hmac_key"] as const;
type ValueKey = typeof MODULE_VALUE_KEYS[number];

interface ModuleState {
  values: Partial<Record<ValueKey, string>>;
  secure: boolean;
  httponly: boolean;
  hash?: "md5" | "sha1" | "index";
  hmac?: "md5" | "sha1";
  text?: "raw";
  noFallback: boolean;
}

/**
 * The module's `sticky` arguments, read as v1.3.0 reads them: left to right, keys by prefix,
 * enum values by prefix (`hash=md5x` is md5: carried as "md5", with a warning), later
 * duplicates winning. Throws with the module's error for what it refuses.
 */
export function readModuleSticky(directive: Directive, notes: Notes): StickyModel {
  const state: ModuleState = { values: {}, secure: false, httponly: false, noFallback: false };
  for (const word of directive.args) readModuleArgument(word, state, notes);
  const mode = state.hash === undefined && !state.hmac && !state.text ? "md5" : state.hash;
  if (state.values.hmac_key !== undefined && mode !== undefined) {
    throw moduleError(
      directive,
      `"hmac_key=" is meaningless when "hmac" is used. Please remove it.`,
    );
  }
  if (state.values.hmac_key === undefined && state.hmac !== undefined) {
    throw moduleError(directive, `please specify "hmac_key=" when using "hmac"`);
  }
  if (state.values.hmac_key !== undefined && state.text !== undefined) {
    notes.note(directive.at, `sticky: hmac_key= is ignored with text=raw (as the module does)`);
  }
  const { name, domain, path, expires } = state.values;
  return {
    format: "module",
    name,
    domain,
    path,
    expires,
    secure: state.secure || undefined,
    httponly: state.httponly || undefined,
    hash: state.hash,
    hmac: state.hmac,
    hmacKey: state.hmac === undefined ? undefined : state.values.hmac_key,
    text: state.text,
    noFallback: state.noFallback || undefined,
    at: directive.at,
  };
}

function readModuleArgument(word: Word, state: ModuleState, notes: Notes): void {
  const arg = word.value;
  for (const key of MODULE_VALUE_KEYS) {
    if (!arg.startsWith(`${key}=`)) continue;
    const value = arg.slice(key.length + 1);
    if (value === "") throw moduleError(word, `a value must be provided to "${key}="`);
    if (key === "expires") {
      const ms = parseDuration(value, false);
      if (ms === null || ms < 1000) throw moduleError(word, `invalid value for "expires="`);
    }
    state.values[key] = value;
    return;
  }
  if (arg === "secure") state.secure = true;
  else if (arg === "httponly") state.httponly = true;
  else if (arg.startsWith("text=")) {
    if (state.hmac || state.hash !== undefined) {
      throw moduleError(word, `please choose between "hash=", "hmac=" and "text="`);
    }
    state.text = enumValue(word, "text", ["raw"] as const, "raw", notes);
  } else if (arg.startsWith("hash=")) {
    if (state.hmac || state.text) {
      throw moduleError(word, `please choose between "hash=", "hmac=" and "text="`);
    }
    state.hash = enumValue(
      word,
      "hash",
      ["index", "md5", "sha1"] as const,
      "index, md5 or sha1",
      notes,
    );
  } else if (arg.startsWith("hmac=")) {
    if (state.hash !== undefined || state.text) {
      throw moduleError(word, `please choose between "hash=", "hmac=" and "text"`);
    }
    state.hmac = enumValue(word, "hmac", ["md5", "sha1"] as const, "md5 or sha1", notes);
  } else if (arg.startsWith("no_fallback")) {
    if (arg !== "no_fallback") prefixWarning(word, "no_fallback", notes);
    state.noFallback = true;
  } else throw moduleError(word, `invalid arguement (${arg})`);
}

/** `key=value` where the module compares only the value's first letters (`strncmp`). */
function enumValue<T extends string>(
  word: Word,
  key: string,
  allowed: readonly T[],
  list: string,
  notes: Notes,
): T {
  const value = word.value.slice(key.length + 1);
  if (value === "") throw moduleError(word, `a value must be provided to "${key}="`);
  const found = allowed.find((option) => value.startsWith(option));
  if (found === undefined) throw moduleError(word, `wrong value for "${key}=": ${list}`);
  if (found !== value) prefixWarning(word, `${key}=${found}`, notes);
  return found;
}

function prefixWarning(word: Word, meant: string, notes: Notes): void {
  notes.warn(
    word.at,
    `sticky: the module reads "${word.value}" as "${meant}" (it compares only the first letters); carried as ${meant}`,
  );
}

/** nginx's own error for its `sticky` directive. */
function nginxError(at: Word | Directive, words: string): NginxParseError {
  return new NginxParseError(at.at, `sticky: ${words} (nginx refuses this line)`);
}

/**
 * nginx's own `sticky cookie|route|learn`. Returns undefined for `learn` (not carried: a warning
 * says so and the upstream is balanced without stickiness).
 */
export function readNativeSticky(
  directive: Directive,
  maps: VariableMaps,
  notes: Notes,
): StickyModel | undefined {
  const [mode, ...rest] = directive.args;
  if (directive.args.length < 2) {
    throw new NginxParseError(directive.at, `invalid number of arguments in "sticky" directive`);
  }
  if (mode.value === "cookie") return readStickyCookie(directive, rest, notes);
  if (mode.value === "route") return readStickyRoute(directive, rest, maps, notes);
  notes.warn(
    directive.at,
    `sticky learn is not carried: the gateway does not learn sessions from the backend's ` +
      `cookie; this upstream is balanced without stickiness (use the gateway's own cookie ` +
      `with [upstreams.NAME.sticky], or route stickiness on the application's cookie)`,
  );
  return undefined;
}

const SAMESITE_VALUES = ["strict", "lax", "none"];

interface CookieState {
  domain?: string;
  path?: string;
  expires?: string;
  samesite?: string;
  samesiteGiven?: boolean;
  secure?: boolean;
  httponly?: boolean;
}

function readStickyCookie(directive: Directive, args: readonly Word[], notes: Notes): StickyModel {
  const [name, ...params] = args;
  if (name.value === "") throw nginxError(name, `empty cookie name`);
  const state: CookieState = {};
  for (const word of params) readCookieParameter(word, state, notes);
  return {
    format: "nginx",
    name: name.value,
    domain: state.domain,
    path: state.path,
    expires: state.expires,
    secure: state.secure,
    httponly: state.httponly,
    samesite: state.samesite,
    at: directive.at,
  };
}

function readCookieParameter(word: Word, state: CookieState, notes: Notes): void {
  const arg = word.value;
  const duplicate = (key: string) => nginxError(word, `parameter "${key}" is duplicate`);
  if (arg.startsWith("domain=")) {
    if (state.domain !== undefined) throw duplicate("domain");
    const value = arg.slice(7);
    if (value === "") throw nginxError(word, `no value for "domain"`);
    if (value.includes("$")) {
      notes.warn(word.at, `sticky cookie: domain=${value} has variables, not carried (no Domain)`);
      state.domain = "";
    } else state.domain = value;
  } else if (arg.startsWith("path=")) {
    if (state.path !== undefined) throw duplicate("path");
    const value = arg.slice(5);
    if (value === "") throw nginxError(word, `no value for "path"`);
    state.path = value;
  } else if (arg.startsWith("expires=")) {
    if (state.expires !== undefined) throw duplicate("expires");
    state.expires = cookieExpires(word);
  } else if (arg === "httponly") {
    if (state.httponly) throw duplicate("httponly");
    state.httponly = true;
  } else if (arg === "secure") {
    if (state.secure) throw duplicate("secure");
    state.secure = true;
  } else if (arg.startsWith("samesite=")) {
    if (state.samesiteGiven) throw duplicate("samesite");
    state.samesiteGiven = true;
    state.samesite = cookieSameSite(word, arg.slice(9), notes);
  } else throw nginxError(word, `unknown parameter "${arg}"`);
  if (state.domain === "") state.domain = undefined;
}

function cookieExpires(word: Word): string {
  const value = word.value.slice(8);
  if (value === "max") return "max";
  if (parseDuration(value, false) === null) {
    throw nginxError(word, `invalid "expires" parameter value`);
  }
  return value;
}

/** nginx writes the value as given (`samesite=Lax` → `; samesite=Lax`), and so does the
 * gateway under format = "nginx". */
function cookieSameSite(word: Word, value: string, notes: Notes): string | undefined {
  if (value.includes("$")) {
    notes.warn(word.at, `sticky cookie: samesite=${value} has variables, not carried`);
    return undefined;
  }
  if (!SAMESITE_VALUES.includes(value.toLowerCase())) {
    throw nginxError(word, `invalid "samesite" parameter value`);
  }
  return value;
}

function readStickyRoute(
  directive: Directive,
  variables: readonly Word[],
  maps: VariableMaps,
  notes: Notes,
): StickyModel | undefined {
  const routeFrom: string[] = [];
  let delimiter: string | undefined;
  for (const word of variables) {
    if (!word.value.startsWith("$")) {
      throw nginxError(word, `invalid variable name "${word.value}"`);
    }
    const source = routeSource(word, maps, notes);
    if (source === undefined) continue;
    if (delimiter !== undefined && source.delimiter !== delimiter) {
      notes.warn(
        word.at,
        `sticky route: ${word.value} ${
          source.delimiter === ""
            ? "is compared whole"
            : `takes the route after "${source.delimiter}"`
        }, but the gateway has one route_delimiter per upstream (${
          JSON.stringify(delimiter)
        } from an earlier variable); not carried`,
      );
      continue;
    }
    delimiter = source.delimiter;
    routeFrom.push(source.from);
  }
  if (routeFrom.length === 0) {
    notes.warn(
      directive.at,
      `sticky route: none of its variables can be carried; this upstream is balanced without stickiness`,
    );
    return undefined;
  }
  return {
    format: "nginx",
    routeFrom,
    routeDelimiter: delimiter ?? "",
    ownCookie: false,
    at: directive.at,
  };
}
