/**
 * Passive health, as nginx's `max_fails` / `fail_timeout`: `maxFails` failures (connect errors
 * and timeouts), each within `failTimeout` of the one before, make a server unavailable until
 * `failTimeout` has passed since the last one. A success clears the count. `maxFails = 0` turns
 * it off. The counts live in the shared state, so a server failed by one worker thread is failed
 * for all (nginx keeps them per worker unless in a shared zone).
 *
 * @module
 */
import type { Server, Upstream } from "../config/mod.ts";
import { SharedState } from "../state/shared_state.ts";

/** Passive health of one upstream's servers, read and written in a `SharedState`. */
export class PassiveHealth {
  readonly #state: SharedState;
  readonly #base: number;

  /** Without `state`, a private one for this upstream alone (tests, one thread). */
  constructor(upstream: Upstream, state?: SharedState) {
    this.#state = state ?? SharedState.create({ upstreams: new Map([[upstream.name, upstream]]) });
    this.#base = this.#state.upstreamSlots(upstream).base;
  }

  /** Not failed (or failed longer than `failTimeout` ago). The admin state (`down`, drain,
   * maint) and active health are the balancer's, beside this. */
  isAvailable(server: Server, nowMs: number): boolean {
    return !this.#state.passiveFailed(this.#base + server.index, server, nowMs);
  }

  /** Counts a failure (connect error, timeout) of the server at `nowMs`. */
  recordFailure(server: Server, nowMs: number): void {
    this.#state.recordFailure(this.#base + server.index, nowMs, server.failTimeoutMs);
  }

  /** A success: clears the server's count. */
  recordSuccess(server: Server): void {
    this.#state.clearFailures(this.#base + server.index);
  }

  /** Failures counted for a server now (for tests and `--check`-style reports). */
  failures(server: Server): number {
    return this.#state.failures(this.#base + server.index);
  }
}
