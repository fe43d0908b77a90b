/**
 * What the importer says about the directives it does not carry: a note where nothing changes
 * for clients (process settings the gateway handles itself, headers it sets anyway), a warning
 * where behaviour differs, with the reason either way.
 *
 * @module
 */
import type { Notes } from "./model.ts";
import type { Directive } from "./reader.ts";

type Verdict = readonly ["note" | "warning", string];

const NOTE_REASONS: Record<string, string> = {
  user: "the gateway runs as the user that starts it",
  pid: "the gateway writes no pid file",
  daemon: "the gateway runs in the foreground (use systemd or a container)",
  master_process: "the gateway is one process",
  worker_rlimit_nofile: "set the open-file limit where the gateway starts (ulimit, systemd)",
  worker_cpu_affinity: "not applicable",
  worker_priority: "not applicable",
  error_log: "the gateway writes its events as JSON lines on stderr",
  pcre_jit: "not applicable",
  env: "not applicable",
  thread_pool: "not applicable",
  load_module: "stickiness is built into the gateway",
  events: "the gateway's event loop needs no settings",
  lock_file: "not applicable",
  timer_resolution: "not applicable",
  types: "MIME types only matter for files nginx serves itself",
  default_type: "MIME types only matter for files nginx serves itself",
  types_hash_max_size: "not applicable",
  types_hash_bucket_size: "not applicable",
  server_names_hash_bucket_size: "not applicable",
  server_names_hash_max_size: "not applicable",
  variables_hash_max_size: "not applicable",
  variables_hash_bucket_size: "not applicable",
  map_hash_bucket_size: "not applicable",
  map_hash_max_size: "not applicable",
  proxy_headers_hash_max_size: "not applicable",
  proxy_headers_hash_bucket_size: "not applicable",
  sendfile: "a proxy's bodies do not come from files",
  tcp_nopush: "socket tuning",
  tcp_nodelay: "socket tuning",
  log_format: "the gateway's access log has its own formats ([log] format = json | combined)",
  log_not_found: "not applicable",
  server_tokens: "not applicable",
  ssl_session_cache: "TLS session tuning",
  ssl_session_timeout: "TLS session tuning",
  ssl_session_tickets: "TLS session tuning",
  ssl_buffer_size: "TLS tuning",
  ssl_prefer_server_ciphers: "TLS tuning",
  ssl_ecdh_curve: "TLS tuning",
  ssl_dhparam: "TLS tuning",
  ssl_stapling: "OCSP stapling",
  ssl_stapling_verify: "OCSP stapling",
  resolver: "the gateway resolves names with the system resolver",
  resolver_timeout: "the gateway resolves names with the system resolver",
  proxy_buffering: "the gateway streams responses; clients get the same bytes",
  proxy_buffers: "the gateway streams responses; clients get the same bytes",
  proxy_buffer_size: "the gateway streams responses; clients get the same bytes",
  proxy_busy_buffers_size: "the gateway streams responses; clients get the same bytes",
  proxy_max_temp_file_size: "the gateway streams responses; clients get the same bytes",
  proxy_temp_path: "the gateway streams responses; clients get the same bytes",
  proxy_request_buffering: "the gateway streams request bodies; the upstream gets the same bytes",
  client_body_buffer_size: "the gateway streams request bodies",
  client_body_temp_path: "the gateway streams request bodies",
  keepalive_requests: "the gateway has no per-connection request limit",
  reset_timedout_connection: "not applicable",
  open_file_cache: "not applicable",
  charset_types: "not applicable",
  http2: "with TLS the gateway offers HTTP/2 by ALPN",
  index: "only for files nginx serves itself",
  autoindex: "only for files nginx serves itself",
  sticky_hide_cookie: "the gateway never passes the backend's sticky cookie on",
};

const WARNING_REASONS: Record<string, string> = {
  access_log:
    "the gateway writes its own access log (stdout by default; [log] access = FILE, format = combined)",
  worker_connections:
    "[server] max_connections is a per-thread cap on client connections; set it yourself",
  multi_accept: "not applicable",
  rewrite: "the gateway does not rewrite URLs",
  return: "the gateway does not answer requests itself",
  if: "the gateway has no conditionals",
  set: "the gateway has no variables",
  root: "the gateway serves no files",
  alias: "the gateway serves no files",
  try_files: "the gateway serves no files",
  error_page: "the gateway answers errors with its own short text bodies",
  add_header: "the gateway adds no response headers",
  expires: "the gateway adds no caching headers",
  gzip: "the gateway does not compress (upstream compression passes through)",
  gzip_types: "the gateway does not compress",
  gzip_proxied: "the gateway does not compress",
  gzip_comp_level: "the gateway does not compress",
  gzip_vary: "the gateway does not compress",
  gzip_min_length: "the gateway does not compress",
  allow: "the gateway has no access control by address",
  deny: "the gateway has no access control by address",
  auth_basic: "the gateway has no authentication",
  auth_basic_user_file: "the gateway has no authentication",
  auth_request: "the gateway has no authentication",
  limit_req: "the gateway has no rate limits",
  limit_req_zone: "the gateway has no rate limits",
  limit_conn: "the gateway has no connection limits per key",
  limit_conn_zone: "the gateway has no connection limits per key",
  proxy_cache: "the gateway does not cache",
  proxy_cache_path: "the gateway does not cache",
  proxy_cache_valid: "the gateway does not cache",
  proxy_cache_key: "the gateway does not cache",
  proxy_cache_bypass: "the gateway does not cache",
  proxy_no_cache: "the gateway does not cache",
  proxy_cache_use_stale: "the gateway does not cache",
  proxy_cache_lock: "the gateway does not cache",
  proxy_hide_header: "the gateway passes every response header but hop-by-hop ones",
  proxy_pass_header: "the gateway passes every response header but hop-by-hop ones",
  proxy_ignore_headers: "not applicable without caching",
  proxy_intercept_errors: "the gateway passes upstream error pages on",
  proxy_cookie_path: "the gateway does not rewrite Set-Cookie",
  proxy_cookie_domain: "the gateway does not rewrite Set-Cookie",
  proxy_send_timeout: "the gateway cuts a request body silent for [server] idle_timeout instead",
  send_timeout: "the gateway cuts a response silent for [server] idle_timeout instead",
  client_body_timeout: "the gateway cuts a request body silent for [server] idle_timeout instead",
  proxy_next_upstream_tries: "the gateway tries each server at most once",
  proxy_next_upstream_timeout: "the gateway tries each server at most once",
  proxy_ssl_verify: "write ca = … or insecure = true in the upstream's table",
  proxy_ssl_trusted_certificate: "write ca = FILE in the upstream's table",
  proxy_ssl_name: "write sni = NAME in the upstream's table",
  proxy_ssl_server_name: "write sni = NAME in the upstream's table",
  proxy_ssl_certificate: "the gateway sends no client certificate",
  proxy_ssl_certificate_key: "the gateway sends no client certificate",
  proxy_ssl_protocols: "the runtime's TLS defaults apply",
  ssl_protocols: "the runtime's TLS defaults apply (TLS 1.2 and 1.3)",
  ssl_ciphers: "the runtime's TLS defaults apply",
  ssl_client_certificate: "the gateway does not verify client certificates",
  ssl_verify_client: "the gateway does not verify client certificates",
  real_ip_header: "the gateway takes the client address from the TCP peer",
  set_real_ip_from: "the gateway takes the client address from the TCP peer",
  large_client_header_buffers: "set [server] client_max_header_size (default 32k) yourself",
  charset: "the gateway does not change Content-Type",
  sub_filter: "the gateway does not change bodies",
  map: "the gateway has no variables",
  geo: "the gateway has no variables",
  split_clients: "the gateway has no variables",
  upstream_conf: "not applicable",
  health_check: "write [upstreams.NAME.health] (path, interval, rise, fall) for active checks",
  stream: "the gateway proxies HTTP only",
  mail: "the gateway proxies HTTP only",
  fastcgi_pass: "the gateway proxies HTTP only",
  uwsgi_pass: "the gateway proxies HTTP only",
  scgi_pass: "the gateway proxies HTTP only",
  grpc_pass: "the gateway proxies HTTP/1.1 to upstreams",
  memcached_pass: "the gateway proxies HTTP only",
};

/** nginx's own default for headers it sends upstream is Host: $proxy_host. */
function proxySetHeader(directive: Directive): Verdict {
  const [header, value] = directive.args.map((a) => a.value);
  const name = (header ?? "").toLowerCase();
  const same: Record<string, readonly string[]> = {
    host: ["$host", "$http_host"],
    "x-forwarded-for": ["$proxy_add_x_forwarded_for"],
    "x-forwarded-proto": ["$scheme"],
    "x-forwarded-host": ["$host", "$http_host"],
    upgrade: ["$http_upgrade"],
    connection: ["upgrade", "$connection_upgrade", ""],
    "x-request-id": ["$request_id"],
  };
  if (same[name]?.includes(value ?? "")) {
    return ["note", "the gateway sends this header this way by itself"];
  }
  return [
    "warning",
    "the gateway sets only Host (as the client sent it), X-Forwarded-For/-Proto/-Host and X-Request-Id",
  ];
}

function verdict(directive: Directive): Verdict {
  const name = directive.name;
  const first = directive.args[0]?.value;
  if (name === "proxy_set_header") return proxySetHeader(directive);
  if (name === "proxy_http_version") {
    return first === "1.1"
      ? ["note", "the gateway speaks HTTP/1.1 to upstreams"]
      : ["warning", "the gateway speaks HTTP/1.1 to upstreams"];
  }
  if (name === "proxy_redirect" && first === "off") {
    return ["note", "the gateway passes Location headers unchanged"];
  }
  if (name === "proxy_redirect") {
    return ["warning", "the gateway passes Location headers unchanged"];
  }
  if (name === "proxy_next_upstream") {
    return [
      "note",
      "the gateway tries the next server on connect errors (and timeouts before a byte of the request was read), like nginx's default",
    ];
  }
  if (name === "gzip" && first === "off") return ["note", "the gateway does not compress either"];
  if (name === "access_log" && first === "off") {
    return ["warning", 'write [log] access = "off" if you want no access log'];
  }
  if (name in NOTE_REASONS) return ["note", NOTE_REASONS[name]];
  if (name in WARNING_REASONS) return ["warning", WARNING_REASONS[name]];
  return ["warning", "the importer does not know this directive"];
}

/** Directives the importer reads itself (in the contexts where nginx allows them). */
const HANDLED = new Set([
  "http",
  "server",
  "location",
  "listen",
  "server_name",
  "proxy_pass",
  "sticky",
  "sticky_no_fallback",
  "ssl_certificate",
  "ssl_certificate_key",
  "ssl",
  "include",
  "upstream",
  "proxy_set_header",
  "proxy_http_version",
  "proxy_redirect",
  "proxy_next_upstream",
  "worker_processes",
  "proxy_connect_timeout",
  "proxy_read_timeout",
  "client_max_body_size",
  "keepalive_timeout",
  "client_header_timeout",
  "limit_except",
]);

/** Whether nginx (or a module the importer knows) has a directive of this name somewhere. */
export function isKnownDirective(name: string): boolean {
  return HANDLED.has(name) || name in NOTE_REASONS || name in WARNING_REASONS;
}

/** Records a directive the TOML does not carry, as a note or a warning with the reason. */
export function notCarried(directive: Directive, notes: Notes, context = ""): void {
  const [level, why] = verdict(directive);
  const text = [directive.name, ...directive.args.map((a) => a.value)].join(" ");
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  const what = level === "note" ? "no setting needed" : "not carried";
  const message = `${shown}${directive.block ? " { … }" : ""}${context}: ${what}: ${why}`;
  if (level === "note") notes.note(directive.at, message);
  else notes.warn(directive.at, message);
}
