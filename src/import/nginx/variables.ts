/**
 * nginx variables the importer understands: where `sticky route $var` takes its route from.
 * `$cookie_X` → "cookie:X", `$http_x_y` → "header:X-Y", `$arg_X` → "query:X", and a variable
 * made by a `map` of one of those (or of `$request_uri`) through the usual "route after the last
 * delimiter" regex, e.g. `map $cookie_jsessionid $route { ~.+\.(?P<route>\w+)$ $route; }` →
 * "cookie:jsessionid" with route_delimiter ".".
 *
 * @module
 */
import type { SourceLocation } from "./errors.ts";
import type { Notes } from "./model.ts";
import type { Directive } from "./reader.ts";
import type { Word } from "./tokenizer.ts";

/** `map $source $name { … }` blocks by the name they define (without `$`). */
export type VariableMaps = ReadonlyMap<string, Directive>;

/** Collects the `map` blocks of the http context by the variable each defines. */
export function collectMaps(http: readonly Directive[]): Map<string, Directive> {
  const maps = new Map<string, Directive>();
  for (const directive of http) {
    if (directive.name !== "map" || directive.args.length !== 2) continue;
    const target = directive.args[1].value;
    if (target.startsWith("$")) maps.set(target.slice(1), directive);
  }
  return maps;
}

/** Where a route comes from, and the delimiter it follows ("": the whole value). */
export interface RouteSource {
  readonly from: string;
  readonly delimiter: string;
}

/** `$http_x_route` → "X-Route" (nginx's header variables are lower case with `_` for `-`). */
function headerName(suffix: string): string {
  return suffix.split("_").map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join("-");
}

/** A plain request variable as a route source, or undefined. */
function directSource(name: string): string | undefined {
  const match = /^(cookie|http|arg)_(.+)$/.exec(name);
  if (match === null) return undefined;
  const [, kind, rest] = match;
  if (kind === "cookie") return `cookie:${rest}`;
  if (kind === "arg") return `query:${rest}`;
  return `header:${headerName(rest)}`;
}

/** The route-after-a-delimiter regexes users write: `~.+\.(?P<route>\w+)$`, `~^.*-(\w+)$`, … */
const SUFFIX_REGEX =
  /^~\*?\^?(?:(\w+)=)?(?:\.[+*])?\\?([^\w\s()\\])\((?:\?P?<(\w+)>)?(?:\\w\+|\[\^\\?[^\]]\]\+|\[[^\]]+\]\+)\)\$$/;

/**
 * Where `$var` (a word of `sticky route`) takes its value from; warns and returns undefined for
 * what cannot be carried.
 */
export function routeSource(word: Word, maps: VariableMaps, notes: Notes): RouteSource | undefined {
  const name = word.value.slice(1);
  const direct = directSource(name);
  if (direct !== undefined) return { from: direct, delimiter: "" };
  const map = maps.get(name);
  if (map !== undefined) {
    const source = mappedSource(map, notes);
    if (source !== undefined) return source;
  }
  notes.warn(
    word.at,
    `sticky route: ${word.value} is not carried: the gateway takes routes from a cookie ` +
      `($cookie_X), a header ($http_X), a query parameter ($arg_X), or a map of one of them ` +
      `that keeps the part after a delimiter`,
  );
  return undefined;
}

/** A `map` whose entries all take the route after one delimiter, as a route source. */
function mappedSource(map: Directive, notes: Notes): RouteSource | undefined {
  const input = map.args[0].value;
  const inputName = input.startsWith("$") ? input.slice(1) : "";
  let found: RouteSource | undefined;
  for (const entry of map.block ?? []) {
    if (entry.name === "default" || entry.name === "hostnames" || entry.name === "volatile") {
      continue;
    }
    const match = SUFFIX_REGEX.exec(entry.name);
    const value = entry.args[0]?.value ?? "";
    const group = match?.[3];
    const keepsCapture = value === "$1" || (group !== undefined && value === `$${group}`);
    const from = match === null ? undefined : sourceOf(inputName, match[1], map.at, notes);
    if (match === null || !keepsCapture || from === undefined) return undefined;
    const source = { from, delimiter: match[2] };
    if (found !== undefined && (found.from !== from || found.delimiter !== match[2])) {
      return undefined;
    }
    found = source;
  }
  return found;
}

/** The route source a map's input names: a request variable, or `name=` in the request URI. */
function sourceOf(
  inputName: string,
  parameter: string | undefined,
  at: SourceLocation,
  notes: Notes,
): string | undefined {
  if (parameter === undefined) return directSource(inputName);
  if (inputName !== "request_uri" && inputName !== "args" && inputName !== "query_string") {
    return undefined;
  }
  notes.warn(
    at,
    `map $${inputName}: the route is carried from the query parameter "${parameter}" ` +
      `(query:${parameter}); a ";${parameter}=" path parameter is not looked at`,
  );
  return `query:${parameter}`;
}
