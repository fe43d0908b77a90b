/**
 * The validated, immutable config snapshot. Everything a request needs is prepared here when the
 * config loads (cookie values, Set-Cookie templates, lookup maps, the route table); a request only
 * looks things up. A reload builds a new snapshot; nothing keeps config outside it.
 *
 * @module
 */
import type { Address } from "./address.ts";
import type { CookieValueMode } from "../cookie/value.ts";
import type { CookieFormat, SetCookieTemplate } from "../cookie/set_cookie.ts";
import type { RouteTable } from "./routes.ts";
import type { LogSettings } from "./log.ts";
import type { AdminSettings } from "./admin.ts";
import type { HealthCheckSettings } from "./health.ts";
import type { DnsEntry } from "../discovery/types.ts";
import type { Keyring } from "../sticky/keyring.ts";
import type { TokenCheck, TokenLifetimes } from "../sticky/token_check.ts";

export type { AdminSettings, HealthCheckSettings, LogSettings };

export interface GatewayConfig {
  /** The file it was read from, for messages. */
  readonly file: string;
  readonly server: ServerSettings;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly routes: RouteTable;
  /** `[log]`: the access log (on by default, to stdout). */
  readonly log: LogSettings;
  /** `[admin]`: the admin listener (metrics, API, status page); absent = none. */
  readonly admin?: AdminSettings;
}

/** Which client talks to upstreams: see `src/proxy/transport.ts`. */
export type UpstreamClient = "auto" | "http1" | "fetch";

export interface ServerSettings {
  readonly listen: Address;
  /** Upstream connect limit: after it, 504. */
  readonly connectTimeoutMs: number;
  /** Limit for the upstream's response headers once the request is sent: after it, 504. */
  readonly readTimeoutMs: number;
  /** On SIGTERM/SIGINT, how long in-flight requests may take before the process exits. */
  readonly gracePeriodMs: number;
  /** After a reload, how long requests, streams and WebSockets of an older generation may still
   * run before they are cut; 0 = as long as they last (the default). */
  readonly reloadMaxAgeMs: number;
  /** The least time from the end of one reload to the start of the next (a storm's throttle;
   * src/reload/reloader.ts): what is asked for meanwhile joins that next reload. */
  readonly reloadThrottleMs: number;
  /** Bind the listener with SO_REUSEPORT even with one worker (HAProxy's default), so a new
   * process can bind the same port before the old one stops: a restart without refused
   * connections. */
  readonly reusePort: boolean;
  readonly upstreamClient: UpstreamClient;
  /** Listeners sharing the port (SO_REUSEPORT), one per thread; default: the number of cores.
   * They share one state: server states, health, the round-robin sequence (src/state/). */
  readonly workers: number;
  /** No bytes moving on a request or response body for this long cuts it; 0 = no limit. */
  readonly idleTimeoutMs: number;
  /** Request bodies larger than this are refused with 413; 0 = no limit. */
  readonly clientMaxBodySize: number;
  /** Request heads (request line and headers) larger than this are refused with 431. */
  readonly clientMaxHeaderSize: number;
  /** A request head must arrive whole within this (from its first byte, or the connection's
   * start): else 408 and the connection closes. nginx `client_header_timeout`. */
  readonly clientHeaderTimeoutMs: number;
  /** An idle keep-alive client connection closes after this; 0 = never. nginx
   * `keepalive_timeout`. */
  readonly keepaliveTimeoutMs: number;
  /** Open client connections per listener (per worker) beyond which new ones are refused;
   * 0 = no limit. */
  readonly maxConnections: number;
  /** HTTPS (and HTTP/2 by ALPN) when `[server] tls` is set; absent = plain HTTP. */
  readonly tls?: ServerTls;
  /** `[server] resolver`: the DNS servers `dns` entries ask (`ip` or `ip:port`); absent = the
   * system's (/etc/resolv.conf). */
  readonly resolver?: readonly string[];
}

/** `[server] tls = { cert, key }`: the files' PEM text, read (and checked) at config load. */
export interface ServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate chain, leaf first. */
  readonly cert: string;
  readonly key: string;
}

/** `[upstreams.NAME] tls = true` and its options; shared by the upstream's servers. */
export interface UpstreamTls {
  /** PEM text of `ca` (the only roots trusted for this upstream); absent = the runtime's roots. */
  readonly ca?: string;
  readonly caFile?: string;
  /** No certificate verification (`insecure = true`). */
  readonly insecure: boolean;
  /** Name sent as SNI and checked in the certificate; absent = the address's host. */
  readonly sni?: string;
  /** Separates pooled connections by TLS settings (and from plain ones). */
  readonly poolKey: string;
}

export interface Upstream {
  readonly name: string;
  /** All servers in config order; `Server.index` is the position here. */
  readonly servers: readonly Server[];
  readonly primaries: readonly Server[];
  readonly backups: readonly Server[];
  /** Absent when the upstream has no `[upstreams.NAME.sticky]` table. */
  readonly sticky?: Sticky;
  /** Absent for plain HTTP upstreams. */
  readonly tls?: UpstreamTls;
  /** `[upstreams.NAME.health]`: active health checks; absent = passive health only. */
  readonly health?: HealthCheckSettings;
  /** Its `dns` server entries (src/discovery/): their servers are in `servers`, expanded from
   * the answers the snapshot was parsed with; absent = none. */
  readonly dns?: readonly DnsEntry[];
}

/**
 * A server's administrative state (HAProxy's): `ready` takes new clients; `drain` keeps serving
 * the clients whose cookie names it but gets no new ones; `maint` gets no traffic at all (its
 * clients are re-pinned, or refused under `no_fallback`), as nginx's `down`.
 */
export type ServerState = "ready" | "drain" | "maint";

export interface Server {
  /** Position in `Upstream.servers`: the index of per-server state arrays. */
  readonly index: number;
  /** `id = "…"`, else the address text: unique in its upstream, the server's name in logs,
   * metrics and admin URLs (so only `[A-Za-z0-9._:@\-\[\]]`). Never part of the cookie value. */
  readonly id: string;
  /** Address as written: the cookie value's input, and what logs show. */
  readonly address: Address;
  readonly weight: number;
  /** 0 turns passive health off for this server. */
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  readonly backup: boolean;
  /** The state at start (`state = "…"`; `down = true` is `maint`). The balancer holds the live
   * state, which a later admin API may change without a new snapshot. */
  readonly state: ServerState;
  /** `state` is `maint` (nginx's `down` spelling of it). */
  readonly down: boolean;
  /** The file says `state` or `down` for this server: on reload, the file's state replaces the
   * one the admin API set (otherwise that one is kept). Absent in hand-made snapshots = false. */
  readonly stateSet?: boolean;
  /** `route = "node1"` (nginx `server … route=`): what `route_from` values name, and under
   * `format = "nginx"` the cookie value. */
  readonly route?: string;
  /** This server's sticky cookie value, or "" when the upstream is not sticky (or sets no cookie:
   * `cookie = false`). */
  readonly cookieValue: string;
  /** This server's Set-Cookie, prepared (only the Expires date is added per response); absent
   * when the upstream sets no cookie. */
  readonly setCookie?: SetCookieTemplate;
  /** The upstream's TLS settings; absent for plain HTTP (the cookie value never depends on it). */
  readonly tls?: UpstreamTls;
}

export interface Sticky {
  readonly name: string;
  /** `name` in lower case: nginx compares cookie names case-insensitively. */
  readonly lowerName: string;
  readonly mode: CookieValueMode;
  readonly noFallback: boolean;
  /** Cookie value → server, built at load (for `index` mode the keys are "0", "1", …; under
   * `format = "nginx"` every resolved address's value of a server names it). */
  readonly serverByValue: ReadonlyMap<string, Server>;
  /** `cookie = false`: no cookie of its own (nginx `sticky route`): none read, none set. Absent
   * (hand-made snapshots) = true. */
  readonly cookie?: boolean;
  /** Whose values and Set-Cookie bytes; absent = `module`. */
  readonly format?: CookieFormat;
  /** `format = "nginx"`: a Set-Cookie on every response, a valid cookie's too (as nginx). */
  readonly alwaysSetCookie?: boolean;
  /** `accept_legacy = true`: 1.2.x module values → server (re-issued in the current format). */
  readonly legacyServerByValue?: ReadonlyMap<string, Server>;
  /** `route_from`, in order; absent = no route stickiness. */
  readonly routeFrom?: readonly RouteSource[];
  /** `route_delimiter`: the route is what follows its last occurrence; "" = the whole value. */
  readonly routeDelimiter?: string;
  /** Server `route` → server, built at load. */
  readonly serverByRoute?: ReadonlyMap<string, Server>;
  /** `mode = "token"`: signed tokens instead of fixed values (src/sticky/token.ts); absent =
   * the module's values. */
  readonly token?: StickyToken;
  /** `header = "X-Session-Id"`: clients without the cookie are placed by rendezvous hashing of
   * this header's value; absent = no header stickiness. */
  readonly header?: StickyHeader;
  /** `indirect = true`: the cookie's lower-case name, removed from the `Cookie` header sent
   * upstream; absent = the cookie reaches the upstream. */
  readonly hideCookie?: string;
}

/** `mode = "token"`: the keys, the lifetimes and the check of this snapshot. */
export interface StickyToken {
  /** The upstream's name: tokens are signed for it. */
  readonly upstream: string;
  readonly keyring: Keyring;
  /** Key ids in file order (the first signs): what messages and --check show. */
  readonly keyIds: readonly string[];
  /** Where the keys came from (`keys_file = "…"` or `keys_env = "…"`), for messages. */
  readonly source: string;
  readonly lifetimes: TokenLifetimes;
  /** Verifies tokens and remembers verified ones: one per snapshot (a reload starts anew). */
  readonly check: TokenCheck<Server>;
}

/** `header = "NAME"`: where header stickiness reads and which servers it may choose. */
export interface StickyHeader {
  /** As written. */
  readonly name: string;
  readonly lowerName: string;
  readonly primaries: readonly Server[];
  readonly backups: readonly Server[];
}

/** Where a route is read: `cookie:NAME`, `query:NAME`, `header:NAME` (nginx `$cookie_NAME`,
 * `$arg_NAME`, `$http_NAME`). */
export interface RouteSource {
  readonly kind: "cookie" | "query" | "header";
  /** As written in `route_from`. */
  readonly name: string;
  /** Lower case: each source compares names case-insensitively, as nginx does. */
  readonly lowerName: string;
}

export interface Route {
  /** Lower-case host without port, or undefined for any host. */
  readonly host?: string;
  /** Path prefix; the longest matching prefix wins. */
  readonly path: string;
  readonly upstream: Upstream;
  readonly noFallback: boolean;
}
