/**
 * An AdminView over a real parsed config whose live figures the test sets by hand: the admin
 * module's tests (handler, status page) use it instead of a running gateway.
 *
 * @module
 */
import { type GatewayConfig, parseConfig, type ServerState } from "../../src/config/mod.ts";
import type {
  AdminView,
  ServerHealth,
  ServerStatus,
  SetStateResult,
  StickyCounts,
  UpstreamStatus,
} from "../../src/ops/admin/mod.ts";
import { stickyCounts } from "../../src/ops/admin/mod.ts";

/** Upper bounds of the fake latency histogram, ms. */
export const BOUNDS_MS: readonly number[] = [1, 5, 10, 50, 100, 500, Infinity];

/** The figures a test may change for one server. */
export interface FakeServer {
  state: ServerState;
  health: ServerHealth;
  inFlight: number;
  requests: number;
  /** Cumulative counts per BOUNDS_MS. */
  counts: number[];
  sticky: StickyCounts;
  lastStickyMs: number | null;
}

/** Two upstreams: `app` (sticky, A, web-b, a backup) and `api` (not sticky, one server). */
export const FAKE_CONFIG = `
[upstreams.app]
servers = [
  "127.0.0.1:9001",
  { address = "127.0.0.1:9002", id = "web-b", weight = 2 },
  { address = "127.0.0.1:9003", id = "spare", backup = true },
]
[upstreams.app.sticky]
name = "route"

[upstreams.api]
servers = [{ address = "127.0.0.1:9101", id = "api-1", state = "drain" }]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/api/"
upstream = "api"
`;

/** An AdminView whose figures live in `servers` (upstream → id → figures). */
export class FakeView implements AdminView {
  readonly config: GatewayConfig;
  readonly servers = new Map<string, Map<string, FakeServer>>();
  readonly stateCalls: { upstream: string; id: string; state: ServerState }[] = [];
  metrics = "# HELP sticky_gateway_up 1\n# TYPE sticky_gateway_up gauge\nsticky_gateway_up 1\n";
  isReady = true;
  isHealthy = true;
  /** When set, every read throws it (a failing view). */
  failure: Error | undefined;

  constructor(text = FAKE_CONFIG) {
    this.config = parseConfig(text);
    for (const upstream of this.config.upstreams.values()) {
      const byId = new Map<string, FakeServer>();
      for (const server of upstream.servers) {
        byId.set(server.id, {
          state: server.state,
          health: { passive: "ok", active: "unchecked", history: [] },
          inFlight: 0,
          requests: 0,
          counts: BOUNDS_MS.map(() => 0),
          sticky: stickyCounts(),
          lastStickyMs: null,
        });
      }
      this.servers.set(upstream.name, byId);
    }
  }

  /** The figures of one server (throws on an unknown one: a test mistake). */
  server(upstream: string, id: string): FakeServer {
    const server = this.servers.get(upstream)?.get(id);
    if (server === undefined) throw new Error(`no fake server ${upstream}/${id}`);
    return server;
  }

  upstreams(): readonly UpstreamStatus[] {
    if (this.failure !== undefined) throw this.failure;
    return [...this.config.upstreams.values()].map((upstream) => ({
      name: upstream.name,
      stickyCookie: upstream.sticky?.name ?? null,
      servers: upstream.servers.map((server): ServerStatus => {
        const live = this.server(upstream.name, server.id);
        return {
          id: server.id,
          address: server.address.text,
          cookieValue: server.cookieValue,
          backup: server.backup,
          weight: server.weight,
          state: live.state,
          health: { ...live.health, history: [...live.health.history] },
          inFlight: live.inFlight,
          requests: live.requests,
          latency: { boundsMs: BOUNDS_MS, counts: [...live.counts] },
          sticky: { ...live.sticky },
          lastStickyMs: live.lastStickyMs,
        };
      }),
    }));
  }

  setServerState(upstream: string, id: string, state: ServerState): SetStateResult {
    const servers = this.servers.get(upstream);
    if (servers === undefined) return "no_upstream";
    const server = servers.get(id);
    if (server === undefined) return "no_server";
    this.stateCalls.push({ upstream, id, state });
    server.state = state;
    return "ok";
  }

  metricsText(): string {
    if (this.failure !== undefined) throw this.failure;
    return this.metrics;
  }

  ready(): boolean {
    return this.isReady;
  }

  healthy(): boolean {
    return this.isHealthy;
  }
}
