/**
 * The gateway's counters, histograms and gauges, in one SharedArrayBuffer with one region per
 * thread: each thread adds to its own region with plain writes (no atomics, no contention on the
 * request path), the scrape sums the regions. Created in the main thread
 * ({@link Metrics.create}), attached in each worker ({@link Metrics.attach}) from the
 * structured-cloneable {@link Metrics.buffers} posted to it.
 *
 * Labels are bounded by the config: upstream names and server ids are resolved to slots with two
 * Map lookups, so {@link Metrics.recordRequest} is O(1) whatever the number of servers. A name the
 * layout does not know (never, with one config) counts under "no server" / "no upstream".
 *
 * @module
 */
import type { Upstream } from "../../config/mod.ts";
import type { FailureCode } from "../../proxy/errors.ts";
import type { RequestRecord } from "../../proxy/request_record.ts";
import type { StickyOutcome } from "../../sticky/resolve.ts";
import {
  BLOCK,
  bucketIndex,
  BUCKETS_MS,
  classIndex,
  codeIndex,
  GLOBAL,
  type HealthResult,
  HISTOGRAM_SLOTS,
  type MetricsLayout,
  metricsLayout,
  outcomeIndex,
  resultIndex,
  STICKY_OUTCOMES,
  type UpstreamLayout,
} from "./layout.ts";

/** What the layout is computed from: a config snapshot's upstreams (a `GatewayConfig` is one). */
export interface MetricsSource {
  readonly upstreams: ReadonlyMap<string, Upstream>;
}

/** The shared memory and its shape, structured-cloneable: post it to a Worker. */
export interface MetricsBuffers {
  readonly memory: SharedArrayBuffer;
  readonly threads: number;
  /** The layout's fingerprint, compared when attaching (the same config on both sides). */
  readonly fingerprint: string;
}

/** A latency histogram as the admin API reads it: cumulative counts, the last bound Infinity. */
export interface ServerLatency {
  readonly boundsMs: readonly number[];
  readonly counts: readonly number[];
}

/** One server's totals over all threads since start. */
export interface ServerTotals {
  /** Requests it answered (every status class). */
  readonly requests: number;
  /** Their durations (request start to response end). */
  readonly latency: ServerLatency;
  /** Sticky decisions that ended on it, by outcome. */
  readonly sticky: Readonly<Record<StickyOutcome, number>>;
}

const BYTES_PER_SLOT = Float64Array.BYTES_PER_ELEMENT;
const BOUNDS_WITH_INF: readonly number[] = [...BUCKETS_MS, Infinity];

/**
 * The metrics of one thread (writing to its region) that can read them all.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../../config/mod.ts";
 * import { Metrics } from "./metrics.ts";
 *
 * const config = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`);
 * const main = Metrics.create(config, 2);
 * const worker = Metrics.attach(config, main.buffers, 1);
 * worker.upstreamFailure("app", "127.0.0.1:9001", "connect_refused");
 * main.upstreamFailure("app", "127.0.0.1:9001", "connect_refused");
 * if (main.failures("app", "127.0.0.1:9001", "connect_refused") !== 2) throw new Error("summed");
 * ```
 */
export class Metrics {
  /** Post this to workers; `Metrics.attach(config, buffers, index)` there. */
  readonly buffers: MetricsBuffers;
  /** The slots (read by the renderer). */
  readonly layout: MetricsLayout;
  readonly #all: Float64Array;
  /** This thread's region. */
  readonly #own: Float64Array;

  private constructor(layout: MetricsLayout, buffers: MetricsBuffers, threadIndex: number) {
    if (!Number.isInteger(threadIndex) || threadIndex < 0 || threadIndex >= buffers.threads) {
      throw new RangeError(`thread ${threadIndex} of ${buffers.threads}`);
    }
    if (buffers.fingerprint !== layout.fingerprint) {
      throw new Error("metrics: the buffers were made for another config (upstreams or servers)");
    }
    this.layout = layout;
    this.buffers = buffers;
    this.#all = new Float64Array(buffers.memory);
    this.#own = this.#all.subarray(
      threadIndex * layout.regionSize,
      (threadIndex + 1) * layout.regionSize,
    );
  }

  /** The main thread's metrics (thread 0) with room for `threads` threads in all. */
  static create(config: MetricsSource, threads: number): Metrics {
    const layout = metricsLayout(config);
    const count = Math.max(1, Math.floor(threads));
    const memory = new SharedArrayBuffer(count * layout.regionSize * BYTES_PER_SLOT);
    return new Metrics(layout, { memory, threads: count, fingerprint: layout.fingerprint }, 0);
  }

  /** A worker's metrics: `threadIndex` from 1 to threads - 1, on the buffers `create` made. */
  static attach(config: MetricsSource, buffers: MetricsBuffers, threadIndex: number): Metrics {
    return new Metrics(metricsLayout(config), buffers, threadIndex);
  }

  /**
   * Counts a finished request (or a WebSocket's upgrade) by upstream, server and status class,
   * its duration and time to upstream headers, and its sticky outcome; a WebSocket's `ws-open`
   * and `ws-close` also move the open-WebSockets gauge (a `ws-close` counts nothing else).
   * Upstream failures are not taken from the record (it holds only the last one): see
   * {@link Metrics.upstreamFailure}. O(1).
   */
  recordRequest(record: RequestRecord): void {
    const own = this.#own;
    if (record.kind === "ws-close") {
      own[GLOBAL.websocketsOpen]--;
      return;
    }
    if (record.kind === "ws-open") own[GLOBAL.websocketsOpen]++;
    const upstream = record.upstream === undefined
      ? this.layout.noUpstream
      : this.layout.byName.get(record.upstream) ?? this.layout.noUpstream;
    const block = serverBlock(upstream, record.server);
    own[block + BLOCK.requests + classIndex(record.status)]++;
    observe(own, block + BLOCK.duration, record.durationMs);
    if (record.upstreamHeaderMs !== undefined) {
      observe(own, block + BLOCK.header, record.upstreamHeaderMs);
    }
    if (upstream !== this.layout.noUpstream) {
      own[block + BLOCK.sticky + outcomeIndex(record.sticky)]++;
    }
  }

  /** Counts one failed attempt at a server (each attempt of a request, not only the last). */
  upstreamFailure(upstream: string, serverId: string, code: FailureCode): void {
    const index = codeIndex(code);
    if (index < 0) return;
    this.#own[this.#block(upstream, serverId) + BLOCK.failures + index]++;
  }

  /** Counts one active health check of a server by its result. */
  healthCheck(upstream: string, serverId: string, result: HealthResult): void {
    this.#own[this.#block(upstream, serverId) + BLOCK.health + resultIndex(result)]++;
  }

  /**
   * On reload, in each thread as it swaps: this thread's counts in `previous` (the last
   * generation's metrics, the same thread) are added into its region here, series by series (by
   * upstream name and server id), so no counter of a series that stays goes backwards. A removed
   * server's durations and sticky decisions go to its upstream's "no server" block, since those
   * are shown per upstream; its own series (requests, failures, checks by server) end with it.
   */
  carryFrom(previous: Metrics): void {
    const from = previous.#own;
    const to = this.#own;
    for (let i = 0; i < GLOBAL.size; i++) to[i] += from[i];
    const add = (a: number, b: number, start: number, end: number) => {
      for (let i = start; i < end; i++) to[b + i] += from[a + i];
    };
    for (const old of [...previous.layout.upstreams, previous.layout.noUpstream]) {
      const next = old.upstream === undefined
        ? this.layout.noUpstream
        : this.layout.byName.get(old.name);
      if (next === undefined) continue;
      add(old.noServerBlock, next.noServerBlock, 0, BLOCK.size);
      for (const [id, block] of old.blockById) {
        const kept = next.blockById.get(id);
        if (kept !== undefined) add(block, kept, 0, BLOCK.size);
        else add(block, next.noServerBlock, BLOCK.duration, BLOCK.failures);
      }
    }
  }

  /** A client connection opened (on this thread's listener). */
  clientConnectionOpened(): void {
    this.#own[GLOBAL.clientConnections]++;
  }

  /** A client connection closed. */
  clientConnectionClosed(): void {
    this.#own[GLOBAL.clientConnections]--;
  }

  /** Access log lines lost (its buffer full, or its destination failing). */
  accessLogDropped(lines: number): void {
    this.#own[GLOBAL.accessLogDropped] += lines;
  }

  /** A slot summed over every thread's region. */
  total(slot: number): number {
    const size = this.layout.regionSize;
    let sum = 0;
    for (let offset = slot; offset < this.#all.length; offset += size) sum += this.#all[offset];
    return sum;
  }

  /** Every slot summed over threads: one pass for a scrape. */
  totals(): Float64Array {
    const size = this.layout.regionSize;
    const sums = new Float64Array(size);
    for (let base = 0; base < this.#all.length; base += size) {
      for (let i = 0; i < size; i++) sums[i] += this.#all[base + i];
    }
    return sums;
  }

  /** Failures of one server by code, over all threads (tests, the admin API). */
  failures(upstream: string, serverId: string, code: FailureCode): number {
    const index = codeIndex(code);
    return index < 0 ? 0 : this.total(this.#block(upstream, serverId) + BLOCK.failures + index);
  }

  /**
   * One server's requests, latency histogram and sticky decisions over all threads (what the
   * admin API and status page show); undefined for a server the config does not have.
   */
  serverTotals(upstream: string, serverId: string): ServerTotals | undefined {
    const block = this.layout.byName.get(upstream)?.blockById.get(serverId);
    if (block === undefined) return undefined;
    let requests = 0;
    for (let i = 0; i < BLOCK.duration - BLOCK.requests; i++) {
      requests += this.total(block + BLOCK.requests + i);
    }
    const counts: number[] = [];
    let cumulative = 0;
    for (let i = 0; i < BOUNDS_WITH_INF.length; i++) {
      cumulative += this.total(block + BLOCK.duration + i);
      counts.push(cumulative);
    }
    const sticky = {} as Record<StickyOutcome, number>;
    STICKY_OUTCOMES.forEach((outcome, i) => sticky[outcome] = this.total(block + BLOCK.sticky + i));
    return { requests, latency: { boundsMs: BOUNDS_WITH_INF, counts }, sticky };
  }

  #block(upstream: string, serverId: string): number {
    const entry = this.layout.byName.get(upstream) ?? this.layout.noUpstream;
    return serverBlock(entry, serverId);
  }
}

function serverBlock(upstream: UpstreamLayout, serverId: string | undefined): number {
  if (serverId === undefined) return upstream.noServerBlock;
  return upstream.blockById.get(serverId) ?? upstream.noServerBlock;
}

/** Adds a duration (ms) to the histogram at `base`: its bucket, and the sum in seconds. */
function observe(region: Float64Array, base: number, ms: number): void {
  if (Number.isNaN(ms)) return;
  const value = ms > 0 ? ms : 0; // a clock step backwards is not a negative time
  region[base + bucketIndex(value)]++;
  region[base + HISTOGRAM_SLOTS - 1] += value / 1000;
}

/**
 * A health check's result as the `result` label: what the checker's per-check callback reports
 * (`passed`, the answer's `status`, 0 when none, and `error`: a catalogue code or "timeout").
 *
 * @example
 * ```ts
 * import { healthResultOf } from "./metrics.ts";
 *
 * if (healthResultOf({ passed: false, status: 0, error: "timeout" }) !== "timeout") {
 *   throw new Error("timeout");
 * }
 * ```
 */
export function healthResultOf(
  check: { readonly passed: boolean; readonly status: number; readonly error?: string },
): HealthResult {
  if (check.passed) return "pass";
  if (check.error === "timeout") return "timeout";
  return check.status > 0 ? "fail" : "error";
}
