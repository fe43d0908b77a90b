/**
 * The contract of a bench phase (issue 14): a measurement beside the throughput and streaming
 * runs of bench/run.ts (TLS and HTTP/2, WebSockets, concurrent and slow streams, idle
 * connections), in its own file under bench/phases/. run.ts plans a phase's variants (filtered
 * by --only), runs them in interleaved rounds after the throughput and streaming rounds, keeps
 * the rows in results.json (`phases.<id>`) and puts the phase's markdown section and its lines of
 * the issue-14 target table into the report.
 *
 * @module
 */
import type { Ports } from "./configs.ts";

/** A way to run the proxy under test that a phase may launch with a config of its own. */
export interface PhaseTarget {
  /** "gw-deno" | "gw-bun" | "gw-binary" | "haproxy". */
  readonly id: string;
  readonly label: string;
  readonly kind: "gateway" | "haproxy";
  /** Gateways only: the command line for a config file (cwd: ctx.gatewayDir). */
  argv(configFile: string): string[];
}

/** What run.ts gives a phase. */
export interface PhaseContext {
  readonly quick: boolean;
  readonly rounds: number;
  /** Seconds of one measurement (8 in a full run, 1 in --quick). */
  readonly duration: number;
  /** Warm-up seconds before a measurement (0 in --quick). */
  readonly warmup: number;
  readonly ports: Ports;
  /** Temp directory of this run (removed at the end). */
  readonly tmp: string;
  /** bench/results/<run>/: logs of started processes go here. */
  readonly runDir: string;
  /** The repository root; the bench directory is `${root}/bench`. */
  readonly root: string;
  /** The snapshot of the gateway (src/ copied at the start): cwd of a gateway process. */
  readonly gatewayDir: string;
  readonly deno: string;
  readonly bun: string;
  /** CPU of the proxy under test / of load generators and upstreams (taskset -c), if pinning. */
  readonly proxyCpu?: string;
  readonly loadCpu?: string;
  /** `[server]` lines every gateway config must carry (workers = 1, client_max_body_size = 0). */
  readonly serverExtras: string;
  /** The proxies available in this run (gateway three ways, HAProxy). */
  readonly targets: readonly PhaseTarget[];
  log(message: string): void;
  /** Waits (bounded) for a quiet machine before a measurement; returns the busiest core's %. */
  awaitQuiet(): Promise<number>;
}

/** One measured run. Phases add their own fields. */
export interface PhaseRow {
  variant: string;
  round: number;
  ok: boolean;
  error?: string;
  [field: string]: unknown;
}

/** One line of the "Against the targets of issue 14" table. */
export interface TargetLine {
  readonly target: string;
  readonly measured: string;
  /** "✅ met" | "❌ not met" | "ℹ️ …" */
  readonly status: string;
}

/** A phase of `make bench`. */
export interface Phase {
  /** Short id: "tls", "ws", "streams", "idle"; variant ids are `${id}/...`. */
  readonly id: string;
  /** Variant ids this phase would run in this context (before --only filtering). */
  variants(ctx: PhaseContext): string[];
  /** Once before the first round (upstreams, certificates, data); skip: why it cannot run. */
  setup(ctx: PhaseContext, variants: string[]): Promise<void | { skip: string }>;
  /** One measurement: start the proxy, check it, load it, stop it. Never throws. */
  run(ctx: PhaseContext, variant: string, round: number): Promise<PhaseRow>;
  /** One log line for a row (ok or failed). */
  summary(row: PhaseRow): string;
  /** Once after the last round. */
  teardown(): Promise<void>;
  /** The markdown section ("### ..." heading, method text, table) from every row of the run. */
  render(rows: PhaseRow[], ctx: RenderContext): string;
  /** This phase's lines of the issue-14 target table. */
  targets(rows: PhaseRow[], ctx: RenderContext): TargetLine[];
  /** Its panels of docs/benchmarks.svg (one bar per variant: the median over rounds). */
  chart(rows: PhaseRow[], ctx: RenderContext): ChartPanel[];
}

/** A panel of bars in the bench's chart. */
export interface ChartPanel {
  readonly title: string;
  /** The axis label, e.g. "requests per second". */
  readonly unit: string;
  readonly bars: readonly ChartBar[];
}

/** One bar: a variant's median over rounds, its range, its kind's colour. */
export interface ChartBar {
  readonly label: string;
  readonly value: number | undefined;
  readonly min?: number;
  readonly max?: number;
  readonly kind: "gateway" | "haproxy" | "baseline";
  /** After the value, e.g. "0.45× HAProxy". */
  readonly note?: string;
}

/** The bar of one variant from its rows' values (ok rows only). */
export function chartBar(
  label: string,
  kind: ChartBar["kind"],
  values: readonly (number | undefined)[],
  ratio?: number,
): ChartBar {
  const v = values.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const m = v.length >> 1;
  return {
    label,
    kind,
    value: v.length === 0 ? undefined : v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2,
    min: v[0],
    max: v[v.length - 1],
    note: ratio === undefined || Math.abs(ratio - 1) < 1e-9
      ? undefined
      : `${ratio.toFixed(2)}× HAProxy`,
  };
}

/** What a phase's report may use besides its own rows. */
export interface RenderContext {
  readonly rounds: number;
  readonly quick: boolean;
  /**
   * The main table's plain-HTTP (16-byte, `wrk -c64`) ratio of a target to HAProxy in this run:
   * median of per-round req/s ratios; undefined when not measured.
   */
  plainRatio(targetId: string, cookie: "absent" | "present"): number | undefined;
}
