/**
 * `reload_max_age`: what a generation still has running once a reload has replaced it (response
 * bodies, WebSocket sessions), cut when it has run that long after the reload. Only a generation
 * whose config sets `reload_max_age` makes one, so requests pay nothing by default.
 *
 * @module
 */

/**
 * The long-lived work of one generation, each with the way to cut it.
 *
 * @example
 * ```ts
 * import { Retirement } from "./retirement.ts";
 *
 * const retirement = new Retirement();
 * let cut = false;
 * retirement.add(() => cut = true);
 * const release = retirement.add(() => { throw new Error("released work is never cut"); });
 * release();
 * retirement.retire(0); // reload_max_age = "0" would mean none: this is the mechanism alone
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * if (!cut) throw new Error("not cut");
 * ```
 */
export class Retirement {
  readonly #cuts = new Set<() => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When what is registered is cut (ms since the epoch); undefined until retired. */
  #deadline: number | undefined;

  /** Registers work and how to cut it; call the returned function when it has ended. */
  add(cut: () => void): () => void {
    this.#cuts.add(cut);
    // A body that begins after the reload (its request began before) gets what time is left.
    if (this.#deadline !== undefined) this.#arm();
    return () => {
      this.#cuts.delete(cut);
      if (this.#cuts.size === 0 && this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** The generation was replaced: what is registered `afterMs` from now is cut then. */
  retire(afterMs: number): void {
    this.#deadline = Date.now() + afterMs;
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#cuts.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const cuts = [...this.#cuts];
      this.#cuts.clear();
      for (const cut of cuts) cut();
    }, Math.max(0, this.#deadline! - Date.now()));
  }
}
