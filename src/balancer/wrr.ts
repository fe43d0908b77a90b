/**
 * nginx's smooth weighted round robin.
 *
 * With every server available, the sequence repeats after `sum(weights)` picks, so the cycle is
 * computed once (when the config loads) and a pick is a cursor step: O(1) in the number of
 * servers. Servers that are unavailable or already tried in this request are stepped over, which
 * keeps the others in their weighted proportions.
 *
 * The cursor may live in shared memory (`SharedCursor`): every thread holds the same cycle and
 * steps one cursor with `Atomics.add`, so the threads together give one sequence (3:1:1 is
 * A B A C A whichever thread serves).
 *
 * @module
 */
import type { SharedCursor } from "../state/shared_state.ts";

/** Longest cycle precomputed; larger weight sums fall back to the O(n) algorithm per pick. */
const MAX_CYCLE = 1 << 16;

/**
 * The smooth WRR sequence for these weights (one full period), as indices into `weights`.
 *
 * @example
 * ```ts
 * smoothWrrCycle([3, 1, 1]); // [0, 1, 0, 2, 0]  — nginx's A B A C A
 * ```
 */
export function smoothWrrCycle(weights: readonly number[]): number[] {
  const divisor = weights.reduce(gcd, 0) || 1;
  const reduced = weights.map((w) => w / divisor);
  const total = reduced.reduce((a, b) => a + b, 0);
  // Equal weights: smooth WRR is plain round robin in list order (each step picks the first of
  // the members not yet picked this round). O(n) instead of O(n²): a reload of 1,000 servers.
  if (total === reduced.length) return reduced.map((_, i) => i);
  const current = new Array<number>(reduced.length).fill(0);
  const cycle: number[] = [];
  for (let step = 0; step < total; step++) cycle.push(smoothWrrStep(reduced, current, total));
  return cycle;
}

/** One pick of nginx's algorithm; `current` carries the state between picks. */
function smoothWrrStep(weights: readonly number[], current: number[], total: number): number {
  let best = -1;
  for (let i = 0; i < weights.length; i++) {
    current[i] += weights[i];
    if (best < 0 || current[i] > current[best]) best = i;
  }
  current[best] -= total;
  return best;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Picks members of one group (primaries, or backups) in smooth WRR order. */
export class WeightedRoundRobin<T> {
  readonly #members: readonly T[];
  readonly #cycle: readonly number[] | undefined;
  readonly #weights: readonly number[];
  readonly #current: number[];
  readonly #total: number;
  readonly #shared: SharedCursor | undefined;
  #cursor = 0;

  /** `shared`: a cursor in shared memory, stepped by every thread holding this cycle. */
  constructor(members: readonly T[], weightOf: (member: T) => number, shared?: SharedCursor) {
    this.#members = members;
    this.#shared = shared;
    this.#weights = members.map(weightOf);
    this.#total = this.#weights.reduce((a, b) => a + b, 0);
    const reducedTotal = this.#total / (this.#weights.reduce(gcd, 0) || 1);
    this.#cycle = reducedTotal <= MAX_CYCLE ? smoothWrrCycle(this.#weights) : undefined;
    this.#current = new Array<number>(members.length).fill(0);
  }

  /** The next member that `accept` takes, or undefined when it takes none. */
  next(accept: (member: T) => boolean): T | undefined {
    if (this.#members.length === 0) return undefined;
    return this.#cycle === undefined
      ? this.#nextDynamic(accept)
      : this.#nextFromCycle(this.#cycle, accept);
  }

  #nextFromCycle(cycle: readonly number[], accept: (member: T) => boolean): T | undefined {
    for (let step = 0; step < cycle.length; step++) {
      const member = this.#members[cycle[this.#step(cycle.length)]];
      if (accept(member)) return member;
    }
    return undefined;
  }

  /** The cursor's position before this step, and steps it. */
  #step(length: number): number {
    const shared = this.#shared;
    if (shared === undefined) {
      const at = this.#cursor;
      this.#cursor = at + 1 === length ? 0 : at + 1;
      return at;
    }
    // The shared counter only grows (read unsigned); at its 2^32 wrap the sequence skips once
    // unless `length` divides 2^32: a few billion picks apart, not worth a compare-and-swap loop.
    return (Atomics.add(shared.cells, shared.index, 1) >>> 0) % length;
  }

  /** nginx's algorithm over the accepted members only, for very large weight sums. Its current
   * weights stay per thread (sharing them would need a lock per pick): such weight sums are
   * beyond any real config. */
  #nextDynamic(accept: (member: T) => boolean): T | undefined {
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.#members.length; i++) {
      if (!accept(this.#members[i])) continue;
      this.#current[i] += this.#weights[i];
      total += this.#weights[i];
      if (best < 0 || this.#current[i] > this.#current[best]) best = i;
    }
    if (best < 0) return undefined;
    this.#current[best] -= total;
    return this.#members[best];
  }
}
