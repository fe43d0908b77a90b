/**
 * What `bench/micro/scale.ts` measures, as it writes it with `--json`, and the one markdown table
 * for it: printed by scale.ts for one runtime, rendered by bench/lib/report.ts for both.
 *
 * @module
 */

/** The configs compared (see bench/lib/configs.ts); "main" is the baseline. */
export type MicroScenario = "main" | "servers1000" | "servers1000down" | "routes500";
export type MicroCookie = "absent" | "present";
/** "decision": route + cookie + sticky + pick + Set-Cookie; "handle": the whole Gateway.handle. */
export type MicroKind = "decision" | "handle";

export const MICRO_SCENARIOS: readonly MicroScenario[] = [
  "main",
  "servers1000",
  "servers1000down",
  "routes500",
];
export const MICRO_COOKIES: readonly MicroCookie[] = ["absent", "present"];

export const MICRO_SCENARIO_NAMES: Record<MicroScenario, string> = {
  main: "3 servers, 1 route (baseline)",
  servers1000: "1,000 servers (all live)",
  servers1000down: "1,000 servers (3 live, 997 down)",
  routes500: "500 routes",
};

/**
 * One kind of measurement of one (scenario, cookie) case over all trials. ns are CPU time of the
 * process per request (see scale.ts: the wall clock also counts other processes on the core).
 */
export interface MicroStat {
  /** Iterations in each trial (calibrated once, after the warm-up). */
  readonly iterations: number;
  /** CPU ns/op of each trial, in trial order. */
  readonly trialsNs: number[];
  readonly medianNs: number;
  readonly minNs: number;
  readonly maxNs: number;
  /** ns/op ÷ the baseline's (same kind and cookie) in the same trial: median, min, max over
   * trials. Exactly 1 for the baseline. Above 1 = costs more than 3 servers / 1 route. */
  readonly ratio: number;
  readonly ratioMin: number;
  readonly ratioMax: number;
  /** Wall-clock ns/op (median), for reference. */
  readonly wallMedianNs: number;
}

export interface MicroRow {
  readonly scenario: MicroScenario;
  readonly cookie: MicroCookie;
  readonly decision: MicroStat;
  readonly handle: MicroStat;
}

export interface MicroResult {
  readonly runtime: "bun" | "deno";
  readonly version: string;
  readonly quick: boolean;
  readonly trials: number;
  /** Target length of one case in one trial. */
  readonly trialMs: number;
  readonly warmupMs: number;
  /** CPU time over wall time while timing: below 1, other processes took part of the core. */
  readonly coreShare: number;
  /** A full GC ran before each timed batch (on Bun). */
  readonly fullGc: boolean;
  /** What was checked before and during the timing (all passed, or there is no result). */
  readonly checks: string[];
  readonly rows: MicroRow[];
}

/** One micro-benchmark child process as bench/run.ts records it in results.json. */
export interface MicroRun {
  /** "micro/bun", "micro/deno". */
  readonly id: string;
  readonly runtime: "bun" | "deno";
  ok: boolean;
  error?: string;
  seconds?: number;
  result?: MicroResult;
}

const ns = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const times = (n: number) => `${n.toFixed(3)}×`;

function cell(stat: MicroStat, baseline: boolean): [string, string] {
  return [
    `${ns(stat.medianNs)} (${ns(stat.minNs)}–${ns(stat.maxNs)})`,
    baseline
      ? "1 (baseline)"
      : `**${times(stat.ratio)}** (${times(stat.ratioMin)}–${times(stat.ratioMax)})`,
  ];
}

/** What one run was, in a sentence. */
export function microCaption(r: MicroResult): string {
  return `${
    r.runtime === "bun" ? "Bun" : "Deno"
  } ${r.version}: median CPU ns per request of ${r.trials} interleaved trials (~${r.trialMs} ms of CPU per case each, after a ${r.warmupMs} ms warm-up${
    r.fullGc ? "; a full GC before each" : ""
  }); "× baseline" is the median of per-trial ratios to 3 servers / 1 route, same cookie case (min–max in brackets); the benchmark had ${
    Math.round(r.coreShare * 100)
  }% of its core${r.quick ? " (quick: a smoke test, not a measurement)" : ""}`;
}

/** One row per runtime × config × cookie case. */
export function microTable(results: readonly MicroResult[]): string {
  const head = [
    "Runtime",
    "Config",
    "Cookie",
    "decision CPU ns/op (min–max)",
    "× baseline",
    "Gateway.handle CPU ns/op (min–max)",
    "× baseline",
  ];
  const rows = results.flatMap((r) =>
    r.rows.map((row) => {
      const baseline = row.scenario === "main";
      return [
        r.runtime === "bun" ? `Bun ${r.version}` : `Deno ${r.version}`,
        MICRO_SCENARIO_NAMES[row.scenario],
        `cookie ${row.cookie}`,
        ...cell(row.decision, baseline),
        ...cell(row.handle, baseline),
      ];
    })
  );
  const align = ["---", "---", "---", "---:", "---:", "---:", "---:"];
  return [
    `| ${head.join(" | ")} |`,
    `|${align.join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ]
    .join("\n");
}

/** One line for a log: how far the other configs are from the baseline. */
export function microSummary(r: MicroResult): string {
  const others = r.rows.filter((row) => row.scenario !== "main");
  const range = (kind: MicroKind) => {
    const ratios = others.map((row) => row[kind].ratio);
    return `${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}×`;
  };
  return `× 3 servers, 1 route: Gateway.handle ${range("handle")}, decision ${range("decision")}`;
}
