/**
 * What `--check` prints for a valid config: the normalized settings, each upstream's servers with
 * their cookie values, and the routes.
 *
 * @module
 */
import { formatDuration } from "./duration.ts";
import { formatSize } from "./size.ts";
import type { GatewayConfig, ServerSettings, Sticky, Upstream, UpstreamTls } from "./types.ts";

/** The `--check` summary, one line per setting group, server and route (no trailing newline). */
export function checkSummary(config: GatewayConfig): string {
  const s = config.server;
  const lines = [
    `${config.file}: ok`,
    `listen ${s.listen.text} (workers ${s.workers}, connect_timeout ${
      formatDuration(s.connectTimeoutMs)
    }, read_timeout ${formatDuration(s.readTimeoutMs)}, grace_period ${
      formatDuration(s.gracePeriodMs)
    }, upstream_client ${s.upstreamClient})`,
    limitsLine(s),
  ];
  if (s.tls !== undefined) {
    lines.push(
      `tls cert ${s.tls.certFile}, key ${s.tls.keyFile} (HTTPS; HTTP/2 where the runtime offers it)`,
    );
  }
  for (const upstream of config.upstreams.values()) lines.push(...upstreamLines(upstream));
  lines.push("routes:");
  for (const route of config.routes.list) {
    lines.push(
      `  ${route.host ?? "*"}${route.path} -> ${route.upstream.name}${
        route.noFallback ? " (no_fallback)" : ""
      }`,
    );
  }
  return lines.join("\n");
}

function limitsLine(s: ServerSettings): string {
  const duration = (ms: number, zero: string) => ms === 0 ? `0 (${zero})` : formatDuration(ms);
  return `limits: idle_timeout ${duration(s.idleTimeoutMs, "none")}, client_max_body_size ${
    s.clientMaxBodySize === 0 ? "0 (none)" : formatSize(s.clientMaxBodySize)
  }, client_max_header_size ${formatSize(s.clientMaxHeaderSize)}, client_header_timeout ${
    formatDuration(s.clientHeaderTimeoutMs)
  }, keepalive_timeout ${duration(s.keepaliveTimeoutMs, "never")}, max_connections ${
    s.maxConnections === 0 ? "0 (none)" : s.maxConnections
  }`;
}

/** How the upstream keeps clients: no sticky, a cookie (and how), routes. */
function stickyText(sticky: Sticky | undefined): string {
  if (sticky === undefined) return "round robin (no sticky)";
  const flags: string[] = [];
  if (sticky.legacyServerByValue !== undefined) flags.push("accept_legacy");
  if (sticky.routeFrom !== undefined) {
    flags.push(`route_from ${sticky.routeFrom.map((s) => `${s.kind}:${s.name}`).join(", ")}`);
  }
  if (sticky.noFallback) flags.push("no_fallback");
  if (sticky.header !== undefined) flags.push(`header ${sticky.header.name}`);
  if (sticky.hideCookie !== undefined) flags.push("indirect");
  const more = flags.length === 0 ? "" : `, ${flags.join(", ")}`;
  if (sticky.cookie === false) return `sticky route (no cookie of its own${more})`;
  const how = sticky.token !== undefined
    ? tokenText(sticky.token)
    : sticky.format === "nginx"
    ? "nginx format"
    : sticky.mode;
  return `sticky cookie "${sticky.name}" (${how}${more})`;
}

/** Token mode: key ids (never a secret), where they come from, the lifetimes. */
function tokenText(token: NonNullable<Sticky["token"]>): string {
  const { maxIdleS, maxLifeS, clockSkewS } = token.lifetimes;
  const life = (s: number) => s === 0 ? "none" : formatDuration(s * 1000);
  return `signed tokens, keys ${token.keyIds.join(", ")} from ${token.source} (${
    token.keyIds[0]
  } signs), max_idle ${life(maxIdleS)}, max_life ${life(maxLifeS)}, clock_skew ${
    formatDuration(clockSkewS * 1000)
  }`;
}

function upstreamLines(upstream: Upstream): string[] {
  const sticky = upstream.sticky;
  const lines = [`upstream ${upstream.name}: ${stickyText(sticky)}`];
  if (upstream.tls !== undefined) lines.push(`  ${describeUpstreamTls(upstream.tls)}`);
  // DNS entries: resolved when serving (and then listed among the servers); --check asks none.
  for (const entry of upstream.dns ?? []) {
    const target = entry.type === "SRV" ? entry.name : `${entry.name}:${entry.port}`;
    lines.push(
      `  dns ${entry.type} ${target} every ${formatDuration(entry.intervalMs)}${
        entry.vanishGraceMs > 0 ? `, vanish_grace ${formatDuration(entry.vanishGraceMs)}` : ""
      }, max_servers ${entry.maxServers} (resolved when serving: --check asks no DNS)`,
    );
  }
  for (const server of upstream.servers) {
    const flags = [
      `weight=${server.weight}`,
      `max_fails=${server.maxFails}`,
      `fail_timeout=${formatDuration(server.failTimeoutMs)}`,
    ];
    if (server.backup) flags.push("backup");
    // `down = true` shows as maint: the state's one name (the admin API's too).
    if (server.state !== "ready") flags.push(server.state);
    if (server.route !== undefined) flags.push(`route=${server.route}`);
    const id = server.id === server.address.text ? "" : ` (id ${server.id})`;
    const cookie = sticky === undefined || sticky.cookie === false || sticky.token !== undefined
      ? ""
      : `  ${sticky.name}=${server.cookieValue}`;
    lines.push(`  ${server.address.text}${id}  ${flags.join(" ")}${cookie}`);
  }
  return lines;
}

function describeUpstreamTls(tls: UpstreamTls): string {
  const verify = tls.insecure
    ? "certificate NOT verified (insecure)"
    : `certificate verified against ${tls.caFile ?? "the runtime's root CAs"}`;
  return `https: ${verify}${tls.sni === undefined ? "" : `, sni ${tls.sni}`}`;
}
