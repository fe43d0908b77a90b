/**
 * Recent rates from totals: requests per second and p50/p99 latency over the last seconds, from
 * the counters the view reports since start. The admin module keeps a few samples of those
 * totals (taken when the API is read, at most one a second, none older than the window) and
 * compares now with the oldest: no timer, no work on the request path, memory bounded by
 * (window / 1 s) samples × servers.
 *
 * @module
 */
import type { LatencyHistogram, UpstreamStatus } from "./view.ts";

/** Rates are over at most this much of the recent past. */
export const RATE_WINDOW_MS = 10_000;
/** Samples closer together than this are not kept (a second poller adds nothing). */
const MIN_SAMPLE_GAP_MS = 1_000;

/** One server's recent figures; null where there is no earlier sample (or no request). */
export interface RecentFigures {
  readonly perSecond: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

interface ServerTotals {
  readonly requests: number;
  readonly counts: readonly number[] | undefined;
}

interface Sample {
  readonly atMs: number;
  /** `upstream \0 server id` → totals. */
  readonly totals: ReadonlyMap<string, ServerTotals>;
}

const NO_FIGURES: RecentFigures = { perSecond: null, p50Ms: null, p99Ms: null };

/** Keeps samples of the view's totals and turns them into recent figures. */
export class RateSampler {
  #samples: Sample[] = [];

  /**
   * Records the totals in `upstreams` as seen at `nowMs` and returns a function giving each
   * server's figures since the oldest sample in the window.
   *
   * @example
   * ```ts
   * const sampler = new RateSampler();
   * const figures = sampler.observe([], Date.now());
   * figures("app", "web-1"); // { perSecond: null, p50Ms: null, p99Ms: null }
   * ```
   */
  observe(
    upstreams: readonly UpstreamStatus[],
    nowMs: number,
  ): (upstream: string, id: string) => RecentFigures {
    const totals = new Map<string, ServerTotals>();
    const latency = new Map<string, LatencyHistogram | null>();
    for (const upstream of upstreams) {
      for (const server of upstream.servers) {
        const key = `${upstream.name}\0${server.id}`;
        totals.set(key, { requests: server.requests, counts: server.latency?.counts });
        latency.set(key, server.latency);
      }
    }
    this.#samples = this.#samples.filter((s) =>
      s.atMs >= nowMs - RATE_WINDOW_MS && s.atMs <= nowMs
    );
    const base = this.#samples.find((s) => nowMs - s.atMs >= MIN_SAMPLE_GAP_MS);
    const last = this.#samples.at(-1);
    if (last === undefined || nowMs - last.atMs >= MIN_SAMPLE_GAP_MS) {
      this.#samples.push({ atMs: nowMs, totals });
    }
    return (upstream, id) => {
      const key = `${upstream}\0${id}`;
      const now = totals.get(key);
      const then = base?.totals.get(key);
      const histogram = latency.get(key);
      if (base === undefined || now === undefined || then === undefined) return NO_FIGURES;
      const seconds = (nowMs - base.atMs) / 1000;
      // A counter that went down was reset (a restart behind the view): no rate this time.
      if (now.requests < then.requests) return NO_FIGURES;
      const perSecond = (now.requests - then.requests) / seconds;
      const before = then.counts;
      if (!histogram || before === undefined) return { perSecond, p50Ms: null, p99Ms: null };
      const deltas = histogram.counts.map((count, i) => count - (before[i] ?? 0));
      return {
        perSecond,
        p50Ms: quantile(0.5, histogram.boundsMs, deltas),
        p99Ms: quantile(0.99, histogram.boundsMs, deltas),
      };
    };
  }
}

/**
 * The `q` quantile of a cumulative histogram, interpolated linearly inside its bucket (as
 * Prometheus' histogram_quantile); the highest finite bound when it falls in the +Inf bucket;
 * null without observations.
 *
 * @example
 * ```ts
 * quantile(0.5, [10, 100, Infinity], [0, 4, 4]); // 55
 * ```
 */
export function quantile(
  q: number,
  boundsMs: readonly number[],
  cumulative: readonly number[],
): number | null {
  const total = cumulative.at(-1) ?? 0;
  if (total <= 0 || boundsMs.length === 0) return null;
  const rank = q * total;
  const i = cumulative.findIndex((count) => count >= rank);
  const at = i < 0 ? cumulative.length - 1 : i;
  const upper = boundsMs[at];
  const lower = at === 0 ? 0 : boundsMs[at - 1];
  if (!Number.isFinite(upper)) return Number.isFinite(lower) ? lower : null;
  const below = at === 0 ? 0 : cumulative[at - 1];
  const inBucket = cumulative[at] - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}
