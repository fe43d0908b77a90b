/**
 * Config files for the bench: the upstream nginx (on the load core) and every proxy under test.
 * Every proxy gets the same three upstreams; "fair" settings are spelled out where a default
 * would handicap one side (keep-alive to upstreams, keepalive_requests, buffering to disk).
 *
 * @module
 */

/** Fixed loopback ports, all below the ephemeral range. BENCH_PORT_BASE moves them. */
export interface Ports {
  readonly host: string;
  /** The proxy under test. */
  readonly proxy: number;
  /** The three upstreams (16-byte body; /big for the streaming download). */
  readonly upstreams: readonly number[];
  /** Upload sink (counts and checksums request bodies). */
  readonly sink: number;
  /** First of the 1,000 extra live upstream ports (scale bench). */
  readonly scaleBase: number;
  /** First of the 997 addresses marked `down` (never contacted). */
  readonly downBase: number;
  /** The gateway's admin listener (scenario "metrics"). */
  readonly admin: number;
  /** First of the ports the phases of bench/phases/ may use for their own upstreams and
   * clients (tls +0..9, ws +10..19, streams +20..29, idle +30..39). */
  readonly phaseBase: number;
}

export function ports(base: number): Ports {
  return {
    host: "127.0.0.1",
    proxy: base + 80,
    upstreams: [base + 101, base + 102, base + 103],
    sink: base + 110,
    scaleBase: base + 1000,
    downBase: base + 2000,
    admin: base + 90,
    phaseBase: base + 120,
  };
}

export const BODY = "0123456789abcdef"; // the 16-byte response of every upstream

/**
 * Scenarios. "main": 3 servers, 1 route (every target). "stream": main plus a route to the sink.
 * Gateway only: "servers1000" (1,000 live servers), "servers1000down" (3 live + 997 `down`),
 * "routes500" (500 routes, the request matches the last one). "admin": main with the admin
 * listener (which also turns on the per-request metrics it serves), asked nothing: the reload
 * storm's steady state, run only as its companion (report.ts COMPANIONS), so the storm's cost is
 * the storm's alone, not the admin listener's.
 */
export type Scenario =
  | "main"
  | "stream"
  | "servers1000"
  | "servers1000down"
  | "routes500"
  | "log"
  | "metrics"
  | "reloads"
  | "admin"
  | "static200"
  | "dns200"
  | "token";

/** Gateway-only scenarios of "main" with an operations feature on (issue 9's costs): "log",
 * the access log to a file; "metrics", the admin listener scraped every second; "reloads", a
 * reload storm (issue 10: the file rewritten and reloaded through the API back to back for the
 * whole run, the default `reload_throttle` pacing it). Every other scenario runs the gateway with the access log off, as HAProxy and
 * nginx run here. */
export const OPS_SCENARIOS: readonly Scenario[] = ["log", "metrics", "reloads"];

/** Issue 13's DNS row: "dns200", an upstream of 200 servers found through DNS (dnsmasq started
 * by the bench, `interval = "1s"`: re-resolved every second for the whole run), against
 * "static200", the same 200 servers listed; ≤ 3% req/s apart. The 200 are the first scale ports
 * on 127.0.0.1, as 200 SRV records (each a port; their one target's A record is asked too: every
 * second, two questions, 200 records over TCP). */
export const DNS_SCENARIOS: readonly Scenario[] = ["static200", "dns200"];
export const DNS_SERVERS = 200;
export const DNS_NAME = "_http._tcp.bench.internal";
const DNS_TARGET = "up.bench.internal";

/** The hosts lines dnsmasq answers the SRV records' target from. */
export function dnsHosts(): string[] {
  return [`127.0.0.1 ${DNS_TARGET}`];
}

/** dnsmasq's `srv-host` values: one record per server (name, target, port, priority, weight). */
export function dnsSrv(p: Ports): string[] {
  return Array.from(
    { length: DNS_SERVERS },
    (_, i) => `${DNS_NAME},${DNS_TARGET},${p.scaleBase + i},10,1`,
  );
}

/** Issue 12's row: "token", main with signed tokens (`mode = "token"`, `max_idle = "30m"`, keys
 * from {@link TOKEN_KEYS_FILE} in the bench's temp directory), against main's md5 values: ≤ 5%
 * below. With the cookie present every request verifies a remembered token; absent, each
 * response signs a new one. */
export const TOKEN_SCENARIO: Scenario = "token";
/** The keys file's name in the temp directory (written by bench/run.ts). */
export const TOKEN_KEYS_FILE = "sticky.keys";
/** A key for the bench only (never a secret of anyone's). */
export const TOKEN_KEYS_TEXT = `bench:${"sticky-gateway-bench-key-".repeat(2)}\n`;

export const SCALE_SERVERS = 1000;
export const SCALE_ROUTES = 500;
/** Where the 3 live servers sit among the 1,000 in "servers1000down" (spread, not first). */
export const LIVE_AT = [0, 333, 666];

export function requestPath(scenario: Scenario): string {
  return scenario === "routes500" ? `/svc${String(SCALE_ROUTES - 1).padStart(3, "0")}/item` : "/";
}

/** Ports a response may come from (X-Upstream) in a scenario. */
export function servingPorts(scenario: Scenario, p: Ports): Set<number> {
  if (scenario === "servers1000") {
    return new Set(Array.from({ length: SCALE_SERVERS }, (_, i) => p.scaleBase + i));
  }
  if (DNS_SCENARIOS.includes(scenario)) {
    return new Set(Array.from({ length: DNS_SERVERS }, (_, i) => p.scaleBase + i));
  }
  return new Set(p.upstreams);
}

export function upstreamNginx(
  dir: string,
  dataDir: string,
  p: Ports,
  scale: boolean,
  dns = false,
): string {
  const listens = [...p.upstreams];
  // DNS_SCENARIOS use the first 200 scale ports.
  const extra = scale ? SCALE_SERVERS : dns ? DNS_SERVERS : 0;
  for (let i = 0; i < extra; i++) listens.push(p.scaleBase + i);
  return `# Upstreams for every target: one nginx worker (pinned to the load core with wrk).
worker_processes 1;
pid ${dir}/upstream.pid;
error_log ${dir}/upstream.error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/plain;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/upstream_body;
  proxy_temp_path ${dir}/upstream_proxy;
  server {
${listens.map((port) => `    listen ${p.host}:${port};`).join("\n")}
    add_header X-Upstream $server_port always;
    location / { return 200 "${BODY}"; }
    location = /big { root ${dataDir}; }
  }
}
`;
}

function serverList(scenario: Scenario, p: Ports): string {
  const q = (port: number) => `"${p.host}:${port}"`;
  if (scenario === "servers1000") {
    return Array.from({ length: SCALE_SERVERS }, (_, i) => `  ${q(p.scaleBase + i)},`).join("\n");
  }
  if (scenario === "servers1000down") {
    return Array.from({ length: SCALE_SERVERS }, (_, i) => {
      const live = LIVE_AT.indexOf(i);
      return live >= 0
        ? `  ${q(p.upstreams[live])},`
        : `  { address = ${q(p.downBase + i)}, down = true },`;
    }).join("\n");
  }
  if (scenario === "static200") {
    return Array.from({ length: DNS_SERVERS }, (_, i) => `  ${q(p.scaleBase + i)},`).join("\n");
  }
  if (scenario === "dns200") {
    return `  { dns = "${DNS_NAME}", type = "SRV", interval = "1s", max_servers = 256 },`;
  }
  return p.upstreams.map((port) => `  ${q(port)},`).join("\n");
}

export function gatewayToml(
  scenario: Scenario,
  p: Ports,
  extraServer: string,
  logFile = "/dev/null",
  keysFile = TOKEN_KEYS_FILE,
): string {
  let routes = "";
  let sink = "";
  if (scenario === "stream") {
    sink = `\n[upstreams.sink]\nservers = ["${p.host}:${p.sink}"]\n`;
    routes =
      `\n[[routes]]\npath = "/"\nupstream = "app"\n\n[[routes]]\npath = "/upload"\nupstream = "sink"\n`;
  } else if (scenario === "routes500") {
    const list = [`[[routes]]\npath = "/"\nupstream = "app"\n`];
    for (let i = 1; i < SCALE_ROUTES; i++) {
      list.push(`[[routes]]\npath = "/svc${String(i).padStart(3, "0")}/"\nupstream = "app"\n`);
    }
    routes = "\n" + list.join("\n");
  }
  return `# generated by bench/run.ts (scenario ${scenario})
[server]
listen = "${p.host}:${p.proxy}"
grace_period = "1s"
read_timeout = "300s"
${extraServer}
[upstreams.app]
servers = [
${serverList(scenario, p)}
]

[upstreams.app.sticky]
name = "route"
${
    scenario === "token"
      ? `mode = "token"\nkeys_file = "${keysFile}"\nmax_idle = "30m"\n`
      : ""
  }${sink}${routes}
${opsToml(scenario, p, logFile)}`;
}

function opsToml(scenario: Scenario, p: Ports, logFile: string): string {
  if (scenario === "log") return `[log]\naccess = "${logFile}"\n`;
  const off = `[log]\naccess = "off"\n`;
  if (scenario === "metrics" || scenario === "reloads" || scenario === "admin") {
    return `${off}\n[admin]\nlisten = "${p.host}:${p.admin}"\n`;
  }
  return off;
}

export function haproxyCfg(scenario: Scenario, p: Ports): string {
  const stream = scenario === "stream";
  return haproxyConfig({
    p,
    by: "bench/run.ts",
    servers: haproxyServerPorts(scenario, p),
    frontend: stream ? ["use_backend sink if { path_beg /upload }"] : [],
    backends: stream ? `\nbackend sink\n  server sink ${p.host}:${p.sink}\n` : "",
  });
}

/** What differs between the HAProxy configs of the bench and its phases. */
export interface HaproxyShape {
  readonly p: Ports;
  /** The file that generated it (a comment line). */
  readonly by: string;
  /** Ports of the `app` backend's servers on p.host (cookie s1, s2, …). */
  readonly servers: readonly number[];
  /** After the `bind` address (e.g. `ssl crt … alpn h2,http/1.1`). */
  readonly bind?: string;
  /** Global settings besides `nbthread 1` (default `maxconn 4096`). */
  readonly global?: readonly string[];
  /** Timeouts besides the usual ones (e.g. `timeout tunnel 300s`). */
  readonly defaults?: readonly string[];
  /** Frontend lines before `default_backend app`. */
  readonly frontend?: readonly string[];
  /** More backends, as text. */
  readonly backends?: string;
}

/**
 * HAProxy as every table compares it: one thread, keep-alive both sides, round robin over the
 * servers with `cookie SRV insert indirect nocache`, long client and server timeouts.
 */
export function haproxyConfig(shape: HaproxyShape): string {
  const { p } = shape;
  const lines = (list: readonly string[] | undefined) =>
    (list ?? []).map((l) => `  ${l}\n`).join("");
  return `# generated by ${shape.by}: HAProxy, one thread, cookie insert
global
  nbthread 1
${lines(shape.global ?? ["maxconn 4096"])}
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 10s
  timeout http-keep-alive 300s
${lines(shape.defaults)}
frontend fe
  bind ${p.host}:${p.proxy}${shape.bind === undefined ? "" : ` ${shape.bind}`}
${lines(shape.frontend)}  default_backend app

backend app
  balance roundrobin
  cookie SRV insert indirect nocache
${
    shape.servers.map((port, i) => `  server s${i + 1} ${p.host}:${port} cookie s${i + 1}`).join(
      "\n",
    )
  }
${shape.backends ?? ""}`;
}

/** The 3 upstreams, or (scale reference) the 1,000 live ones. */
function haproxyServerPorts(scenario: Scenario, p: Ports): number[] {
  return scenario === "servers1000"
    ? Array.from({ length: SCALE_SERVERS }, (_, i) => p.scaleBase + i)
    : [...p.upstreams];
}

export function nginxProxyConf(scenario: Scenario, p: Ports, dir: string): string {
  const stream = scenario === "stream";
  return `# generated by bench/run.ts: nginx round robin (no stickiness), keep-alive to the upstreams
worker_processes 1;
pid ${dir}/proxy-nginx.pid;
error_log ${dir}/proxy-nginx.error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/proxy_body;
  proxy_temp_path ${dir}/proxy_temp;
  upstream app {
${p.upstreams.map((port) => `    server ${p.host}:${port};`).join("\n")}
    keepalive 128;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }
${
    stream
      ? `  upstream sink {\n    server ${p.host}:${p.sink};\n    keepalive 16;\n  }\n`
      : ""
  }  server {
    listen ${p.host}:${p.proxy};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 300s;
    # Stream large bodies through memory buffers instead of spooling them to disk.
    proxy_max_temp_file_size 0;
    location / { proxy_pass http://app; }
${
    stream
      ? "    location /upload { proxy_pass http://sink; proxy_request_buffering off; client_max_body_size 0; }\n"
      : ""
  }  }
}
`;
}

export function caddyfile(scenario: Scenario, p: Ports): string {
  const stream = scenario === "stream";
  return `# generated by bench/run.ts: Caddy reverse_proxy, lb_policy cookie
{
  admin off
  auto_https off
  grace_period 1s
}
http://${p.host}:${p.proxy} {
${stream ? `  reverse_proxy /upload* ${p.host}:${p.sink}\n` : ""}  reverse_proxy ${
    p.upstreams.map((port) => `${p.host}:${port}`).join(" ")
  } {
    lb_policy cookie route
  }
}
`;
}
