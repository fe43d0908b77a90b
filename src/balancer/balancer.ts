/**
 * Choosing a server for a request that is not (or no longer) pinned by its cookie: smooth
 * weighted round robin over available `ready` primaries, then over available `ready` backups when
 * no primary can take new clients. One balancer per upstream, created with the config snapshot it
 * serves; it holds the live server states (admin state and passive health), which start from the
 * snapshot and may change while it serves.
 *
 * @module
 */
import type { GatewayConfig, Server, ServerState, Upstream } from "../config/mod.ts";
import { PassiveHealth } from "./health.ts";
import { WeightedRoundRobin } from "./wrr.ts";

/** Admin states as stored per server (one byte each, indexed by `Server.index`). */
const READY = 0;
const DRAIN = 1;
const MAINT = 2;
const STATE_CODES: Readonly<Record<ServerState, number>> = {
  ready: READY,
  drain: DRAIN,
  maint: MAINT,
};
const STATE_NAMES: readonly ServerState[] = ["ready", "drain", "maint"];

export class Balancer {
  readonly upstream: Upstream;
  readonly health: PassiveHealth;
  readonly #states: Uint8Array;
  // Only `ready` servers are in the cycles, so a pick never steps over a draining or maint
  // server (1,000 servers with 997 out cost what 3 do). A state change rebuilds them: rare, and
  // O(servers) off the request path.
  #primaries!: WeightedRoundRobin<Server>;
  #backups!: WeightedRoundRobin<Server>;
  #readyPrimaries!: readonly Server[];
  // Inputs of #eligible for the pick under way: one predicate for the balancer's lifetime
  // instead of a closure per request.
  #now = 0;
  #tried: readonly Server[] | undefined;
  readonly #eligible = (s: Server): boolean =>
    (this.#tried === undefined || !this.#tried.includes(s)) &&
    this.health.isAvailable(s, this.#now);

  constructor(upstream: Upstream) {
    this.upstream = upstream;
    this.health = new PassiveHealth(upstream);
    this.#states = Uint8Array.from(upstream.servers, (s) => STATE_CODES[s.state]);
    this.#buildCycles();
  }

  /**
   * The next server for a new session: a `ready` one, skipping failed ones and those in `tried`
   * (servers that already failed this request). Undefined when nothing is left.
   */
  pick(nowMs: number, tried?: readonly Server[]): Server | undefined {
    this.#now = nowMs;
    this.#tried = tried;
    const server = this.#primaries.next(this.#eligible) ?? this.#backups.next(this.#eligible);
    this.#tried = undefined;
    return server;
  }

  /** Whether a client pinned to this server may be served there: not `maint`, not failed
   * (a `drain` server still serves its own clients). */
  isAvailable(server: Server, nowMs: number): boolean {
    return this.#states[server.index] !== MAINT && this.health.isAvailable(server, nowMs);
  }

  /** Whether any primary can take new clients (backups serve only while none can). */
  anyPrimaryAvailable(nowMs: number): boolean {
    return this.#readyPrimaries.some((s) => this.health.isAvailable(s, nowMs));
  }

  /** The server's admin state now. */
  state(server: Server): ServerState {
    return STATE_NAMES[this.#states[server.index]];
  }

  /** Changes a server's admin state while serving (the coming admin API); the round robin
   * restarts its cycle over the servers that are `ready` now. */
  setState(server: Server, state: ServerState): void {
    if (this.upstream.servers[server.index] !== server) {
      throw new Error(`${server.id} is not a server of upstream ${this.upstream.name}`);
    }
    if (this.#states[server.index] === STATE_CODES[state]) return;
    this.#states[server.index] = STATE_CODES[state];
    this.#buildCycles();
  }

  #buildCycles(): void {
    const ready = (s: Server) => this.#states[s.index] === READY;
    this.#readyPrimaries = this.upstream.primaries.filter(ready);
    this.#primaries = new WeightedRoundRobin(this.#readyPrimaries, (s) => s.weight);
    this.#backups = new WeightedRoundRobin(this.upstream.backups.filter(ready), (s) => s.weight);
  }
}

/** One balancer per upstream of a snapshot. */
export function createBalancers(config: GatewayConfig): ReadonlyMap<Upstream, Balancer> {
  const balancers = new Map<Upstream, Balancer>();
  for (const upstream of config.upstreams.values()) balancers.set(upstream, new Balancer(upstream));
  return balancers;
}
