/**
 * What a reload changes, computed from two validated snapshots alone (pure): the per-upstream
 * summary the API answers with, and the keys a running process cannot take without a restart.
 *
 * @module
 */
import type { GatewayConfig, Server, Upstream } from "../config/mod.ts";
import type { ConfigProblem } from "../config/problems.ts";

/** Server ids by upstream name; an upstream appears only when it has some. */
export type ServersByUpstream = Readonly<Record<string, readonly string[]>>;

/** The summary of a reload: servers added, removed and changed, per upstream. */
export interface ConfigChanges {
  /** Servers new in their upstream (all servers of a new upstream). */
  readonly added: ServersByUpstream;
  /** Servers gone (all servers of a removed upstream). */
  readonly removed: ServersByUpstream;
  /** Servers kept by id whose settings changed: address, weight, backup, state, passive-health
   * limits, or the cookie they get (value or attributes). */
  readonly changed: ServersByUpstream;
}

/**
 * The servers added, removed and changed from `before` to `after`, matched by (upstream, id).
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * import { configChanges } from "./changes.ts";
 *
 * const before = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9001", "127.0.0.1:9002"]\n`);
 * const after = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9002", "127.0.0.1:9003"]\n`);
 * const changes = configChanges(before, after);
 * if (changes.added.app[0] !== "127.0.0.1:9003" || changes.removed.app[0] !== "127.0.0.1:9001") {
 *   throw new Error(JSON.stringify(changes));
 * }
 * ```
 */
export function configChanges(before: GatewayConfig, after: GatewayConfig): ConfigChanges {
  const added: Record<string, string[]> = {};
  const removed: Record<string, string[]> = {};
  const changed: Record<string, string[]> = {};
  const put = (into: Record<string, string[]>, upstream: string, id: string) =>
    (into[upstream] ??= []).push(id);
  for (const next of after.upstreams.values()) {
    const previous = before.upstreams.get(next.name);
    const old = new Map(previous?.servers.map((s) => [s.id, s]) ?? []);
    for (const server of next.servers) {
      const was = old.get(server.id);
      if (was === undefined) put(added, next.name, server.id);
      else if (serverKey(was) !== serverKey(server)) put(changed, next.name, server.id);
    }
  }
  for (const previous of before.upstreams.values()) {
    const kept = new Set(after.upstreams.get(previous.name)?.servers.map((s) => s.id) ?? []);
    for (const server of previous.servers) {
      if (!kept.has(server.id)) put(removed, previous.name, server.id);
    }
  }
  return { added, removed, changed };
}

/** Everything about a server that a reload can change, as one comparable text. */
function serverKey(server: Server): string {
  return JSON.stringify([
    server.address.text,
    server.weight,
    server.backup,
    server.state,
    server.maxFails,
    server.failTimeoutMs,
    server.cookieValue,
    server.setCookie ?? null,
    server.tls?.poolKey ?? null,
    server.route ?? null,
  ]);
}

/**
 * Whether an upstream's round-robin sequence is the same in both snapshots (the same servers, in
 * the same order, with the same weights and roles): only then is its cursor carried over.
 */
export function sameRotation(before: Upstream, after: Upstream): boolean {
  if (before.servers.length !== after.servers.length) return false;
  return before.servers.every((s, i) => {
    const t = after.servers[i];
    return s.id === t.id && s.weight === t.weight && s.backup === t.backup;
  });
}

/**
 * Whether the client listener must be bound anew: its address, certificate or the limits the
 * listener applies to its connections changed. A reload binds the new one before the old one
 * stops accepting.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * import { listenerChanged } from "./changes.ts";
 *
 * const up = `[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`;
 * const before = parseConfig(`[server]\nlisten = "127.0.0.1:8080"\n${up}`);
 * const after = parseConfig(`[server]\nlisten = "127.0.0.1:8081"\n${up}`);
 * if (!listenerChanged(before, after) || listenerChanged(before, before)) throw new Error();
 * ```
 */
export function listenerChanged(before: GatewayConfig, after: GatewayConfig): boolean {
  return listenerKey(before) !== listenerKey(after);
}

function listenerKey({ server }: GatewayConfig): string {
  return JSON.stringify([
    server.listen.text,
    tlsKey(server.tls),
    server.clientMaxHeaderSize,
    server.clientHeaderTimeoutMs,
    server.keepaliveTimeoutMs,
    server.maxConnections,
  ]);
}

/**
 * The keys that changed but only apply at start, one problem each ("needs a restart"):
 * `workers`, `reuse_port`, `upstream_client`, `[admin]` and `[log]`. A reload refuses them
 * rather than ignore them. (The client listener's keys are reloaded: {@link listenerChanged}.)
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * import { restartProblems } from "./changes.ts";
 *
 * const up = `[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`;
 * const before = parseConfig(`[server]\nworkers = 1\n${up}`);
 * const after = parseConfig(`[server]\nworkers = 2\n${up}`);
 * if (restartProblems(before, after)[0].path !== "server.workers") throw new Error("workers");
 * ```
 */
export function restartProblems(before: GatewayConfig, after: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const check = (path: string, a: unknown, b: unknown) => {
    const was = JSON.stringify(a ?? null);
    const is = JSON.stringify(b ?? null);
    if (was !== is) {
      problems.push({
        path,
        message: `changed from ${shown(was)} to ${shown(is)}: needs a restart (a reload keeps ` +
          `the running value; revert it to reload the rest)`,
      });
    }
  };
  const a = before.server;
  const b = after.server;
  check("server.workers", a.workers, b.workers);
  check("server.reuse_port", a.reusePort, b.reusePort);
  check("server.upstream_client", a.upstreamClient, b.upstreamClient);
  check("admin", before.admin === undefined, after.admin === undefined);
  if (before.admin !== undefined && after.admin !== undefined) {
    check("admin.listen", before.admin.listen.text, after.admin.listen.text);
    if (before.admin.token !== after.admin.token) {
      problems.push({ path: "admin.token", message: "changed: needs a restart" });
    }
  }
  check("log.access", before.log.file ?? before.log.access, after.log.file ?? after.log.access);
  check("log.format", before.log.format, after.log.format);
  return problems;
}

/** The certificate and key themselves: a renewed certificate is a change too. */
function tlsKey(tls: GatewayConfig["server"]["tls"]): unknown {
  return tls === undefined ? null : [tls.certFile, tls.keyFile, tls.cert, tls.key];
}

/** A value for a message; the token is never shown. */
function shown(json: string): string {
  return json.length > 60 ? "(another value)" : json;
}
