/**
 * The directive tree → the import model: the main context (`http`, `worker_processes`), then
 * the checks that keep the TOML loadable (servers' `route=` only where it means something,
 * upstreams left without servers, routes for several upstreams).
 *
 * @module
 */
import { notCarried } from "./directives.ts";
import { NginxParseError, sortWarnings, type SourceLocation } from "./errors.ts";
import { readHttp } from "./http.ts";
import { type ImportModel, Notes, type UpstreamModel } from "./model.ts";
import type { ConfigTree, Directive } from "./reader.ts";

/** Builds the model of a read config. `source`: the main file as named by the user. */
export function translate(tree: ConfigTree, source: string, confDir: string): ImportModel {
  const notes = new Notes();
  notes.list.push(...tree.warnings);
  const top = tree.directives;
  let http: Directive | undefined;
  let workers: { value: number; at: SourceLocation } | undefined;
  for (const directive of top) {
    if (directive.name === "http" && directive.block !== undefined) {
      if (http !== undefined) {
        throw new NginxParseError(directive.at, `"http" directive is duplicate`);
      }
      http = directive;
    } else if (
      directive.name === "worker_processes" && /^\d+$/.test(directive.args[0]?.value ?? "")
    ) {
      workers = { value: Number(directive.args[0].value), at: directive.at };
    } else if (directive.name === "worker_processes") {
      notes.note(
        directive.at,
        `worker_processes auto: the gateway's workers default to the number of cores too`,
      );
    } else if (http === undefined && ["upstream", "server", "map"].includes(directive.name)) {
      continue;
    } else notCarried(directive, notes);
  }
  const httpDirectives = http?.block ?? fragment(top, source, notes);
  const imported = readHttp(httpDirectives, confDir, notes);
  const model: ImportModel = {
    source,
    server: new Map(),
    upstreams: imported.upstreams,
    routes: imported.routes,
    warnings: notes.list,
    ...(imported.tls === undefined ? {} : { tls: imported.tls }),
  };
  const listen = imported.listen;
  if (listen !== undefined) model.server.set("listen", { value: listen.address, at: listen.at });
  else {
    model.server.set("listen", { value: "0.0.0.0:80", why: "nginx's default listen (*:80)" });
  }
  if (workers !== undefined) model.server.set("workers", workers);
  for (const [key, setting] of imported.server) model.server.set(key, setting);
  for (const upstream of model.upstreams.values()) keepMeaningfulRoutes(upstream, notes);
  dropEmptyUpstreams(model, notes);
  checkRoutes(model, source, notes);
  sortWarnings(notes.list, source);
  return model;
}

/** A file without `http { }` (a conf.d snippet): its upstream and server blocks are read as
 * the http context's. */
function fragment(top: readonly Directive[], source: string, notes: Notes): Directive[] {
  const found = top.filter((d) => ["upstream", "server", "map"].includes(d.name));
  if (found.length > 0) {
    notes.note(
      { file: source, line: 1, column: 1 },
      `no http { } block: the file's upstream and server blocks are read as the http context's`,
    );
  }
  return found;
}

/** `route=` is the route of nginx's own sticky (route or cookie); elsewhere nginx ignores it. */
function keepMeaningfulRoutes(upstream: UpstreamModel, notes: Notes): void {
  if (upstream.sticky?.format === "nginx") return;
  upstream.servers.forEach((server, i) => {
    if (server.route === undefined) return;
    notes.note(server.at, `route=${server.route}: used only by nginx's own sticky; not carried`);
    upstream.servers[i] = { ...server, route: undefined };
  });
}

function dropEmptyUpstreams(model: ImportModel, notes: Notes): void {
  for (const [name, upstream] of model.upstreams) {
    if (upstream.servers.length > 0 && upstream.servers.some((s) => !s.backup)) continue;
    notes.warn(
      upstream.at,
      `upstream "${name}" has no server the gateway can reach (TCP, not all backup): not carried, nor the locations that proxy to it`,
    );
    model.upstreams.delete(name);
    for (let i = model.routes.length - 1; i >= 0; i--) {
      if (model.routes[i].upstream === name) model.routes.splice(i, 1);
    }
  }
}

/** With several upstreams the gateway needs routes; with one and no route, it takes everything. */
function checkRoutes(model: ImportModel, source: string, notes: Notes): void {
  const whole = { file: source, line: 0, column: 0 };
  if (model.upstreams.size === 0) {
    throw new NginxParseError(
      whole,
      `nothing to import: no upstream block and no location with proxy_pass the gateway can carry`,
    );
  }
  if (model.routes.length > 0) {
    for (const upstream of model.upstreams.values()) {
      if (!model.routes.some((r) => r.upstream === upstream.name)) {
        notes.note(upstream.at, `upstream "${upstream.name}": no carried location proxies to it`);
      }
    }
    return;
  }
  if (model.upstreams.size > 1) {
    throw new NginxParseError(
      whole,
      `${model.upstreams.size} upstreams but no location proxies to any of them that the gateway can carry: nothing says which requests go where`,
    );
  }
  const [upstream] = model.upstreams.values();
  notes.warn(
    upstream.at,
    `no location proxies to upstream "${upstream.name}": the gateway sends every request to it`,
  );
}
