/**
 * Choosing a server for a request that is not (or no longer) pinned by its cookie: smooth
 * weighted round robin over available `ready` primaries, then over available `ready` backups when
 * no primary can take new clients. One balancer per upstream and thread, created with the config
 * snapshot it serves; the live server states (admin state, passive and active health) and the
 * round-robin cursors are in a `SharedState`, one for all worker threads.
 *
 * @module
 */
import type { GatewayConfig, Server, ServerState, Upstream } from "../config/mod.ts";
import { SharedState, type UpstreamSlots } from "../state/shared_state.ts";
import { PassiveHealth } from "./health.ts";
import { WeightedRoundRobin } from "./wrr.ts";

/** Picks servers for one upstream and answers whether a server may serve (`ServerStates`). */
export class Balancer {
  readonly upstream: Upstream;
  readonly health: PassiveHealth;
  /** The shared state this balancer reads and writes (a private one unless given). */
  readonly shared: SharedState;
  readonly #slots: UpstreamSlots;
  readonly #base: number;
  // Only `ready` servers are in the cycles, so a pick never steps over a draining or maint
  // server (1,000 servers with 997 out cost what 3 do). A state change (in any thread) bumps the
  // upstream's version; each thread rebuilds its cycles when it sees it: rare, and O(servers).
  #version = -1;
  #primaries!: WeightedRoundRobin<Server>;
  #backups!: WeightedRoundRobin<Server>;
  #readyPrimaries!: readonly Server[];
  // Inputs of #eligible for the pick under way: one predicate for the balancer's lifetime
  // instead of a closure per request.
  #now = 0;
  #tried: readonly Server[] | undefined;
  readonly #eligible = (s: Server): boolean =>
    (this.#tried === undefined || !this.#tried.includes(s)) && this.#healthy(s, this.#now);

  /** `state`: the threads' shared state; without it, a private one for this upstream alone. */
  constructor(upstream: Upstream, state?: SharedState) {
    this.upstream = upstream;
    this.shared = state ?? SharedState.create({ upstreams: new Map([[upstream.name, upstream]]) });
    this.#slots = this.shared.upstreamSlots(upstream);
    this.#base = this.#slots.base;
    this.health = new PassiveHealth(upstream, this.shared);
    this.#sync();
  }

  /**
   * The next server for a new session: a `ready` one, skipping failed ones and those in `tried`
   * (servers that already failed this request). Undefined when nothing is left.
   */
  pick(nowMs: number, tried?: readonly Server[]): Server | undefined {
    this.#sync();
    this.#now = nowMs;
    this.#tried = tried;
    const server = this.#primaries.next(this.#eligible) ?? this.#backups.next(this.#eligible);
    this.#tried = undefined;
    return server;
  }

  /** Whether a client pinned to this server may be served there: not `maint`, not failed
   * (passive health), not down (active health). A `drain` server still serves its own clients. */
  isAvailable(server: Server, nowMs: number): boolean {
    return this.shared.adminState(this.#base + server.index) !== "maint" &&
      this.#healthy(server, nowMs);
  }

  /** Whether any primary can take new clients (backups serve only while none can). */
  anyPrimaryAvailable(nowMs: number): boolean {
    this.#sync();
    return this.#readyPrimaries.some((s) => this.#healthy(s, nowMs));
  }

  /** The server's admin state now. */
  state(server: Server): ServerState {
    return this.shared.adminState(this.#base + server.index);
  }

  /** Changes a server's admin state while serving (the admin API), for every thread; the round
   * robin restarts its cycle over the servers that are `ready` now. */
  setState(server: Server, state: ServerState): void {
    if (this.upstream.servers[server.index] !== server) {
      throw new Error(`${server.id} is not a server of upstream ${this.upstream.name}`);
    }
    this.shared.setAdminState(this.#base + server.index, state);
  }

  /** The server's slot in the shared state (for in-flight and sticky-time updates). */
  slot(server: Server): number {
    return this.#base + server.index;
  }

  /** Passive and active health both let the server serve. */
  #healthy(server: Server, nowMs: number): boolean {
    const slot = this.#base + server.index;
    return this.shared.activeAllows(slot) && !this.shared.passiveFailed(slot, server, nowMs);
  }

  /** Rebuilds the cycles when the shared version moved (one Atomics.load when it did not). */
  #sync(): void {
    const version = this.shared.version(this.#slots.upstream);
    if (version === this.#version) return;
    this.#version = version;
    const state = this.shared;
    const ready = (s: Server) => state.adminState(this.#base + s.index) === "ready";
    this.#readyPrimaries = this.upstream.primaries.filter(ready);
    this.#primaries = new WeightedRoundRobin(
      this.#readyPrimaries,
      (s) => s.weight,
      state.cursor(this.#slots.upstream, "primaries"),
    );
    this.#backups = new WeightedRoundRobin(
      this.upstream.backups.filter(ready),
      (s) => s.weight,
      state.cursor(this.#slots.upstream, "backups"),
    );
  }
}

/** One balancer per upstream of a snapshot, all on `state` (a new one when not given). */
export function createBalancers(
  config: GatewayConfig,
  state: SharedState = SharedState.create(config),
): ReadonlyMap<Upstream, Balancer> {
  const balancers = new Map<Upstream, Balancer>();
  for (const upstream of config.upstreams.values()) {
    balancers.set(upstream, new Balancer(upstream, state));
  }
  return balancers;
}
