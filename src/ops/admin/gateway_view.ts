/**
 * The {@link AdminView} of a running gateway: the config snapshot in use, the shared state every
 * worker thread writes (admin state, health, in-flight, last sticky request) and the metrics'
 * per-server totals. Everything is read when asked, nothing is kept; a reload that swaps the
 * snapshot (and its state) is seen at the next call.
 *
 * @module
 */
import type { GatewayConfig, ServerState, Upstream } from "../../config/types.ts";
import type { SharedState } from "../../state/shared_state.ts";
import { serverStatus } from "../../state/status.ts";
import type { DiscoveryFigure } from "../../discovery/discovery.ts";
import type {
  AdminView,
  LatencyHistogram,
  ReloadAnswer,
  ServerStatus,
  SetStateResult,
  StickyCounts,
  UpstreamStatus,
} from "./view.ts";
import { stickyCounts } from "./view.ts";

/** One server's counters over all threads since start (the metrics module's `serverTotals`). */
export interface ServerTotals {
  readonly requests: number;
  readonly latency: LatencyHistogram;
  /** Sticky decisions that ended on it, by outcome (other outcomes may be present). */
  readonly sticky: StickyCounts;
}

/** A state change made through the admin API, for the gateway's event log. */
export interface AdminStateChange {
  readonly upstream: string;
  readonly server: string;
  readonly from: ServerState;
  readonly to: ServerState;
  readonly reason: "admin api";
}

/** Where the view reads from; each is called when the view is asked. */
export interface GatewayViewSources {
  /** The config snapshot in use now. */
  readonly config: () => GatewayConfig;
  /** The shared state made for that snapshot. */
  readonly state: () => SharedState;
  /** A server's counters (`Metrics.serverTotals`); undefined = not counted (all zero). */
  readonly totals?: (upstream: string, serverId: string) => ServerTotals | undefined;
  /** The Prometheus exposition. */
  readonly metricsText: () => string;
  /** Whether the process serves (default: it answers, so yes). */
  readonly healthy?: () => boolean;
  /** Told of every change `setServerState` makes. */
  readonly onStateChange?: (change: AdminStateChange) => void;
  /** The clock (ms since the epoch); default `Date.now`. */
  readonly now?: () => number;
  /** Reloads the config file (the reloader's); absent = no reload endpoint. */
  readonly reload?: () => Promise<ReloadAnswer>;
  /** DNS discovery's names: why an upstream of `dns` entries has no server. */
  readonly discovery?: () => readonly DiscoveryFigure[];
}

const NO_STICKY: StickyCounts = Object.freeze(stickyCounts());

/**
 * The admin view over the gateway's snapshot, shared state and metrics.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../../config/mod.ts";
 * import { SharedState } from "../../state/mod.ts";
 * const config = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`);
 * const state = SharedState.create(config);
 * const view = createGatewayView({
 *   config: () => config,
 *   state: () => state,
 *   metricsText: () => "",
 * });
 * view.setServerState("app", "127.0.0.1:9001", "drain"); // "ok"
 * view.upstreams()[0].servers[0].state; // "drain"
 * ```
 */
export function createGatewayView(sources: GatewayViewSources): AdminView {
  const now = sources.now ?? Date.now;
  return {
    upstreams: () => {
      const config = sources.config();
      const state = sources.state();
      const nowMs = now();
      return [...config.upstreams.values()].map((upstream) =>
        upstreamStatus(upstream, state, sources.totals, nowMs)
      );
    },
    setServerState: (name, id, to): SetStateResult => {
      const upstream = sources.config().upstreams.get(name);
      if (upstream === undefined) return "no_upstream";
      const state = sources.state();
      const slot = state.serverSlot(name, id);
      if (slot === undefined) return "no_server";
      const from = state.adminState(slot);
      if (state.setAdminState(slot, to, now())) {
        sources.onStateChange?.({ upstream: name, server: id, from, to, reason: "admin api" });
      }
      return "ok";
    },
    metricsText: () => sources.metricsText(),
    ready: () => {
      const state = sources.state();
      const nowMs = now();
      for (const upstream of sources.config().upstreams.values()) {
        if (!takesNewClients(upstream, state, nowMs)) return false;
      }
      return true;
    },
    unready: () => {
      const state = sources.state();
      const nowMs = now();
      const why: Record<string, string> = {};
      for (const upstream of sources.config().upstreams.values()) {
        if (takesNewClients(upstream, state, nowMs)) continue;
        why[upstream.name] = unreadyReason(upstream, sources.discovery?.() ?? []);
      }
      return why;
    },
    healthy: () => sources.healthy?.() ?? true,
    ...(sources.reload === undefined ? {} : { reload: sources.reload }),
  };
}

function takesNewClients(upstream: Upstream, state: SharedState, nowMs: number): boolean {
  return upstream.servers.some((server) =>
    serverStatus(state, upstream, server, nowMs).summary === "up"
  );
}

/** Why an upstream takes no new client: its DNS names without addresses, or its servers' states. */
function unreadyReason(upstream: Upstream, names: readonly DiscoveryFigure[]): string {
  if (upstream.servers.length > 0 || upstream.dns === undefined) {
    return "no server takes new clients (all down, failed, draining or in maintenance)";
  }
  const queries = new Set(upstream.dns.map((entry) => entry.query));
  const unresolved = names.filter((n) => queries.has(n.query)).map((n) =>
    `${n.query} (${n.error ?? (n.resolved ? "no address" : "not resolved yet")})`
  );
  return `no server: DNS gave no address for ${unresolved.join(", ") || [...queries].join(", ")}`;
}

function upstreamStatus(
  upstream: Upstream,
  state: SharedState,
  totals: GatewayViewSources["totals"],
  nowMs: number,
): UpstreamStatus {
  return {
    name: upstream.name,
    stickyCookie: upstream.sticky?.name ?? null,
    servers: upstream.servers.map((server): ServerStatus => {
      const live = serverStatus(state, upstream, server, nowMs);
      const counted = totals?.(upstream.name, server.id);
      const sticky = counted?.sticky ?? NO_STICKY;
      return {
        id: server.id,
        address: server.address.text,
        cookieValue: server.cookieValue,
        backup: server.backup,
        weight: server.weight,
        state: live.state,
        health: {
          passive: live.failed ? "failed" : "ok",
          active: live.health,
          history: live.healthHistory,
        },
        inFlight: live.inFlight,
        requests: counted?.requests ?? 0,
        latency: counted?.latency ?? null,
        sticky: stickyCounts(sticky),
        lastStickyMs: live.lastStickyMs ?? null,
      };
    }),
  };
}
