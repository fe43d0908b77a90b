/**
 * The `http` context → upstreams, the one listener, its TLS, routes and `[server]` settings.
 *
 * The gateway has one listener: the first `listen` of the first `server` block that proxies is
 * it, and the `server` blocks listening there are carried (others are warned about). On that
 * port, the default server (`default_server`, else the first) gives routes for any host; the
 * others give routes for each of their exact `server_name`s, which the gateway tries first, as
 * nginx picks a server by name before the default one.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { notCarried } from "./directives.ts";
import { NginxParseError, type SourceLocation } from "./errors.ts";
import { type Listen, readListen, readServerNames } from "./listen.ts";
import { checkNoFallback, type HttpScope, readLocation, type ServerScope } from "./locations.ts";
import type { Notes, RouteModel, SettingModel, UpstreamModel } from "./model.ts";
import type { Directive } from "./reader.ts";
import { Settings } from "./settings.ts";
import { readUpstream } from "./upstream.ts";
import { collectMaps } from "./variables.ts";

/** What the http context gives the TOML. */
export interface HttpImport {
  readonly upstreams: Map<string, UpstreamModel>;
  readonly routes: RouteModel[];
  readonly server: Map<string, SettingModel>;
  readonly tls?: { readonly cert: string; readonly key: string; readonly at: SourceLocation };
  /** The gateway's listener; undefined when no server block proxies. */
  readonly listen?: Listen;
}

interface ServerBlock {
  readonly directive: Directive;
  readonly listens: Listen[];
  readonly names: string[];
  readonly noFallback: boolean;
  readonly cert?: Directive;
  readonly key?: Directive;
  readonly sslOn: boolean;
  readonly locations: Directive[];
  readonly other: Directive[];
}

/** Reads the http context (`confDir`: where relative certificate paths start, as in nginx). */
export function readHttp(http: readonly Directive[], confDir: string, notes: Notes): HttpImport {
  const maps = collectMaps(http);
  const upstreams = new Map<string, UpstreamModel>();
  const settings = new Settings();
  const blocks: ServerBlock[] = [];
  const httpTls: { cert?: Directive; key?: Directive } = {};
  for (const directive of http) {
    if (directive.name === "upstream") {
      const upstream = readUpstream(directive, maps, notes);
      // nginx compares upstream names case-insensitively.
      const first = [...upstreams.values()].find((u) =>
        u.name.toLowerCase() === upstream.name.toLowerCase()
      );
      if (first !== undefined) {
        throw new NginxParseError(
          directive.at,
          `duplicate upstream "${upstream.name}" (first at ${first.at.file}:${first.at.line})`,
        );
      }
      upstreams.set(upstream.name, upstream);
    } else if (directive.name === "server" && directive.block !== undefined) {
      blocks.push(readServerBlock(directive, notes));
    } else if (Settings.handles(directive)) settings.add(directive, notes);
    else if (directive.name === "ssl_certificate" || directive.name === "ssl_certificate_key") {
      httpTls[directive.name === "ssl_certificate" ? "cert" : "key"] ??= directive;
    } else if (notAllowedInHttp(directive)) {
      throw new NginxParseError(directive.at, `"${directive.name}" directive is not allowed here`);
    } else if (directive.name === "map" && isRouteMap(directive, http)) continue;
    else notCarried(directive, notes);
  }
  const headers = http.filter((d) => d.name === "proxy_set_header");
  const scope: HttpScope = { upstreams, headers, settings, notes };
  const carried = chooseListener(blocks, notes);
  const routes = carried === undefined ? [] : carryServers(carried, scope);
  const tls = carried === undefined ? undefined : serverTls(carried, httpTls, confDir, notes);
  return { upstreams, routes, server: settings.resolve(notes), tls, listen: carried?.listen };
}

function notAllowedInHttp(directive: Directive): boolean {
  return ["sticky", "sticky_no_fallback", "proxy_pass", "location", "listen"].includes(
    directive.name,
  );
}

/** A map that a `sticky route` reads is carried (as route_from), not warned about. */
function isRouteMap(map: Directive, http: readonly Directive[]): boolean {
  const variable = map.args[1]?.value;
  return http.some((d) =>
    d.name === "upstream" &&
    d.block?.some((c) => c.name === "sticky" && c.args.some((a) => a.value === variable))
  );
}

/** A server block as it is being read (the fields {@link ServerBlock} then keeps). */
type ServerDraft = { -readonly [K in keyof ServerBlock]: ServerBlock[K] };

function readServerBlock(directive: Directive, notes: Notes): ServerBlock {
  const block: ServerDraft = {
    directive,
    listens: [],
    names: [],
    noFallback: false,
    sslOn: false,
    locations: [],
    other: [],
  };
  for (const child of directive.block ?? []) readServerDirective(child, block, notes);
  // No listen at all is nginx's *:80; listens on UNIX sockets only leave the block without one.
  if (!(directive.block ?? []).some((d) => d.name === "listen")) {
    block.listens.push({
      address: "0.0.0.0:80",
      ssl: false,
      defaultServer: false,
      at: directive.at,
    });
  }
  return block;
}

function readServerDirective(child: Directive, block: ServerDraft, notes: Notes): void {
  if (child.name === "listen") {
    const listen = readListen(child, notes);
    if (listen !== undefined) block.listens.push(listen);
  } else if (child.name === "server_name") block.names.push(...readServerNames(child, notes));
  else if (child.name === "location") block.locations.push(child);
  else if (child.name === "sticky_no_fallback") {
    checkNoFallback(child, block.noFallback);
    block.noFallback = true;
  } else if (child.name === "ssl_certificate") block.cert ??= child;
  else if (child.name === "ssl_certificate_key") block.key ??= child;
  else if (child.name === "ssl" && child.args[0]?.value === "on") block.sslOn = true;
  else if (["sticky", "proxy_pass", "upstream"].includes(child.name)) {
    throw new NginxParseError(child.at, `"${child.name}" directive is not allowed here`);
  } else block.other.push(child);
}

/** Whether a server block proxies anywhere (its locations or nested ones have a proxy_pass). */
function proxies(directives: readonly Directive[]): boolean {
  return directives.some((d) =>
    d.name === "proxy_pass" || (d.name === "location" && proxies(d.block ?? []))
  );
}

interface Carried {
  readonly listen: Listen;
  readonly blocks: ServerBlock[];
}

/** The gateway's one listener and the server blocks on it; the others are warned about. */
function chooseListener(blocks: readonly ServerBlock[], notes: Notes): Carried | undefined {
  for (const block of blocks.filter((b) => b.listens.length === 0)) {
    notes.warn(block.directive.at, `server block listening on UNIX sockets only: not carried`);
  }
  const first = blocks.find((b) => b.listens.length > 0 && proxies(b.locations));
  if (first === undefined) {
    for (const block of blocks) {
      notes.warn(block.directive.at, `server block without proxy_pass: not carried`);
    }
    return undefined;
  }
  const listen = first.listens[0];
  const carried: ServerBlock[] = [];
  for (const block of blocks) {
    if (block.listens.length === 0) continue;
    const here = block.listens.find((l) => l.address === listen.address);
    for (const other of block.listens) {
      if (other.address === listen.address) continue;
      notes.warn(
        other.at,
        `listen ${other.address} is not carried: the gateway has one listener (${listen.address}, line ${listen.at.line}); run a second gateway for this port`,
      );
    }
    if (here !== undefined) carried.push(block);
    else notes.warn(block.directive.at, `server block on another port: not carried`);
  }
  return { listen: carried[0].listens.find((l) => l.address === listen.address)!, blocks: carried };
}

/** Routes of the carried server blocks: the default server for any host, the others by name. */
function carryServers(carried: Carried, http: HttpScope): RouteModel[] {
  const { blocks, listen } = carried;
  const notes = http.notes;
  const defaultBlock =
    blocks.find((b) => b.listens.some((l) => l.address === listen.address && l.defaultServer)) ??
      blocks[0];
  const nameOwner = new Map<string, ServerBlock>();
  const routes: RouteModel[] = [];
  for (const block of blocks) {
    const hosts: (string | undefined)[] = block === defaultBlock ? [undefined] : [];
    for (const name of block.names) {
      const owner = nameOwner.get(name);
      if (owner !== undefined) {
        notes.warn(
          block.directive.at,
          `conflicting server name "${name}" on ${listen.address} (first in the server block at line ${owner.directive.at.line}${
            owner.directive.at.file === block.directive.at.file
              ? ""
              : ` of ${owner.directive.at.file}`
          }), ignored here as nginx ignores it`,
        );
        continue;
      }
      nameOwner.set(name, block);
      if (block !== defaultBlock) hosts.push(name);
    }
    for (const other of block.other) {
      if (Settings.handles(other)) http.settings.add(other, notes);
      else notCarried(other, notes);
    }
    if (hosts.length === 0) {
      notes.warn(
        block.directive.at,
        `server block with no exact server_name and not the default server: not carried`,
      );
      continue;
    }
    const own = block.other.filter((d) => d.name === "proxy_set_header");
    const headers = own.length > 0 ? own : http.headers;
    const scope: ServerScope = { hosts, routes: [], seen: new Set(), headers };
    for (const location of block.locations) readLocation(location, scope, http, block.noFallback);
    if (block !== defaultBlock && !scope.routes.some((r) => r.path === "/")) {
      notes.warn(
        block.directive.at,
        `requests for ${
          hosts.join(", ")
        } that match none of this server's locations go to the default server's routes here (nginx answers them 404)`,
      );
    }
    routes.push(...scope.routes);
  }
  return routes;
}

/** `[server] tls` when the listener has `ssl`: the default server's certificate, or http's. */
function serverTls(
  carried: Carried,
  httpTls: { cert?: Directive; key?: Directive },
  confDir: string,
  notes: Notes,
): HttpImport["tls"] {
  const main = carried.blocks[0];
  const ssl = carried.listen.ssl || main.sslOn;
  const cert = main.cert ?? httpTls.cert;
  const key = main.key ?? httpTls.key;
  if (!ssl) {
    if (main.cert !== undefined) {
      notes.note(main.cert.at, `ssl_certificate without "listen … ssl": not used by nginx either`);
    }
    return undefined;
  }
  if (cert === undefined || key === undefined) {
    throw new NginxParseError(
      carried.listen.at,
      `no "ssl_certificate${
        cert === undefined ? "" : "_key"
      }" is defined for the "listen ... ssl" directive`,
    );
  }
  for (const block of carried.blocks.slice(1)) {
    const other = block.cert ?? httpTls.cert;
    if (other !== undefined && other.args[0]?.value !== cert.args[0]?.value) {
      notes.warn(
        other.at,
        `ssl_certificate ${other.args[0]?.value}: the gateway serves one certificate (${
          cert.args[0]?.value
        }) to every host`,
      );
    }
  }
  return { cert: pemPath(cert, confDir), key: pemPath(key, confDir), at: cert.at };
}

/** nginx reads relative certificate paths from its conf directory; the TOML gets them absolute. */
function pemPath(directive: Directive, confDir: string): string {
  const value = directive.args[0]?.value ?? "";
  if (value.includes("$") || value.startsWith("data:") || value.startsWith("engine:")) {
    throw new NginxParseError(
      directive.at,
      `${directive.name} ${value} cannot be carried: the gateway reads one PEM file`,
    );
  }
  return isAbsolute(value) ? value : resolve(confDir, value);
}
