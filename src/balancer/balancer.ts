/**
 * Choosing a server for a request that is not (or no longer) pinned by its cookie: smooth
 * weighted round robin over available primaries, then over available backups when no primary is
 * available. One balancer per upstream, created with the config snapshot it serves.
 *
 * @module
 */
import type { GatewayConfig, Server, Upstream } from "../config/mod.ts";
import { PassiveHealth } from "./health.ts";
import { WeightedRoundRobin } from "./wrr.ts";

export class Balancer {
  readonly upstream: Upstream;
  readonly health: PassiveHealth;
  readonly #primaries: WeightedRoundRobin<Server>;
  readonly #backups: WeightedRoundRobin<Server>;
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
    // `down` is fixed by the config: such servers are left out of the cycles, so a pick never
    // steps over them (1,000 servers with 997 down cost what 3 do).
    this.#primaries = new WeightedRoundRobin(upstream.primaries.filter(isUp), (s) => s.weight);
    this.#backups = new WeightedRoundRobin(upstream.backups.filter(isUp), (s) => s.weight);
  }

  /**
   * The next server for a new session, skipping unavailable ones and those in `tried`
   * (servers that already failed this request). Undefined when nothing is left.
   */
  pick(nowMs: number, tried?: readonly Server[]): Server | undefined {
    this.#now = nowMs;
    this.#tried = tried;
    const server = this.#primaries.next(this.#eligible) ?? this.#backups.next(this.#eligible);
    this.#tried = undefined;
    return server;
  }

  isAvailable(server: Server, nowMs: number): boolean {
    return this.health.isAvailable(server, nowMs);
  }

  /** Whether any primary can take requests (backups serve only while none can). */
  anyPrimaryAvailable(nowMs: number): boolean {
    return this.upstream.primaries.some((s) => this.health.isAvailable(s, nowMs));
  }
}

function isUp(server: Server): boolean {
  return !server.down;
}

/** One balancer per upstream of a snapshot. */
export function createBalancers(config: GatewayConfig): ReadonlyMap<Upstream, Balancer> {
  const balancers = new Map<Upstream, Balancer>();
  for (const upstream of config.upstreams.values()) balancers.set(upstream, new Balancer(upstream));
  return balancers;
}
