/**
 * TOML text → validated, immutable {@link GatewayConfig}.
 *
 * @module
 */
import { parse as parseToml, TomlError } from "smol-toml";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname } from "node:path";
import { type HostsTable, parseAddress, parseHosts } from "./address.ts";
import { readServerTls, readUpstreamTls } from "./tls.ts";
import { readServerLimits } from "./limits.ts";
import { Fields, isTable, type TomlTable } from "./fields.ts";
import { ConfigError, Problems } from "./problems.ts";
import { buildRouteTable } from "./routes.ts";
import type {
  GatewayConfig,
  Route,
  Server,
  ServerSettings,
  ServerState,
  Sticky,
  Upstream,
} from "./types.ts";
import {
  readSticky,
  setCookieProblem,
  type StickyDraft,
  type StickyValues,
  stickyValues,
} from "./sticky.ts";
import { readLogSettings } from "./log.ts";
import { readAdminSettings } from "./admin.ts";
import { readHealthSettings } from "./health.ts";
import { stickyExtras } from "./sticky_token.ts";
import { setCookieTemplate } from "../cookie/set_cookie.ts";
import type { Discovered, DnsEntry } from "../discovery/types.ts";
import { readDnsEntry } from "../discovery/entry.ts";
import { expandDnsEntry } from "../discovery/expand.ts";
import { readResolver } from "../discovery/resolver_setting.ts";

/** Reads and validates a config file. Throws {@link ConfigError} (exit 2) on any problem.
 * `discovered`: the DNS answers `dns` server entries expand with (none: they give no servers). */
export function loadConfigFile(file: string, discovered?: Discovered): GatewayConfig {
  return parseConfig(readConfigText(file), file, discovered);
}

/** The config file's text; a missing or unreadable file throws {@link ConfigError}. */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT"
      ? "file not found; pass an existing file with --config"
      : `cannot be read (${(error as Error).message})`;
    throw new ConfigError(file, [{ path: "", message: reason }]);
  }
}

/** Validates config text. `file` only names the source in messages; `discovered`: the DNS
 * answers `dns` server entries expand with (src/discovery/; none: they give no servers yet). */
export function parseConfig(
  text: string,
  file = "<config>",
  discovered?: Discovered,
): GatewayConfig {
  let document: TomlTable;
  try {
    document = parseToml(text) as TomlTable;
  } catch (error) {
    const where = error instanceof TomlError ? `line ${error.line}, column ${error.column}: ` : "";
    const message = (error as Error).message.split("\n")[0];
    throw new ConfigError(file, [{ path: "", message: `${where}not valid TOML: ${message}` }]);
  }
  const problems = new Problems();
  // Read again for each config (a reload sees an edited hosts file, as nginx's reload would).
  hosts = undefined;
  const root = new Fields(document, "", problems);
  // Relative file paths in the config (TLS certificates) are relative to the config's directory.
  const baseDir = dirname(file);
  const server = readServerSettings(root, problems, baseDir);
  const upstreams = readUpstreams(root, problems, baseDir, discovered);
  const routes = readRoutes(root, upstreams, problems);
  const log = readLogSettings(table(root, "log", problems), problems, baseDir);
  const adminTable = table(root, "admin", problems);
  const admin = adminTable && readAdminSettings(adminTable, problems, baseDir);
  root.finish();
  if (!problems.empty) throw new ConfigError(file, problems.list);
  return Object.freeze({
    file,
    server,
    upstreams,
    routes: buildRouteTable(routes),
    log,
    ...(admin === undefined ? {} : { admin }),
  });
}

/** The Fields of an optional table, undefined when it is absent. */
function table(parent: Fields, key: string, problems: Problems): Fields | undefined {
  const found = parent.subtable(key);
  return found === undefined ? undefined : new Fields(found, parent.keyPath(key), problems);
}

/**
 * `[server] reload_throttle`'s default: at most one reload a second. A storm of reloads cost Bun
 * 13% of its requests in the bench at five a second, 9% at two and 6% at one (docs/benchmarks.md).
 */
export const DEFAULT_RELOAD_THROTTLE_MS = 1000;
/** The longest `reload_throttle`: a reload asked for never waits longer than this for the last. */
const MAX_RELOAD_THROTTLE_MS = 60_000;

function readServerSettings(root: Fields, problems: Problems, baseDir: string): ServerSettings {
  const fields = new Fields(root.subtable("server") ?? {}, "server", problems);
  const listenText = fields.string("listen", "127.0.0.1:8080");
  let listen = parseAddress(listenText);
  if (typeof listen === "string") {
    problems.add("server.listen", listen);
    listen = { text: "127.0.0.1:8080", host: "127.0.0.1", port: 8080 };
  }
  const settings: ServerSettings = {
    listen,
    connectTimeoutMs: fields.duration("connect_timeout", 5000, 1),
    readTimeoutMs: fields.duration("read_timeout", 60_000, 1),
    gracePeriodMs: fields.duration("grace_period", 10_000, 0),
    reloadMaxAgeMs: fields.duration("reload_max_age", 0, 0),
    reloadThrottleMs: reloadThrottle(fields),
    reusePort: fields.boolean("reuse_port", true),
    upstreamClient: fields.oneOf("upstream_client", ["auto", "http1", "fetch"] as const, "auto")!,
    workers: fields.integer("workers", availableParallelism(), 1, 256),
    ...readServerLimits(fields),
    ...readResolver(fields),
  };
  const tls = readServerTls(fields, baseDir);
  if (tls !== undefined) Object.assign(settings, { tls });
  fields.finish();
  return Object.freeze(settings);
}

/** `reload_throttle`, bounded above as `expires` is (src/config/sticky.ts's readExpires). */
function reloadThrottle(fields: Fields): number {
  const ms = fields.duration("reload_throttle", DEFAULT_RELOAD_THROTTLE_MS, 0);
  if (ms <= MAX_RELOAD_THROTTLE_MS) return ms;
  fields.problems.add(
    fields.keyPath("reload_throttle"),
    `${ms / 1000}s is too long; the most allowed is ${MAX_RELOAD_THROTTLE_MS / 1000}s`,
  );
  return DEFAULT_RELOAD_THROTTLE_MS;
}

function readUpstreams(
  root: Fields,
  problems: Problems,
  baseDir: string,
  discovered: Discovered | undefined,
): Map<string, Upstream> {
  const upstreams = new Map<string, Upstream>();
  const table = root.subtable("upstreams");
  if (table === undefined || Object.keys(table).length === 0) {
    problems.add(
      "upstreams",
      `no upstream defined; add one such as [upstreams.app] with servers = ["127.0.0.1:9001"]`,
    );
    return upstreams;
  }
  for (const [name, value] of Object.entries(table)) {
    const path = `upstreams.${name}`;
    if (!isTable(value)) {
      problems.add(path, `must be a table; write [${path}]`);
      continue;
    }
    const fields = new Fields(value, path, problems);
    const upstream = readUpstream(name, fields, problems, baseDir, discovered);
    if (upstream !== undefined) upstreams.set(name, upstream);
  }
  return upstreams;
}

interface ServerDraft {
  /** `upstreams.NAME.servers[i]`, for messages (not part of the Server). */
  readonly keyPath: string;
  readonly address: Server["address"];
  readonly route?: string;
  readonly id: string;
  readonly weight: number;
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  readonly backup: boolean;
  readonly state: ServerState;
  readonly down: boolean;
  readonly stateSet?: boolean;
}

function readUpstream(
  name: string,
  fields: Fields,
  problems: Problems,
  baseDir: string,
  discovered?: Discovered,
): Upstream | undefined {
  const { drafts, dns } = readServers(fields, problems, name, discovered);
  const stickyTable = fields.subtable("sticky");
  const stickyFields = stickyTable === undefined
    ? undefined
    : new Fields(stickyTable, fields.keyPath("sticky"), problems);
  const stickyDraft = stickyFields === undefined ? undefined : readSticky(stickyFields, baseDir);
  const tls = readUpstreamTls(fields, baseDir);
  // Only TLS upstreams carry the key; the cookie value below never depends on it.
  const withTls = tls === undefined ? {} : { tls };
  const healthFields = table(fields, "health", problems);
  const health = healthFields && readHealthSettings(healthFields);
  fields.finish();
  // An upstream of `dns` entries alone exists before they resolve: it answers 502 meanwhile.
  if (drafts.length === 0 && dns.length === 0) return undefined;
  if (dns.length > 0 && stickyDraft?.mode === "index") {
    problems.add(
      `${stickyFields!.path}.hash`,
      `"index" numbers servers by position, which DNS answers change; use hash = "md5" (or sha1, hmac) with dns servers`,
    );
  }

  if (stickyTable === undefined) {
    for (const draft of drafts) {
      if (draft.route === undefined) continue;
      problems.add(
        `${draft.keyPath}.route`,
        `is used only by a sticky upstream (route_from, or format = "nginx"); add [${
          fields.keyPath("sticky")
        }] or remove route`,
      );
    }
  }
  const built = stickyDraft === undefined
    ? undefined
    : stickyValues(stickyDraft, drafts, problems, hostsTable);
  const servers: Server[] = drafts.map(({ keyPath: _, ...draft }, index) => {
    const plain = { ...draft, ...withTls, index };
    const attributes = stickyDraft?.attributes;
    if (built === undefined || attributes === undefined) {
      return Object.freeze({ ...plain, cookieValue: "" });
    }
    const value = built.values[index];
    const setCookie = setCookieTemplate(attributes, value);
    const problem = setCookieProblem(setCookie);
    if (problem !== undefined) {
      // Only a raw value comes from the server's address; the rest is the sticky table's.
      if (stickyDraft!.mode === "raw" && stickyDraft!.format === "module") {
        problems.add(fields.keyPath("servers"), `${draft.address.text}: ${problem}`);
      } else problems.add(stickyFields!.path, problem);
    }
    return Object.freeze({ ...plain, cookieValue: value, setCookie });
  });
  const sticky = stickyDraft && buildSticky(name, stickyDraft, servers, built!, drafts, problems);
  return Object.freeze({
    name,
    servers,
    primaries: servers.filter((s) => !s.backup),
    backups: servers.filter((s) => s.backup),
    sticky,
    ...withTls,
    ...(health === undefined ? {} : { health }),
    ...(dns.length === 0 ? {} : { dns }),
  });
}

/**
 * The upstream's sticky settings with its lookup maps: value → server (for `index` mode the keys
 * are "0", "1", …), legacy value → server, route → server. A value two servers would share under
 * `format = "nginx"` (both resolve to one address) is a problem: neither could be told apart.
 */
function buildSticky(
  upstream: string,
  draft: StickyDraft,
  servers: readonly Server[],
  built: StickyValues,
  drafts: readonly ServerDraft[],
  problems: Problems,
): Sticky {
  const serverByValue = new Map<string, Server>();
  const add = (value: string, server: Server) => {
    const other = serverByValue.get(value);
    if (other === undefined) serverByValue.set(value, server);
    else if (other !== server && draft.format === "nginx") {
      problems.add(
        drafts[server.index].keyPath,
        `has the nginx cookie value ${JSON.stringify(value)} of ${
          drafts[other.index].keyPath
        } (the same resolved address, or a route equal to it); remove one of them`,
      );
    }
  };
  // Tokens name servers by a signed ref (src/sticky/token_check.ts), never by a fixed value.
  if (draft.attributes !== undefined && draft.token === undefined) {
    servers.forEach((server, i) => {
      add(server.cookieValue, server);
      for (const alias of built.aliases[i]) add(alias, server);
    });
  }
  const legacyServerByValue = new Map<string, Server>();
  servers.forEach((server, i) => {
    for (const value of built.legacy[i]) {
      if (!serverByValue.has(value) && !legacyServerByValue.has(value)) {
        legacyServerByValue.set(value, server);
      }
    }
  });
  const serverByRoute = new Map<string, Server>();
  for (const server of servers) {
    if (server.route !== undefined) serverByRoute.set(server.route, server);
  }
  const name = draft.attributes?.name ?? "";
  return Object.freeze({
    name,
    lowerName: name.toLowerCase(),
    mode: draft.mode,
    noFallback: draft.noFallback,
    serverByValue,
    cookie: draft.attributes !== undefined,
    format: draft.format,
    alwaysSetCookie: draft.format === "nginx",
    ...(draft.acceptLegacy ? { legacyServerByValue } : {}),
    ...(draft.routeFrom === undefined ? {} : {
      routeFrom: draft.routeFrom,
      routeDelimiter: draft.routeDelimiter,
      serverByRoute,
    }),
    ...stickyExtras(upstream, draft, servers),
  });
}

/** The hosts file, read when a config first needs a host's address (once per config). */
let hosts: HostsTable | undefined;

function hostsTable(): HostsTable {
  if (hosts !== undefined) return hosts;
  try {
    hosts = parseHosts(readFileSync("/etc/hosts", "utf8"));
  } catch {
    hosts = new Map();
  }
  return hosts;
}

const SERVER_KEYS = "address, weight, max_fails, fail_timeout, backup, down, id, state, route";
/** A server's route: what application cookies (Tomcat jvmRoute), headers and nginx carry. */
const ROUTE = /^[A-Za-z0-9._~-]{1,64}$/;
const SERVER_STATES: readonly ServerState[] = ["ready", "drain", "maint"];

function readServers(
  fields: Fields,
  problems: Problems,
  upstream: string,
  discovered: Discovered | undefined,
): { drafts: ServerDraft[]; dns: DnsEntry[] } {
  const list = fields.raw("servers");
  const path = fields.keyPath("servers");
  const dns: DnsEntry[] = [];
  if (!Array.isArray(list) || list.length === 0) {
    problems.add(
      path,
      `needs at least one server, e.g. servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 }]`,
    );
    return { drafts: [], dns };
  }
  const drafts: ServerDraft[] = [];
  const seen = new Set<string>();
  const idAt = new Map<string, number>();
  const routeAt = new Map<string, number>();
  list.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    if (isTable(entry) && entry.dns !== undefined) {
      const found = readDnsEntry(new Fields(entry, at, problems), upstream);
      if (found !== undefined) dns.push(found);
      return;
    }
    const draft = readServer(entry, at, problems);
    if (draft === undefined) return;
    if (seen.has(draft.address.text)) {
      problems.add(
        at,
        `"${draft.address.text}" is listed twice; each server's cookie value must be its own`,
      );
      return;
    }
    seen.add(draft.address.text);
    const first = idAt.get(draft.id);
    if (first !== undefined) {
      problems.add(
        `${at}.id`,
        `"${draft.id}" is already the id of ${path}[${first}]; give each server its own id = "…"`,
      );
      return;
    }
    idAt.set(draft.id, i);
    if (draft.route !== undefined) {
      const other = routeAt.get(draft.route);
      if (other !== undefined) {
        problems.add(
          `${at}.route`,
          `"${draft.route}" is already the route of ${path}[${other}]; each server needs its own`,
        );
        return;
      }
      routeAt.set(draft.route, i);
    }
    drafts.push(draft);
  });
  const entries = [...drafts, ...dns];
  if (entries.length > 0 && entries.every((d) => d.backup)) {
    problems.add(path, "every server is a backup; at least one must be a primary (backup = false)");
  }
  drafts.push(...discoveredDrafts(dns, discovered, new Set([...seen, ...idAt.keys()])));
  return { drafts, dns };
}

/** The servers `dns` entries stand for with these answers, after the listed ones; an address
 * already listed (or found by an earlier entry) is left out, not a problem: answers change. */
function discoveredDrafts(
  dns: readonly DnsEntry[],
  discovered: Discovered | undefined,
  taken: Set<string>,
): ServerDraft[] {
  const drafts: ServerDraft[] = [];
  for (const entry of dns) {
    for (const server of expandDnsEntry(entry, discovered?.get(entry.query)).servers) {
      if (taken.has(server.address.text)) continue;
      taken.add(server.address.text);
      drafts.push({
        keyPath: `${entry.keyPath} (${server.address.text})`,
        ...server,
        id: server.address.text,
        maxFails: entry.maxFails,
        failTimeoutMs: entry.failTimeoutMs,
        down: false,
      });
    }
  }
  return drafts;
}

function readServer(entry: unknown, at: string, problems: Problems): ServerDraft | undefined {
  const fields = typeof entry === "string"
    ? new Fields({ address: entry }, at, problems)
    : isTable(entry)
    ? new Fields(entry, at, problems)
    : undefined;
  if (fields === undefined) {
    problems.add(at, `must be "host:port" or a table with ${SERVER_KEYS}`);
    return undefined;
  }
  const text = fields.string("address");
  const draft = {
    weight: fields.integer("weight", 1, 1, 1_000_000),
    maxFails: fields.integer("max_fails", 1, 0, 1_000_000),
    failTimeoutMs: fields.duration("fail_timeout", 10_000, 1),
    backup: fields.boolean("backup", false),
  };
  const down = fields.boolean("down", false);
  const id = fields.string("id");
  const state = readServerState(fields, down);
  const route = fields.string("route");
  // Said in the file (not defaulted): a reload then applies it over the admin API's state.
  const stateSet = fields.has("state") || fields.has("down");
  fields.finish();
  if (text === undefined) {
    problems.add(fields.keyPath("address"), `is required, e.g. address = "127.0.0.1:9001"`);
    return undefined;
  }
  const address = parseAddress(text, 80);
  if (typeof address === "string") {
    problems.add(typeof entry === "string" ? at : fields.keyPath("address"), address);
    return undefined;
  }
  // The default, the address text, is made of the same characters (parseAddress allows no more).
  const idProblem = id === undefined ? undefined : serverIdProblem(id);
  if (idProblem !== undefined) {
    problems.add(fields.keyPath("id"), idProblem);
    return undefined;
  }
  if (route !== undefined && !ROUTE.test(route)) {
    problems.add(
      fields.keyPath("route"),
      `${
        JSON.stringify(route)
      } is not a route: use 1 to 64 of A-Z a-z 0-9 . _ ~ - (what a cookie or URL carries unescaped), e.g. route = "node1"`,
    );
    return undefined;
  }
  return {
    keyPath: at,
    address,
    ...(route === undefined ? {} : { route }),
    id: id ?? address.text,
    ...draft,
    state,
    down: state === "maint",
    ...(stateSet ? { stateSet } : {}),
  };
}

/** `state = "ready" | "drain" | "maint"`; nginx's `down = true` is `maint` and cannot say more. */
function readServerState(fields: Fields, down: boolean): ServerState {
  const state = fields.oneOf("state", SERVER_STATES);
  if (down && state !== undefined && state !== "maint") {
    fields.problems.add(
      fields.keyPath("state"),
      `"${state}" contradicts down = true (which is state = "maint"); keep one of them`,
    );
  }
  return state ?? (down ? "maint" : "ready");
}

/** Characters of a server id: it becomes a metric label and an admin URL path segment. */
const SERVER_ID = /^[A-Za-z0-9._:@\-\[\]]{1,128}$/;

/** Why `id` cannot name a server, or undefined when it can. */
export function serverIdProblem(id: string): string | undefined {
  if (SERVER_ID.test(id)) return undefined;
  return `${
    JSON.stringify(id)
  } is not a server id: use 1 to 128 of A-Z a-z 0-9 . _ : @ - [ ] (no spaces; ids appear in metric labels and admin URLs), e.g. id = "web-1"`;
}

function readRoutes(root: Fields, upstreams: Map<string, Upstream>, problems: Problems): Route[] {
  const list = root.raw("routes");
  if (list === undefined) {
    if (upstreams.size === 1) {
      const [upstream] = upstreams.values();
      return [{ path: "/", upstream, noFallback: false }];
    }
    if (upstreams.size > 1) {
      problems.add(
        "routes",
        `with ${upstreams.size} upstreams, add [[routes]] entries (path, upstream) to say which requests go where`,
      );
    }
    return [];
  }
  if (!Array.isArray(list)) {
    problems.add("routes", "must be an array of tables; write each as [[routes]]");
    return [];
  }
  const routes: Route[] = [];
  const seen = new Set<string>();
  list.forEach((entry, i) => {
    const at = `routes[${i}]`;
    if (!isTable(entry)) {
      problems.add(at, "must be a table; write [[routes]]");
      return;
    }
    const route = readRoute(new Fields(entry, at, problems), upstreams, problems);
    if (route === undefined) return;
    const key = `${route.host ?? "*"} ${route.path}`;
    if (seen.has(key)) {
      problems.add(
        at,
        `another route already has path "${route.path}"${
          route.host ? ` and host "${route.host}"` : ""
        }`,
      );
      return;
    }
    seen.add(key);
    routes.push(route);
  });
  return routes;
}

function readRoute(
  fields: Fields,
  upstreams: Map<string, Upstream>,
  problems: Problems,
): Route | undefined {
  const path = fields.string("path", "/");
  const host = fields.string("host");
  const upstreamName = fields.string("upstream");
  const noFallback = fields.boolean("no_fallback", false);
  fields.finish();
  let ok = true;
  if (!path.startsWith("/")) {
    problems.add(fields.keyPath("path"), `"${path}" must start with "/"`);
    ok = false;
  }
  if (host !== undefined && !/^[A-Za-z0-9.-]+$/.test(host)) {
    problems.add(
      fields.keyPath("host"),
      `"${host}" is not a host name; write it without port or scheme, e.g. "app.example.com"`,
    );
    ok = false;
  }
  const upstream = upstreamName === undefined ? undefined : upstreams.get(upstreamName);
  if (upstreamName === undefined) {
    problems.add(
      fields.keyPath("upstream"),
      `is required; one of ${[...upstreams.keys()].join(", ") || "(no upstream defined)"}`,
    );
    ok = false;
  } else if (upstream === undefined) {
    problems.add(
      fields.keyPath("upstream"),
      `"${upstreamName}" is not defined; defined upstreams: ${
        [...upstreams.keys()].join(", ") || "none"
      }`,
    );
    ok = false;
  }
  if (!ok || upstream === undefined) return undefined;
  return Object.freeze({ host: host?.toLowerCase(), path, upstream, noFallback });
}
