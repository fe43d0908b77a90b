/**
 * What the admin listener reads from the running gateway (and the one thing it may change): the
 * {@link AdminView}. The gateway implements it over its config snapshot, the shared server state
 * and the metrics; the admin module never reaches into the request path itself.
 *
 * @module
 */
import type { ServerState } from "../../config/types.ts";
import type { StickyOutcome } from "../../sticky/resolve.ts";
import { STICKY_OUTCOMES } from "../metrics/layout.ts";

/** The sticky outcomes a server counts (all but `none`). */
export type CountedOutcome = Exclude<StickyOutcome, "none">;

/**
 * Sticky decisions counted for one server, by the access log's words (README, "Access log"):
 * `hit` (a valid cookie named it), `new` (balanced there without a cookie), `repin` (its cookie's
 * server could not serve), `invalid`, `refused` (`no_fallback`), `legacy`, `route`, ….
 */
export type StickyCounts = Readonly<Record<CountedOutcome, number>>;

/**
 * Counts with every outcome present: zeros but for `some`.
 *
 * @example
 * ```ts
 * import { stickyCounts } from "./view.ts";
 * if (stickyCounts({ hit: 2 }).new !== 0) throw new Error();
 * ```
 */
export function stickyCounts(some: Partial<StickyCounts> = {}): StickyCounts {
  const counts = {} as Record<CountedOutcome, number>;
  for (const outcome of STICKY_OUTCOMES) {
    if (outcome !== "none") counts[outcome] = some[outcome] ?? 0;
  }
  return counts;
}

/** A server's health as the balancer sees it. */
export interface ServerHealth {
  /** `failed`: max_fails reached within fail_timeout (passive health). */
  readonly passive: "ok" | "failed";
  /** Active health checks: `unchecked` (the upstream has none: counts as up), `unknown`
   * (none concluded yet: no traffic), `up`, `down`. */
  readonly active: "unchecked" | "unknown" | "up" | "down";
  /** Recent active check results, oldest first (true = passed); empty without checks. */
  readonly history: readonly boolean[];
}

/**
 * Request durations in Prometheus histogram form: `counts[i]` requests took at most
 * `boundsMs[i]` (cumulative); the last bound is `Infinity` (every request). Totals since start;
 * the admin module takes differences over time for recent percentiles.
 */
export interface LatencyHistogram {
  readonly boundsMs: readonly number[];
  readonly counts: readonly number[];
}

/** One server's live status, as the view reports it. */
export interface ServerStatus {
  /** `Server.id`: the name in the API's URLs. */
  readonly id: string;
  /** The address as written in the config. */
  readonly address: string;
  /** The sticky cookie value naming this server; "" when the upstream is not sticky. */
  readonly cookieValue: string;
  readonly backup: boolean;
  readonly weight: number;
  /** The admin state now (the config's, or the last one set through the API). */
  readonly state: ServerState;
  readonly health: ServerHealth;
  /** Requests in flight on this server now (all workers). */
  readonly inFlight: number;
  /** Requests this server answered since start (all workers). */
  readonly requests: number;
  /** Its request durations; null when they are not measured per server. */
  readonly latency: LatencyHistogram | null;
  readonly sticky: StickyCounts;
  /** When a request last came with a cookie naming this server (ms since the epoch), or null. */
  readonly lastStickyMs: number | null;
}

/** One upstream's live status. */
export interface UpstreamStatus {
  readonly name: string;
  /** The sticky cookie's name; null when the upstream is not sticky. */
  readonly stickyCookie: string | null;
  /** In config order. */
  readonly servers: readonly ServerStatus[];
}

/** What `setServerState` did: `ok`, or which name was unknown. */
export type SetStateResult = "ok" | "no_upstream" | "no_server";

/** The running gateway as the admin listener sees it. Every call reads the state of now. */
export interface AdminView {
  /** Every upstream of the config snapshot in use, in config order. */
  upstreams(): readonly UpstreamStatus[];
  /** Sets a server's admin state for every worker (until the next one, or a restart). */
  setServerState(upstream: string, id: string, state: ServerState): SetStateResult;
  /** The Prometheus text exposition (format 0.0.4). */
  metricsText(): string;
  /** Every upstream has a server that can take a new client (Kubernetes readiness). */
  ready(): boolean;
  /** When not ready: each upstream without such a server, and why (for `/readyz`). */
  unready?(): Readonly<Record<string, string>>;
  /** The process serves (Kubernetes liveness). */
  healthy(): boolean;
  /** Reloads the config file (`POST /api/v1/reload`); absent = the endpoint answers 404. */
  reload?(): Promise<ReloadAnswer>;
}

/**
 * What a reload did: the new generation and the servers added, removed and changed per upstream
 * (server ids by upstream name), or every problem that kept the running config.
 */
export type ReloadAnswer =
  | {
    readonly ok: true;
    readonly generation: number;
    /** Where the client listener moved to (`host:port` as bound), when the reload moved it. */
    readonly listen?: string;
    readonly changes: {
      readonly added: Readonly<Record<string, readonly string[]>>;
      readonly removed: Readonly<Record<string, readonly string[]>>;
      readonly changed: Readonly<Record<string, readonly string[]>>;
    };
  }
  | {
    readonly ok: false;
    readonly generation: number;
    readonly problems: readonly { readonly path: string; readonly message: string }[];
  };
