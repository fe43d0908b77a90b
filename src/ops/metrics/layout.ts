/**
 * Where each counter lives in a thread's region of the metrics memory: computed from the config
 * alone, so the main thread and every worker (each with its own parse of the same file) agree
 * without sending a table, and a request finds its slots with two Map lookups.
 *
 * A region is `[gauges][upstream 0: server 0 block, server 1 block, …, "no server" block][upstream
 * 1 …]…["no upstream": its "no server" block]`. A server block holds the server's request counts
 * by status class, its request-duration and upstream-header-time histograms (buckets, then the
 * sum in seconds), its sticky decisions by outcome, its failures by catalogue code and its health
 * checks by result. Per server, not per upstream, so the admin API can show each server's
 * latency and sticky counts; the exposition sums them per upstream where the metric says so.
 *
 * @module
 */
import type { Upstream } from "../../config/mod.ts";
import { type FailureCode, FAILURES } from "../../proxy/errors.ts";
import type { StickyOutcome } from "../../sticky/resolve.ts";

/** Histogram bounds in ms (Prometheus `le` in seconds: .001 … 30), fit for a proxy. */
export const BUCKETS_MS: readonly number[] = [
  1,
  2.5,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
];

/** Status classes, the `class` label: index = first digit - 1. */
export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

const OUTCOME_INDEX: Readonly<Record<StickyOutcome, number>> = {
  none: 0,
  new: 1,
  hit: 2,
  repin: 3,
  invalid: 4,
  refused: 5,
  // Appended (issue 11): the slots before them keep their places.
  legacy: 6,
  route: 7,
  // Appended (issue 12).
  forged: 8,
  unknown_key: 9,
  rotated: 10,
  expired_idle: 11,
  expired_life: 12,
  header: 13,
};
/** Sticky outcomes in slot order (the access log's words). */
export const STICKY_OUTCOMES = Object.keys(OUTCOME_INDEX) as StickyOutcome[];

/** Every catalogue code, in slot order. */
export const FAILURE_CODES = Object.keys(FAILURES) as FailureCode[];
const CODE_INDEX = new Map<FailureCode, number>(FAILURE_CODES.map((code, i) => [code, i]));

/**
 * A health check's result, the `result` label: `pass` (an expected status), `fail` (another
 * status), `timeout` (no whole answer within the check's timeout), `error` (refused, reset,
 * invalid answer).
 */
export type HealthResult = "pass" | "fail" | "timeout" | "error";
const RESULT_INDEX: Readonly<Record<HealthResult, number>> = {
  pass: 0,
  fail: 1,
  timeout: 2,
  error: 3,
};
/** Health check results in slot order. */
export const HEALTH_RESULTS = Object.keys(RESULT_INDEX) as HealthResult[];

/** A histogram's slots: one per bound, one for +Inf, then the sum. */
export const HISTOGRAM_SLOTS = BUCKETS_MS.length + 2;

/** Offsets inside a server block. */
export const BLOCK = {
  requests: 0,
  duration: STATUS_CLASSES.length,
  header: STATUS_CLASSES.length + HISTOGRAM_SLOTS,
  sticky: STATUS_CLASSES.length + 2 * HISTOGRAM_SLOTS,
  failures: STATUS_CLASSES.length + 2 * HISTOGRAM_SLOTS + STICKY_OUTCOMES.length,
  health: STATUS_CLASSES.length + 2 * HISTOGRAM_SLOTS + STICKY_OUTCOMES.length +
    FAILURE_CODES.length,
  size: STATUS_CLASSES.length + 2 * HISTOGRAM_SLOTS + STICKY_OUTCOMES.length +
    FAILURE_CODES.length + HEALTH_RESULTS.length,
} as const;

/** Process-wide gauges and counters at the start of a region. */
export const GLOBAL = {
  clientConnections: 0,
  websocketsOpen: 1,
  accessLogDropped: 2,
  size: 3,
} as const;

/** One upstream's blocks. */
export interface UpstreamLayout {
  /** The upstream's name; "" for the "no upstream" blocks (no route matched). */
  readonly name: string;
  /** Undefined for the "no upstream" entry. */
  readonly upstream: Upstream | undefined;
  /** Server ids in config order (the "no server" block comes after them). */
  readonly serverIds: readonly string[];
  /** Block offset of each server by id. */
  readonly blockById: ReadonlyMap<string, number>;
  /** Block of requests that no server answered (or that named a server not in this config). */
  readonly noServerBlock: number;
  /** Offsets of every block, servers first, then the "no server" block. */
  readonly blocks: readonly number[];
}

/** The whole layout. */
export interface MetricsLayout {
  readonly upstreams: readonly UpstreamLayout[];
  readonly byName: ReadonlyMap<string, UpstreamLayout>;
  /** The blocks of requests that matched no route. */
  readonly noUpstream: UpstreamLayout;
  /** Slots in one thread's region. */
  readonly regionSize: number;
  /** Upstream and server names in order: the same config gives the same fingerprint. */
  readonly fingerprint: string;
}

/** The layout for a config's upstreams (a `GatewayConfig` is one). */
export function metricsLayout(
  config: { readonly upstreams: ReadonlyMap<string, Upstream> },
): MetricsLayout {
  let next = GLOBAL.size;
  const block = () => {
    const offset = next;
    next += BLOCK.size;
    return offset;
  };
  const upstreams: UpstreamLayout[] = [];
  const byName = new Map<string, UpstreamLayout>();
  for (const upstream of config.upstreams.values()) {
    const serverIds = upstream.servers.map((server) => server.id);
    const blockById = new Map<string, number>();
    const blocks: number[] = [];
    for (const id of serverIds) {
      const offset = block();
      blockById.set(id, offset);
      blocks.push(offset);
    }
    const noServerBlock = block();
    blocks.push(noServerBlock);
    const entry = { name: upstream.name, upstream, serverIds, blockById, noServerBlock, blocks };
    upstreams.push(entry);
    byName.set(upstream.name, entry);
  }
  const none = block();
  const noUpstream: UpstreamLayout = {
    name: "",
    upstream: undefined,
    serverIds: [],
    blockById: new Map(),
    noServerBlock: none,
    blocks: [none],
  };
  const fingerprint = upstreams.map((u) => `${u.name}\0${u.serverIds.join("\0")}`).join("\n");
  return { upstreams, byName, noUpstream, regionSize: next, fingerprint };
}

/** The `class` slot of a status: 1xx … 5xx (anything else counts as 5xx). */
export function classIndex(status: number): number {
  const digit = Math.floor(status / 100);
  return digit >= 1 && digit <= 5 ? digit - 1 : 4;
}

/** The bucket slot of a duration in ms (BUCKETS_MS.length for +Inf). */
export function bucketIndex(ms: number): number {
  let i = 0;
  while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]) i++;
  return i;
}

/** The slot of a sticky outcome in a block's sticky counts. */
export function outcomeIndex(outcome: StickyOutcome): number {
  return OUTCOME_INDEX[outcome] ?? 0;
}

/** The slot of a catalogue code in a block's failure counts; -1 for an unknown code. */
export function codeIndex(code: FailureCode): number {
  return CODE_INDEX.get(code) ?? -1;
}

/** The slot of a health check result. */
export function resultIndex(result: HealthResult): number {
  return RESULT_INDEX[result] ?? RESULT_INDEX.error;
}
