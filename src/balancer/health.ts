/**
 * Passive health, as nginx's `max_fails` / `fail_timeout`: `maxFails` failures (connect errors
 * and timeouts), each within `failTimeout` of the one before, make a server unavailable until
 * `failTimeout` has passed since the last one. A success clears the count. `maxFails = 0` turns
 * it off. State is per process, like nginx's per worker.
 *
 * @module
 */
import type { Server, Upstream } from "../config/mod.ts";

export class PassiveHealth {
  readonly #fails: Uint32Array;
  readonly #lastFailureAt: Float64Array;

  constructor(upstream: Upstream) {
    this.#fails = new Uint32Array(upstream.servers.length);
    this.#lastFailureAt = new Float64Array(upstream.servers.length);
  }

  /** Not failed (or failed longer than `failTimeout` ago). The admin state (`down`, drain,
   * maint) is the balancer's, beside this. */
  isAvailable(server: Server, nowMs: number): boolean {
    if (server.maxFails === 0) return true;
    return this.#fails[server.index] < server.maxFails ||
      nowMs - this.#lastFailureAt[server.index] >= server.failTimeoutMs;
  }

  recordFailure(server: Server, nowMs: number): void {
    if (nowMs - this.#lastFailureAt[server.index] >= server.failTimeoutMs) {
      this.#fails[server.index] = 0;
    }
    this.#fails[server.index]++;
    this.#lastFailureAt[server.index] = nowMs;
  }

  recordSuccess(server: Server): void {
    if (this.#fails[server.index] !== 0) this.#fails[server.index] = 0;
  }

  /** Failures counted for a server now (for tests and `--check`-style reports). */
  failures(server: Server): number {
    return this.#fails[server.index];
  }
}
