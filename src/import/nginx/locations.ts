/**
 * `location` blocks → routes: prefix locations that `proxy_pass` to an upstream (or to an
 * address, which nginx makes an upstream of). Regex and named locations, and locations nginx
 * answers itself, are not carried (warnings).
 *
 * @module
 */
import { parseAddress } from "../../config/address.ts";
import { notCarried } from "./directives.ts";
import { NginxParseError } from "./errors.ts";
import type { Notes, RouteModel, UpstreamModel } from "./model.ts";
import type { Directive } from "./reader.ts";
import { Settings } from "./settings.ts";
import type { Word } from "./tokenizer.ts";

/** What the locations of one http context share. */
export interface HttpScope {
  readonly upstreams: Map<string, UpstreamModel>;
  /** The http context's `proxy_set_header` lines (inherited where a level has none). */
  readonly headers: readonly Directive[];
  readonly settings: Settings;
  readonly notes: Notes;
}

/** One `server` block being carried: the hosts its routes are for, and its routes so far. */
export interface ServerScope {
  /** undefined: any host (the port's default server). */
  readonly hosts: readonly (string | undefined)[];
  readonly routes: RouteModel[];
  /** `kind path` of the locations seen, for nginx's "duplicate location". */
  readonly seen: Set<string>;
  /** The server's `proxy_set_header` lines, or the http context's when it has none. */
  readonly headers: readonly Directive[];
}

type LocationKind = "prefix" | "exact" | "regex" | "named";

function locationPath(directive: Directive): { kind: LocationKind; path: string } {
  const args = directive.args.map((a) => a.value);
  if (args.length === 2) {
    const [modifier, path] = args;
    if (modifier === "=") return { kind: "exact", path };
    if (modifier === "^~") return { kind: "prefix", path };
    if (modifier === "~" || modifier === "~*") return { kind: "regex", path };
    throw new NginxParseError(directive.at, `invalid location modifier "${modifier}"`);
  }
  if (args.length !== 1) {
    throw new NginxParseError(directive.at, `invalid number of arguments in "location" directive`);
  }
  const [text] = args;
  if (text.startsWith("=")) return { kind: "exact", path: text.slice(1) };
  if (text.startsWith("^~")) return { kind: "prefix", path: text.slice(2) };
  if (text.startsWith("~")) return { kind: "regex", path: text };
  if (text.startsWith("@")) return { kind: "named", path: text };
  return { kind: "prefix", path: text };
}

/** Reads one `location` (and those nested in it) into routes of `server`. */
export function readLocation(
  directive: Directive,
  server: ServerScope,
  http: HttpScope,
  inheritedNoFallback: boolean,
  inheritedHeaders: readonly Directive[] = server.headers,
): void {
  const { kind, path } = locationPath(directive);
  const notes = http.notes;
  if (kind === "regex" || kind === "named") {
    notes.warn(
      directive.at,
      `location ${
        directive.args.map((a) => a.value).join(" ")
      } is not carried: the gateway routes by path prefix only`,
    );
    return;
  }
  const key = `${kind} ${path}`;
  if (server.seen.has(key)) throw new NginxParseError(directive.at, `duplicate location "${path}"`);
  server.seen.add(key);
  let proxyPass: Word | undefined;
  let noFallback = inheritedNoFallback;
  let ownNoFallback = false;
  const nested: Directive[] = [];
  const ownHeaders = (directive.block ?? []).filter((d) => d.name === "proxy_set_header");
  const headers = ownHeaders.length > 0 ? ownHeaders : inheritedHeaders;
  for (const child of directive.block ?? []) {
    if (child.name === "proxy_pass") proxyPass = child.args[0];
    else if (child.name === "sticky_no_fallback") {
      checkNoFallback(child, ownNoFallback);
      ownNoFallback = true;
      noFallback = true;
    } else if (child.name === "location") nested.push(child);
    else if (Settings.handles(child)) http.settings.add(child, notes);
    else notCarried(child, notes, ` (in location ${path})`);
  }
  const upstream = proxyPass && proxyTarget(proxyPass, path, http);
  if (proxyPass === undefined) {
    notes.warn(
      directive.at,
      `location ${path} has no proxy_pass (nginx answers it itself): not carried; its requests follow the gateway's other routes`,
    );
  } else if (upstream !== undefined) {
    addRoutes(directive, kind, path, upstream, noFallback, server, notes);
    if (!headers.some((h) => h.args[0]?.value.toLowerCase() === "host")) {
      notes.warn(
        proxyPass.at,
        `location ${path}: nginx sends the upstream "Host: ${
          hostOf(proxyPass.value)
        }" ($proxy_host, as no proxy_set_header Host applies here); the gateway passes the client's Host`,
      );
    }
  }
  for (const child of nested) readLocation(child, server, http, noFallback, headers);
}

/** `sticky_no_fallback` takes no arguments and may appear once per level (the module's rules). */
export function checkNoFallback(directive: Directive, already: boolean): void {
  if (directive.args.length > 0) {
    throw new NginxParseError(
      directive.at,
      `invalid number of arguments in "sticky_no_fallback" directive`,
    );
  }
  if (already) {
    throw new NginxParseError(directive.at, `"sticky_no_fallback" directive is duplicate`);
  }
}

function addRoutes(
  directive: Directive,
  kind: LocationKind,
  path: string,
  upstream: string,
  noFallback: boolean,
  server: ServerScope,
  notes: Notes,
): void {
  if (!path.startsWith("/")) {
    notes.warn(directive.at, `location ${path} is not carried: a route's path starts with "/"`);
    return;
  }
  if (kind === "exact") {
    if (server.seen.has(`prefix ${path}`)) {
      notes.warn(
        directive.at,
        `location = ${path} is not carried: the prefix location ${path} of the same server takes its requests here (the gateway has prefix routes only)`,
      );
      return;
    }
    notes.warn(
      directive.at,
      `location = ${path} is carried as the prefix route ${path} (the gateway has no exact-match routes): longer paths under it go there too`,
    );
  }
  if (kind === "prefix" && server.seen.has(`exact ${path}`)) {
    const exact = server.routes.findIndex((r) => r.path === path);
    if (exact >= 0) {
      const at = server.routes[exact].at;
      const carried = notes.list.findIndex((w) =>
        w.file === at.file && w.line === at.line &&
        w.message.startsWith(`location = ${path} is carried`)
      );
      if (carried >= 0) notes.list.splice(carried, 1);
      notes.warn(
        server.routes[exact].at,
        `location = ${path} is not carried: the prefix location ${path} of the same server (line ${directive.at.line}) takes its requests here (the gateway has prefix routes only)`,
      );
      server.routes.splice(exact, server.hosts.length);
    }
  }
  for (const host of server.hosts) {
    server.routes.push({ path, host, upstream, noFallback, at: directive.at });
  }
}

/** The upstream a `proxy_pass` names; undefined (with a warning) when it cannot be carried. */
function proxyTarget(word: Word, path: string, http: HttpScope): string | undefined {
  const url = word.value;
  const notes = http.notes;
  if (url.includes("$")) {
    notes.warn(word.at, `proxy_pass ${url} has variables: location ${path} is not carried`);
    return undefined;
  }
  const match = /^(https?):\/\/([^/]+)(\/.*)?$/i.exec(url);
  if (match === null || match[2].startsWith("unix:")) {
    notes.warn(
      word.at,
      `proxy_pass ${url} is not carried: the gateway proxies to http:// or https:// upstreams over TCP`,
    );
    return undefined;
  }
  const [, scheme, hostPort, uri] = match;
  const tls = scheme.toLowerCase() === "https";
  if (uri !== undefined && uri !== path) {
    notes.warn(
      word.at,
      `proxy_pass ${url}: nginx replaces the location's ${path} with ${uri} in the path it sends; the gateway sends the path unchanged`,
    );
  }
  const port = /^([^:[\]]+):(\d+)$/.exec(hostPort);
  if (port !== null && namedUpstream(http.upstreams, port[1]) !== undefined) {
    throw new NginxParseError(word.at, `upstream "${port[1]}" may not have port ${port[2]}`);
  }
  const upstream = namedUpstream(http.upstreams, hostPort) ??
    implicitUpstream(hostPort, word, http);
  if (upstream === undefined) return undefined;
  if (upstream.tls === undefined) upstream.tls = tls;
  else if (upstream.tls !== tls) {
    notes.warn(
      word.at,
      `proxy_pass ${url}: upstream "${upstream.name}" is also reached with ${
        upstream.tls ? "https" : "http"
      }; the gateway uses one scheme per upstream (${upstream.tls ? "https" : "http"})`,
    );
  }
  return upstream.name;
}

/** The upstream block `proxy_pass` names: nginx compares the host case-insensitively. */
function namedUpstream(
  upstreams: ReadonlyMap<string, UpstreamModel>,
  host: string,
): UpstreamModel | undefined {
  const exact = upstreams.get(host);
  if (exact !== undefined) return exact;
  const lower = host.toLowerCase();
  for (const upstream of upstreams.values()) {
    if (!upstream.implicit && upstream.name.toLowerCase() === lower) return upstream;
  }
  return undefined;
}

/** nginx proxies to an address without an upstream block as to an upstream of one server. */
function implicitUpstream(
  hostPort: string,
  word: Word,
  http: HttpScope,
): UpstreamModel | undefined {
  if (typeof parseAddress(hostPort, 80) === "string") {
    http.notes.warn(
      word.at,
      `proxy_pass ${word.value}: "${hostPort}" is neither an upstream nor an address; not carried`,
    );
    return undefined;
  }
  const upstream: UpstreamModel = {
    name: hostPort,
    servers: [{ address: hostPort, at: word.at }],
    at: word.at,
    implicit: true,
  };
  http.upstreams.set(hostPort, upstream);
  return upstream;
}

function hostOf(url: string): string {
  return url.replace(/^[a-z]+:\/\//i, "").split("/")[0];
}
