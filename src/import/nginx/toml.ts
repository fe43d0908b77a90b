/**
 * The import model → TOML text, with a comment naming the nginx file and line of each part, and
 * every directive not carried listed at the top. Records which TOML key path came from which
 * nginx line, so that a problem `--check` would find can be reported against nginx.conf.
 *
 * @module
 */
import { formatLocation, type ImportWarning, type SourceLocation } from "./errors.ts";
import type { ImportModel, ServerModel, StickyModel, UpstreamModel } from "./model.ts";

/** TOML text and the nginx place of each key path it writes. */
export interface RenderedToml {
  readonly text: string;
  readonly sources: ReadonlyMap<string, SourceLocation>;
}

/** A TOML basic string (JSON's escapes are all valid TOML escapes). */
function str(value: string): string {
  return JSON.stringify(value);
}

function key(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : str(name);
}

/** Text safe in a TOML comment: control characters (a file name may hold any) become "?". */
function comment(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, "?");
}

function place(at: SourceLocation | undefined): string {
  return at === undefined ? "" : ` # ${comment(`${at.file}:${at.line}`)}`;
}

/** The source comment of a table, on the line above its header (headers stay bare). */
function above(at: SourceLocation): string[] {
  return [`# ${comment(`${at.file}:${at.line}`)}`];
}

function value(v: string | number | boolean | readonly string[]): string {
  if (typeof v === "string") return str(v);
  if (Array.isArray(v)) return `[${v.map((s) => str(s)).join(", ")}]`;
  return String(v);
}

/** Renders the model. */
export function renderToml(model: ImportModel): RenderedToml {
  const lines: string[] = [];
  const sources = new Map<string, SourceLocation>();
  lines.push(...header(model));
  lines.push("[server]");
  for (const [name, setting] of model.server) {
    const why = setting.why === undefined ? place(setting.at) : ` # ${comment(setting.why)}`;
    lines.push(`${name} = ${value(setting.value)}${why}`);
    if (setting.at !== undefined) sources.set(`server.${name}`, setting.at);
  }
  if (model.tls !== undefined) {
    lines.push(
      `tls = { cert = ${str(model.tls.cert)}, key = ${str(model.tls.key)} }${place(model.tls.at)}`,
    );
    sources.set("server.tls", model.tls.at);
  }
  for (const upstream of model.upstreams.values()) {
    lines.push("", ...renderUpstream(upstream, sources));
  }
  model.routes.forEach((route, i) => {
    lines.push("", ...above(route.at), "[[routes]]", `path = ${str(route.path)}`);
    if (route.host !== undefined) lines.push(`host = ${str(route.host)}`);
    lines.push(`upstream = ${str(route.upstream)}`);
    if (route.noFallback) lines.push(`no_fallback = true`);
    sources.set(`routes[${i}]`, route.at);
  });
  return { text: `${lines.join("\n")}\n`, sources };
}

function header(model: ImportModel): string[] {
  const lines = [comment(`# Imported from ${model.source} by \`sticky-gateway import\`.`)];
  const group = (level: ImportWarning["level"], title: string) => {
    const list = model.warnings.filter((w) => w.level === level);
    if (list.length === 0) return;
    lines.push("#", `# ${title}`);
    for (const w of list) lines.push(`#   ${comment(`${formatLocation(w)}: ${w.message}`)}`);
  };
  group("warning", "Not carried, behaviour differs from nginx (also printed as warnings):");
  group("note", "Not carried, nothing changes for clients:");
  lines.push("");
  return lines;
}

function renderUpstream(upstream: UpstreamModel, sources: Map<string, SourceLocation>): string[] {
  const path = `upstreams.${upstream.name}`;
  sources.set(path, upstream.at);
  const lines = [...above(upstream.at), `[upstreams.${key(upstream.name)}]`, "servers = ["];
  upstream.servers.forEach((server, i) => {
    lines.push(`  ${renderServer(server)},${place(server.at)}`);
    sources.set(`${path}.servers[${i}]`, server.at);
  });
  lines.push("]");
  if (upstream.tls) lines.push("tls = true");
  if (upstream.sticky !== undefined) {
    sources.set(`${path}.sticky`, upstream.sticky.at);
    lines.push("", ...above(upstream.sticky.at), `[upstreams.${key(upstream.name)}.sticky]`);
    lines.push(...renderSticky(upstream.sticky));
  }
  return lines;
}

function renderServer(server: ServerModel): string {
  const fields: [string, string | number | boolean | undefined][] = [
    ["weight", server.weight],
    ["max_fails", server.maxFails],
    ["fail_timeout", server.failTimeout],
    ["backup", server.backup],
    ["down", server.down],
    ["state", server.drain && !server.down ? "drain" : undefined],
    ["route", server.route],
  ];
  const given = fields.filter(([, v]) => v !== undefined) as [string, string | number | boolean][];
  if (given.length === 0) return str(server.address);
  const rest = given.map(([k, v]) => `${k} = ${value(v)}`).join(", ");
  return `{ address = ${str(server.address)}, ${rest} }`;
}

function renderSticky(sticky: StickyModel): string[] {
  if (sticky.ownCookie === false) {
    return [
      "cookie = false",
      `route_from = ${value(sticky.routeFrom ?? [])}`,
      `route_delimiter = ${str(sticky.routeDelimiter ?? "")}`,
      ...(sticky.noFallback ? ["no_fallback = true"] : []),
    ];
  }
  const fields: [string, string | boolean | undefined][] = [
    ["format", sticky.format === "nginx" ? "nginx" : undefined],
    ["name", sticky.name],
    ["hash", sticky.hash],
    ["hmac", sticky.hmac],
    ["hmac_key", sticky.hmacKey],
    ["text", sticky.text],
    ["domain", sticky.domain],
    ["path", sticky.path],
    ["expires", sticky.expires],
    ["secure", sticky.secure],
    ["httponly", sticky.httponly],
    ["samesite", sticky.samesite],
    ["no_fallback", sticky.noFallback],
  ];
  return fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k} = ${value(v!)}`);
}
