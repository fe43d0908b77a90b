/**
 * Medians, ratios measured in the same round, the markdown tables, the issue's targets, and a
 * hand-written SVG bar chart (no dependencies).
 *
 * @module
 */
import type { Ports, Scenario } from "./configs.ts";
import {
  MICRO_SCENARIO_NAMES,
  microCaption,
  type MicroResult,
  type MicroRow,
  type MicroRun,
  microTable,
} from "../micro/result.ts";
import type { ChartPanel, TargetLine } from "./phase.ts";
import { fixed, int, mib, pct, table, times } from "./format.ts";

export interface Launch {
  readonly argv: string[];
  readonly env?: Record<string, string>;
}

export interface Target {
  readonly id: string;
  readonly label: string;
  readonly kind: "gateway" | "haproxy" | "nginx" | "baseline" | "peer";
  readonly runtime?: string;
  /** Sticky cookie name; undefined: no stickiness (one variant, cookie "-"). */
  readonly cookie?: string;
  /** A valid cookie gets no new Set-Cookie (checked). */
  readonly quietWhenPinned?: boolean;
  readonly scale: boolean;
  readonly stream: boolean;
  readonly optional?: boolean;
  readonly skip?: string;
  /** The command for a scenario; `ports` (default: the bench's) moves its listeners, `tag` its
   * files (a side-by-side companion runs beside the variant). */
  launch(scenario: Scenario, extraServerToml: string, ports?: Ports, tag?: string): Launch;
}

export interface Variant {
  readonly id: string;
  readonly target: Target;
  readonly scenario: Scenario;
  readonly cookie: "absent" | "present" | "-";
}

export interface StreamVariant {
  readonly id: string;
  readonly target: Target;
  readonly direction: "download" | "upload";
}

export interface ThroughputResult {
  variant: string;
  round: number;
  ok: boolean;
  error?: string;
  loadavg?: string;
  /** Busiest core (%) just before the run (full mode waits up to 15 s for < 15%). */
  idleBefore?: number;
  rps?: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  rssKiB?: number;
  /** RssAnon at the end of the measurement (without the executable's file pages). */
  anonRssKiB?: number;
  cpuPct?: number;
  /** The proxy's CPU as a whole (the proxy plus anything else that ran there). */
  proxyCoreBusyPct?: number;
  /** wrk's and the upstreams' CPU: near 100% means the load side may be the limit. */
  loadCoreBusyPct?: number;
  /** Hypervisor steal on the proxy's / the load core during the measurement (VMs). */
  proxyCoreStealPct?: number;
  loadCoreStealPct?: number;
  requests?: number;
  errors?: Record<string, number>;
  /** Scenario "reloads": reloads asked for during the run and how many answered 200. */
  reloads?: { asked: number; ok: number };
  /**
   * The reference this variant was measured beside, in the same seconds (see COMPANIONS): the
   * same gateway with the reference config, both pinned to the proxy's core (each gets about
   * half of it), each under its own wrk. Their ratio is free of the VM's swings between runs.
   */
  companion?: CompanionResult;
}

/** The side-by-side reference's figures in one run. */
export interface CompanionResult {
  /** Its variant id, e.g. gw-bun/main/absent. */
  variant: string;
  rps: number;
  p99Ms: number;
  cpuPct: number;
  rssKiB: number;
}

/**
 * Scenarios measured side by side with a reference (issues 9, 10, 12, 13: the cost of a feature
 * against the same gateway without it, a few percent that single runs on this VM cannot show).
 */
export const COMPANIONS: Partial<Record<Scenario, Scenario>> = {
  log: "main",
  metrics: "main",
  // Steady state = the same config without the storm: the admin listener on (issue 10).
  reloads: "admin",
  token: "main",
  dns200: "static200",
};

export interface StreamResult {
  variant: string;
  round: number;
  ok: boolean;
  error?: string;
  bytes?: number;
  seconds?: number;
  mibps?: number;
  cpuPerGiB?: number;
  rssKiB?: number;
  loadCoreBusyPct?: number;
  proxyCoreStealPct?: number;
  idleBefore?: number;
  verified?: string;
}

export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memGiB: number;
  kernel: string;
  os: string;
  proxyCpu?: string;
  loadCpu?: string;
  commit: string;
  versions: Record<string, string>;
  workers: boolean;
  /** Extra `[server]` lines given to every gateway config. */
  serverExtras?: string[];
  upstreamClient: string;
}

interface Input {
  opt: { quick: boolean; rounds: number; duration: number; warmup: number; streamRounds: number };
  machine: Machine;
  variants: Variant[];
  streams: StreamVariant[];
  results: ThroughputResult[];
  streamResults: StreamResult[];
  /** The in-process scale micro-benchmark, one run per runtime (absent in old results.json). */
  micro?: MicroRun[];
  wallSeconds: number;
  streamMiB: number;
  ports: Ports;
  /** The phases of bench/phases/ that ran (issue 14): their sections, target lines, panels. */
  phases?: { id: string; section: string; targets: TargetLine[]; panels: ChartPanel[] }[];
}

export interface Output {
  /** Markdown tables for the terminal. */
  tables: string;
  /** The generated section of docs/benchmarks.md (between the markers). */
  section: string;
  svg: string;
  /** docs/benchmarks.md: the old text with the generated section replaced (or a new file). */
  document(previous: string | undefined): string;
}

export const BEGIN =
  "<!-- bench:begin: generated by `make bench` (bench/run.ts); edit outside the markers -->";
export const END = "<!-- bench:end -->";

// ---------------------------------------------------------------------------------------------
// Statistics

export function median(values: number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Proxy CPU time per request (µs): the cost, whatever share of its core the proxy got. */
export const usPerRequest = (r: ThroughputResult) =>
  r.cpuPct !== undefined && r.rps ? (r.cpuPct / 100 / r.rps) * 1e6 : undefined;
/** Requests per second of proxy CPU: what the proxy would do with its core to itself. */
const perCpuSecond = (r: ThroughputResult) => {
  const us = usPerRequest(r);
  return us ? 1e6 / us : undefined;
};

/**
 * The median over a variant's runs of value(variant) / value(its companion), both measured in the
 * same seconds (see COMPANIONS); undefined when it ran without one.
 */
export function sideBySide(
  results: ThroughputResult[],
  id: string,
  value: (r: ThroughputResult | CompanionResult) => number | undefined,
): number | undefined {
  const ratios: number[] = [];
  for (const r of results) {
    if (r.variant !== id || !r.ok || r.companion === undefined) continue;
    const a = value(r);
    const b = value(r.companion);
    if (a !== undefined && b !== undefined && b > 0) ratios.push(a / b);
  }
  return median(ratios);
}

/** Requests per CPU-second of a run or of its companion. */
const cpuRate = (r: ThroughputResult | CompanionResult) =>
  r.cpuPct && r.rps ? r.rps / (r.cpuPct / 100) : undefined;

const okRuns = (results: ThroughputResult[], id: string) =>
  results.filter((r) => r.variant === id && r.ok);

function stat(
  results: ThroughputResult[],
  id: string,
  key: keyof ThroughputResult,
): number | undefined {
  return median(okRuns(results, id).map((r) => r[key] as number));
}

/** Median over rounds of a(round) / b(round), both from the same round. */
export function pairedRatio<R extends { variant: string; round: number; ok: boolean }>(
  results: R[],
  a: string,
  b: string,
  value: (r: R) => number | undefined,
): number | undefined {
  const ratios: number[] = [];
  for (const ra of results) {
    if (ra.variant !== a || !ra.ok) continue;
    const rb = results.find((r) => r.variant === b && r.round === ra.round && r.ok);
    const va = value(ra);
    const vb = rb && value(rb);
    if (va !== undefined && vb !== undefined && vb > 0) ratios.push(va / vb);
  }
  return median(ratios);
}

// ---------------------------------------------------------------------------------------------
// Formatting

const cookieText = (c: Variant["cookie"]) => (c === "-" ? "no sticky" : `cookie ${c}`);

function haproxyRef(v: Variant): string {
  return `haproxy/main/${v.cookie === "present" ? "present" : "absent"}`;
}

// ---------------------------------------------------------------------------------------------
// The report

export function report(input: Input): Output {
  const { results, streamResults, machine: m, opt } = input;
  const main = input.variants.filter((v) => v.scenario === "main");
  const scale = input.variants.filter((v) => v.scenario !== "main");
  const haveHaproxy = results.some((r) => r.variant.startsWith("haproxy/") && r.ok);

  // Throughput
  const mainRows = main.map((v) => {
    const runs = okRuns(results, v.id);
    const ref = haproxyRef(v);
    const range = runs.length === 0
      ? "–"
      : `${int(Math.min(...runs.map((r) => r.rps!)))}–${int(Math.max(...runs.map((r) => r.rps!)))}`;
    return [
      v.target.label,
      cookieText(v.cookie),
      `**${int(stat(results, v.id, "rps"))}**`,
      haveHaproxy ? times(pairedRatio(results, v.id, ref, (r) => r.rps)) : "–",
      `${fixed(stat(results, v.id, "p50Ms"))} ms`,
      `${fixed(stat(results, v.id, "p99Ms"))} ms`,
      haveHaproxy ? times(pairedRatio(results, v.id, ref, (r) => r.p99Ms)) : "–",
      mib(stat(results, v.id, "rssKiB")),
      mib(stat(results, v.id, "anonRssKiB")),
      pct(stat(results, v.id, "cpuPct")),
      fixed(median(okRuns(results, v.id).map((r) => usPerRequest(r)!)), 1),
      haveHaproxy ? times(pairedRatio(results, v.id, ref, perCpuSecond)) : "–",
      pct(stat(results, v.id, "loadCoreBusyPct")),
      `${range} (${runs.length}/${results.filter((r) => r.variant === v.id).length} ok)`,
    ];
  });
  const throughputTable = table(
    [
      "Target",
      "Cookie",
      "req/s",
      "× HAProxy",
      "p50",
      "p99",
      "p99 × HAProxy",
      "peak RSS",
      "anon RSS",
      "proxy CPU",
      "CPU µs/req",
      "× HAProxy per CPU",
      "load CPU",
      "req/s min–max (runs)",
    ],
    mainRows,
    [
      "---",
      "---",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
      "---:",
    ],
  );

  // Scale
  const scaleNames: Record<string, string> = {
    servers1000: "1,000 servers (all live)",
    servers1000down: "1,000 servers (3 live, 997 down)",
    routes500: "500 routes",
    log: "access log to a file",
    metrics: "/metrics scraped every 1 s",
    reloads: "a reload storm",
    admin: "without (the same config: admin listener on, no reload)",
    static200: "200 servers listed",
    dns200: "200 servers from DNS, re-resolved every 1 s",
  };
  const paired = scale.filter((v) => results.some((r) => r.variant === v.id && r.companion));
  const pairedRows = paired.map((v) => {
    const runs = okRuns(results, v.id).filter((r) => r.companion !== undefined);
    const ref = runs[0]?.companion?.variant ?? `${COMPANIONS[v.scenario]}`;
    const refScenario = ref.split("/")[1];
    const companionMedian = (value: (c: CompanionResult) => number | undefined) =>
      median(runs.map((r) => value(r.companion!)).filter(isNumber));
    return [
      v.target.label,
      scaleNames[v.scenario] ?? v.scenario,
      cookieText(v.cookie),
      scaleNames[refScenario] ?? (refScenario === "main" ? "without (3 servers, 1 route)" : ref),
      `${int(stat(results, v.id, "rps"))} / ${int(companionMedian((c) => c.rps))}`,
      `**${times(sideBySide(results, v.id, (r) => r.rps))}**`,
      times(sideBySide(results, v.id, cpuRate)),
      `${fixed(stat(results, v.id, "p99Ms"))} / ${fixed(companionMedian((c) => c.p99Ms))} ms`,
      `${mib(stat(results, v.id, "rssKiB"))} / ${mib(companionMedian((c) => c.rssKiB))}`,
      `${runs.length}`,
    ];
  });
  const pairedTable = pairedRows.length === 0 ? "" : table(
    [
      "Gateway",
      "With",
      "Cookie",
      "Beside (reference)",
      "req/s (with / reference)",
      "× reference",
      "× per CPU-second",
      "p99",
      "peak RSS",
      "runs",
    ],
    pairedRows,
    ["---", "---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:"],
  );
  const scaleRows = scale.filter((v) => !paired.includes(v)).map((v) => {
    const baseId = `${v.target.id}/main/${v.cookie}`;
    return [
      v.target.label,
      scaleNames[v.scenario] ?? v.scenario,
      cookieText(v.cookie),
      int(stat(results, v.id, "rps")),
      `**${times(pairedRatio(results, v.id, baseId, (r) => r.rps))}**`,
      `${fixed(stat(results, v.id, "p99Ms"))} ms`,
      mib(stat(results, v.id, "rssKiB")),
      pct(stat(results, v.id, "cpuPct")),
      fixed(median(okRuns(results, v.id).map((r) => usPerRequest(r)!)), 1),
      times(pairedRatio(results, v.id, baseId, perCpuSecond)),
    ];
  });
  const scaleTable = scaleRows.length === 0 ? "" : table(
    [
      "Proxy",
      "Config",
      "Cookie",
      "req/s",
      "× 3 servers, 1 route",
      "p99",
      "peak RSS",
      "proxy CPU",
      "CPU µs/req",
      "× per CPU",
    ],
    scaleRows,
    ["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"],
  );

  // Streaming
  const streamRows = input.streams.map((v) => {
    const runs = streamResults.filter((r) => r.variant === v.id);
    const ok = runs.filter((r) => r.ok);
    const ref = `haproxy/${v.direction}`;
    return [
      v.target.label,
      v.direction,
      `**${fixed(median(ok.map((r) => r.mibps!)), 0)}**`,
      times(pairedRatio(streamResults, v.id, ref, (r) => r.mibps)),
      fixed(median(ok.map((r) => r.cpuPerGiB!)), 2),
      mib(median(ok.map((r) => r.rssKiB!))),
      pct(median(ok.map((r) => r.loadCoreBusyPct!))),
      ok.length === 0
        ? "–"
        : `${ok.length}/${runs.length} runs: ${
          ok[0].bytes!.toLocaleString("en-US")
        } bytes, CRC-32 ✓`,
    ];
  });
  const streamTable = streamRows.length === 0 ? "" : table(
    [
      "Target",
      "Direction",
      "MiB/s",
      "× HAProxy",
      "proxy CPU s/GiB",
      "peak RSS",
      "load CPU",
      "bytes verified",
    ],
    streamRows,
    ["---", "---", "---:", "---:", "---:", "---:", "---:", "---"],
  );

  const micro = input.micro ?? [];
  const microResults = micro.flatMap((m) => (m.result === undefined ? [] : [m.result]));
  const microText = microResults.length === 0 ? "" : microTable(microResults);

  const targetsTable = evaluateTargets(input);
  const failures = [...results, ...streamResults].filter((r) => !r.ok);
  const microFailures = micro.filter((m) => !m.ok);
  const failureText = failures.length + microFailures.length === 0 ? "" : `\n### Failed runs\n\n${
    [
      ...failures.map((r) =>
        `- round ${r.round}, \`${r.variant}\`: ${r.error?.replaceAll("|", "\\|")}`
      ),
      ...microFailures.map((m) => `- \`${m.id}\`: ${m.error?.replaceAll("|", "\\|")}`),
    ].join("\n")
  }\n`;

  const gib = input.streamMiB >= 1024
    ? `${(input.streamMiB / 1024).toFixed(input.streamMiB % 1024 === 0 ? 0 : 1)} GiB`
    : `${input.streamMiB} MiB`;
  const pin = m.proxyCpu === undefined
    ? "no CPU pinning (fewer than 2 cores)"
    : `proxy under test pinned to CPU ${m.proxyCpu}; wrk, the upstream nginx and the upload sink pinned to CPU ${m.loadCpu}`;
  const interference = results.filter((r) => r.ok && r.proxyCoreBusyPct !== undefined).map((r) =>
    r.proxyCoreBusyPct! - r.cpuPct!
  );
  const steals = [...results, ...streamResults].map((r) => r.proxyCoreStealPct).filter((
    x,
  ): x is number => x !== undefined && Number.isFinite(x));
  const stealNote = steals.length === 0
    ? ""
    : ` · hypervisor steal on the proxy's core during a measurement: median ${
      median(steals)!.toFixed(0)
    }%, max ${Math.max(...steals).toFixed(0)}%${
      Math.max(...steals) >= 5
        ? " (a VM sharing its host: expect run-to-run noise well above 5%)"
        : ""
    }`;
  const all = [...results, ...streamResults];
  const busyStarts = all.filter((r) => (r.idleBefore ?? 0) >= 15).length;
  const quietNote = all.some((r) => r.idleBefore !== undefined && Number.isFinite(r.idleBefore))
    ? ` · before each run the bench waits (up to 15 s, 5 min in all) for both cores to be < 15% busy: ${
      busyStarts === 0
        ? `all ${all.length} runs started on a quiet machine`
        : `${busyStarts} of ${all.length} runs started on a busy one anyway`
    }`
    : "";
  const loads = results.map((r) => Number(r.loadavg?.split(" ")[0])).filter((x) =>
    Number.isFinite(x)
  );
  const phaseText = (input.phases ?? []).map((p) => `${p.section.trim()}\n\n`).join("");
  const issue14Table = table(
    ["Target", "Measured", "Status"],
    [...issue14Lines(input), ...(input.phases ?? []).flatMap((p) => p.targets)].map((l) => [
      l.target,
      l.measured,
      l.status,
    ]),
    ["---", "---", "---"],
  );
  const section = `${BEGIN}

## Results${opt.quick ? " (quick mode: a smoke test, not a measurement)" : ""}

${m.date} · ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB · ${m.os}, Linux ${m.kernel} · gateway ${m.commit}${
    (m.serverExtras ?? (m.workers ? ["workers = 1"] : [])).length
      ? ` with ${(m.serverExtras ?? ["workers = 1"]).map((l) => `\`${l}\``).join(", ")}`
      : ""
  }, upstream_client ${m.upstreamClient} · ${pin} · whole run ${
    (input.wallSeconds / 60).toFixed(1)
  } min · 1-min load average at the start of each run: ${
    loads.length ? `${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}` : "–"
  }${quietNote}${stealNote}

![Requests per second by target, and streaming MiB/s](benchmarks.svg)

### Throughput: 16-byte responses, \`wrk -t1 -c64 -d${opt.duration}s\`${
    opt.warmup > 0 ? ` after a ${opt.warmup} s warm-up` : ""
  }, medians of ${opt.rounds} interleaved round${opt.rounds > 1 ? "s" : ""}

Ratios are medians of per-round ratios against HAProxy measured in the same round (cookie-present rows against HAProxy with its cookie present, all others against HAProxy without cookie). Peak RSS is VmHWM of the proxy's process tree (nginx: master + worker summed); anon RSS is the part of the resident set at the end of the measurement that is the process's own memory (RssAnon: heap, buffers), without the pages of its executable file that the load touched (\`deno\` is 91 MiB, \`bun\` 102 MiB, HAProxy 3 MiB). Proxy CPU is the proxy's CPU time over the measured seconds (100% = its whole core); load CPU is how busy the other core (wrk + upstream nginx) was: near 100% means the load side, not the proxy, set the pace.${
    interference.length
      ? ` Other processes took at most ${
        Math.max(0, Math.max(...interference)).toFixed(0)
      }% of the proxy's core during a measured run (median ${
        Math.max(0, median(interference)!).toFixed(0)
      }%).`
      : ""
  }

${throughputTable}
${
    scaleTable === "" ? "" : `
### Scale of the config, end to end (issue 4, point 5)

The end-to-end picture: the same gateway, request and load; only the config differs (HAProxy with the same 1,000 live servers is there for reference: what a large pool costs a proxy that is not JavaScript). "× 3 servers, 1 route" is the median of per-round ratios against the gateway on the same runtime with the main config (3 servers, 1 route), same cookie case. "All live": 1,000 real listeners (one nginx), so a cookie-less client is spread over all of them and the gateway keeps connections to each. "3 live, 997 down": the 3 usual upstreams among 997 \`down = true\` addresses that are never contacted, so every request still lands on the same 3 servers and only the gateway's own per-request work can differ. "500 routes": 500 path prefixes (\`/\`, \`/svc001/\` … \`/svc499/\`), the request (\`/svc499/item\`) matches the last one. From run to run a load run here spreads far more than 5% (see the main table's min–max), so the "≤ 5%" target is decided in process (next table); these rows show what a large config costs once sockets and upstream connections are involved.

${scaleTable}
`
  }${
    pairedTable === "" ? "" : `
### Features side by side (issues 9, 10, 12, 13)

What a feature costs, measured against the same gateway without it *in the same seconds*: for each run the variant and its reference (the same runtime, target and cookie case, with the reference config) are started together, both pinned to the proxy's core (the scheduler gives each about half of it), each loaded by its own \`wrk -t1 -c64\` on the load core for the same ${opt.duration} s after the same warm-up. A run of this VM swings by ±30% from one minute to the next, which hides a 3–10% target between separate runs; side by side both see the same machine. "× reference" is the median over runs of the variant's req/s over its reference's in that run, "× per CPU-second" the same of requests per CPU-second (the process's own utime+stime). req/s are about half of a core's (two gateways share it). The reload storm rewrites the config file and asks for a reload through the admin API back to back (the gateway coalesces them and applies at most one per \`reload_throttle\`, 1 s by default), against the same config asked nothing (its steady state: the admin listener is on in both, and with it the per-request metrics it serves); /metrics is fetched every second (against main, without the admin listener: the whole cost of metrics); the access log goes to a file; token mode signs and checks tokens with \`max_idle\` set (against main's md5 cookie); 200 servers from DNS are re-resolved every second (against the same 200 listed).

${pairedTable}
`
  }${
    microText === "" ? "" : `
### Scale of the config, in process (issue 4, point 5)

\`bench/micro/scale.ts\`, once per runtime before the load runs, pinned to the proxy's core: the gateway's own code in one process, each config loaded by the real config loader from the same TOML as the load runs. **decision** is what \`Gateway.handle\` decides before it calls the upstream, with the same functions (route match, sticky cookie lookup, sticky decision, round-robin pick, Set-Cookie); **Gateway.handle** is the whole handler with a real \`Request\` (a browser's headers; "cookie present": a \`Cookie\` header naming the last live server) and an in-memory upstream that answers nginx's 16-byte response at once, so no socket is involved (the connections to 1,000 live upstreams, which a large pool also costs, show only in the end-to-end table). Every config gets the same request, \`/svc499/item\` (matched by \`/\`, or by \`/svc499/\`, the last of the 500 routes). Times are the process's CPU time per request (the wall clock would also count other processes on the core); each trial runs the four configs of one case back to back, the order rotated from trial to trial, and each ratio is taken within a trial, then the median over trials. The run fails rather than time a wrong path: the pinned server must be the cookie's, cookie-less requests must rotate over every live server, the Set-Cookie must name the server chosen.

${microResults.map((r) => `- ${microCaption(r)}`).join("\n")}

${microText}
`
  }${
    streamTable === "" ? "" : `
### Streaming: ${gib} download and upload, medians of ${opt.streamRounds} interleaved round${
      opt.streamRounds > 1 ? "s" : ""
    }

One transfer at a time, each through a proxy process started for it. Download: the upstream nginx sends a ${gib} file of random bytes (sendfile, page cache) and a small Bun client (\`bench/upstreams/download.ts\`, \`fetch\`) counts the bytes and computes zlib's CRC-32 as they arrive. Upload: \`curl -T\` (Content-Length, \`Expect:\` off) to a Bun sink (\`bench/upstreams/sink.ts\`) that does the same. Both must match the file's size and CRC-32 exactly. MiB/s is over the transfer's own time (client side); CPU s/GiB is the proxy's utime+stime (/proc/PID/stat) per GiB moved; peak RSS is VmHWM of the proxy process; load CPU is how busy the client/upstream core was (near 100%: the load side set the pace).

${streamTable}
`
  }
${phaseText}### Against the targets of issue 14

${issue14Table}

### Against the targets of issue 4

${targetsTable}
${failureText}
### Versions

${Object.entries(m.versions).map(([k, v]) => `- ${k}: ${v}`).join("\n")}

${END}`;

  const tables = [
    `Throughput (median req/s of ${opt.rounds} round(s), ${opt.duration}s each)`,
    throughputTable,
    scaleTable && `\nScale of the config, end to end\n${scaleTable}`,
    microText && `\nScale of the config, in process\n${microText}`,
    streamTable && `\nStreaming ${gib}\n${streamTable}`,
    phaseText && `\n${phaseText}`,
    `\nTargets of issue 14\n${issue14Table}`,
    `\nTargets\n${targetsTable}`,
  ].filter(Boolean).join("\n");

  const svg = chart(input);
  return {
    tables,
    section,
    svg,
    document(previous) {
      if (previous !== undefined) {
        const b = previous.indexOf("<!-- bench:begin");
        const e = previous.indexOf(END);
        if (b >= 0 && e > b) return previous.slice(0, b) + section + previous.slice(e + END.length);
      }
      return `# Benchmarks\n\n\`make bench\` regenerates the section between the markers below (numbers, chart, targets); the text outside them is written by hand.\n\n${section}\n`;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Targets of issue 14 that the main table decides (the phases add theirs)

function issue14Lines(input: Input): TargetLine[] {
  const { results, streamResults } = input;
  const lines: TargetLine[] = [];
  const has = (id: string) => results.some((r) => r.variant === id && r.ok);
  const cookies = ["absent", "present"] as const;
  const met = (ok: boolean | undefined) =>
    ok === undefined ? "not measured" : ok ? "✅ met" : "❌ not met";
  // Point 1: the binary against `bun run` of the same code, CPU per request, paired by round.
  if (has("gw-bun/main/absent") && has("gw-binary/main/absent")) {
    const r = cookies.map((c) =>
      pairedRatio(results, `gw-binary/main/${c}`, `gw-bun/main/${c}`, perCpuSecond)
    );
    const worst = r.some((x) => x === undefined) ? undefined : Math.min(...(r as number[]));
    lines.push({
      target: "Binary ≥ 0.95× `bun run` (requests per CPU-second)",
      measured: `${times(r[0])} / ${times(r[1])} (cookie absent / present; CPU µs/req ${
        fixed(medianUs(results, "gw-binary/main/absent"), 1)
      } against ${fixed(medianUs(results, "gw-bun/main/absent"), 1)}, cookie absent)`,
      status: met(worst === undefined ? undefined : worst >= 0.95),
    });
  }
  // Point 2: CPU µs per request, 16-byte case.
  const budgets = [["gw-bun", "Bun", 20], ["gw-binary", "Binary", 20], [
    "gw-deno",
    "Deno",
    22,
  ]] as const;
  for (const [id, name, budget] of budgets) {
    if (!has(`${id}/main/absent`)) continue;
    const us = cookies.map((c) => medianUs(results, `${id}/main/${c}`));
    const ref = cookies.map((c) => medianUs(results, `haproxy/main/${c}`));
    lines.push({
      target: `${name}: ≤ ${budget} CPU µs/req (16 bytes, cookie absent and present)`,
      measured: `${fixed(us[0], 1)} / ${fixed(us[1], 1)} µs (HAProxy ${fixed(ref[0], 1)} / ${
        fixed(ref[1], 1)
      } in the same run)`,
      status: met(us.every((u) => u !== undefined) ? us.every((u) => u! <= budget) : undefined),
    });
  }
  // Point 6: peak RSS in the 64-connection run.
  const rssLimits = [["gw-bun", "Bun", 64], ["gw-binary", "Binary", 64], [
    "gw-deno",
    "Deno",
    100,
  ]] as const;
  for (const [id, name, limit] of rssLimits) {
    const runs = results.filter((r) =>
      r.ok && (r.variant === `${id}/main/absent` || r.variant === `${id}/main/present`)
    );
    if (runs.length === 0) continue;
    const rss = Math.max(...runs.map((r) => r.rssKiB!)) / 1024;
    const anon = Math.max(...runs.map((r) => r.anonRssKiB ?? 0)) / 1024;
    lines.push({
      target: `${name}: peak RSS ≤ ${limit} MiB under the 64-connection load`,
      measured: `${rss.toFixed(0)} MiB (max of ${runs.length} runs; anon ${anon.toFixed(0)} MiB)`,
      status: met(rss <= limit),
    });
  }
  // Point 7: p99 at 64 connections against HAProxy's.
  for (const [id, name] of budgets) {
    if (!has(`${id}/main/absent`) || !has("haproxy/main/absent")) continue;
    const r = cookies.map((c) =>
      pairedRatio(results, `${id}/main/${c}`, `haproxy/main/${c}`, (x) => x.p99Ms)
    );
    const worst = r.some((x) => x === undefined) ? undefined : Math.max(...(r as number[]));
    lines.push({
      target: `${name}: p99 ≤ 3× HAProxy's (64 connections)`,
      measured: `${times(r[0])} / ${times(r[1])} (cookie absent / present)`,
      status: met(worst === undefined ? undefined : worst <= 3),
    });
  }
  // Point 5: 1 GiB each way at line rate in little memory.
  for (const [id, name, limit] of rssLimits) {
    for (const dir of ["download", "upload"]) {
      const runs = streamResults.filter((r) => r.variant === `${id}/${dir}` && r.ok);
      if (runs.length === 0) continue;
      const rr = pairedRatio(streamResults, `${id}/${dir}`, `haproxy/${dir}`, (r) => r.mibps);
      const rss = Math.max(...runs.map((r) => r.rssKiB!)) / 1024;
      lines.push({
        target: `${name}: ${dir} ≥ 0.95× HAProxy MiB/s, peak RSS ≤ ${limit} MiB`,
        measured: `${times(rr)}, ${rss.toFixed(0)} MiB (max)`,
        status: met(rr === undefined ? undefined : rr >= 0.95 && rss <= limit),
      });
    }
  }
  return lines;
}

const isNumber = (x: number | undefined): x is number => x !== undefined;
/** Median CPU µs per request of a variant's good runs. */
const medianUs = (results: ThroughputResult[], id: string) =>
  median(okRuns(results, id).map(usPerRequest).filter(isNumber));

// ---------------------------------------------------------------------------------------------
// Targets of the issue

function evaluateTargets(input: Input): string {
  const { results, streamResults } = input;
  const has = (id: string) => results.some((r) => r.variant === id && r.ok);
  const rows: string[][] = [];
  const ratio = (
    a: string,
    b: string,
  ) => (has(a) && has(b) ? pairedRatio(results, a, b, (r) => r.rps) : undefined);
  const cpuRatio = (
    a: string,
    b: string,
  ) => (has(a) && has(b) ? pairedRatio(results, a, b, perCpuSecond) : undefined);
  const verdict = (value: number | undefined, goal: number, floor?: number) =>
    value === undefined
      ? "not measured"
      : value >= goal
      ? "✅ met"
      : floor !== undefined && value >= floor
      ? "⚠️ floor only"
      : "❌ not met";
  const both = (id: string, ref: (cookie: string) => string, goal: number, floor?: number) => {
    const a = ratio(`${id}/main/absent`, ref("absent"));
    const p = ratio(`${id}/main/present`, ref("present"));
    const worst = a === undefined || p === undefined ? undefined : Math.min(a, p);
    const ca = cpuRatio(`${id}/main/absent`, ref("absent"));
    const cp = cpuRatio(`${id}/main/present`, ref("present"));
    return {
      text: `${times(a)} / ${times(p)}; per CPU-second ${times(ca)} / ${times(cp)}`,
      verdict: verdict(worst, goal, floor),
    };
  };
  const gateways = [
    ["gw-bun", "Bun gateway", 0.6, undefined],
    ["gw-binary", "Binary (Bun) gateway", 0.6, undefined],
    ["gw-deno", "Deno gateway", 0.4, 0.3],
  ] as const;
  for (const [id, name, goal, floor] of gateways) {
    if (!has(`${id}/main/absent`)) continue;
    const r = both(id, (c) => `haproxy/main/${c}`, goal, floor);
    rows.push([
      `${name} ≥ ${goal.toFixed(2)}× HAProxy req/s${floor ? ` (floor ${floor.toFixed(2)}×)` : ""}`,
      `${r.text} (cookie absent / present)`,
      r.verdict,
    ]);
  }
  for (const [id, name] of gateways) {
    if (!has(`${id}/main/absent`)) continue;
    for (const peer of ["caddy", "node-http-proxy"]) {
      const ref = (c: string) => (peer === "caddy" ? `caddy/main/${c}` : "node-http-proxy/main/-");
      if (!has(ref("absent"))) {
        rows.push([
          `${name} ≥ 1.3× ${peer}`,
          "peer not measured (optional; full mode installs it)",
          "not measured",
        ]);
        continue;
      }
      const r = both(id, ref, 1.3);
      rows.push([`${name} ≥ 1.3× ${peer}`, `${r.text} (cookie absent / present)`, r.verdict]);
    }
  }
  for (const [id, name] of gateways) {
    const plain = id === "gw-deno" ? "plain-deno/main/-" : "plain-bun/main/-";
    if (!has(`${id}/main/absent`) || !has(plain)) continue;
    const r = both(id, () => plain, 0.9);
    rows.push([
      `${name} ≥ 0.90× the plain ${id === "gw-deno" ? "Deno" : "Bun"} proxy`,
      `${r.text} (cookie absent / present)`,
      r.verdict,
    ]);
  }
  for (const [id, name] of gateways) {
    if (!has(`${id}/main/absent`) || !has("haproxy/main/absent")) continue;
    const a = pairedRatio(results, `${id}/main/absent`, "haproxy/main/absent", (r) => r.p99Ms);
    const p = pairedRatio(results, `${id}/main/present`, "haproxy/main/present", (r) => r.p99Ms);
    const worst = a === undefined || p === undefined ? undefined : Math.max(a, p);
    rows.push([
      `${name}: p99 ≤ 3× HAProxy's`,
      `${times(a)} / ${times(p)}`,
      worst === undefined ? "not measured" : worst <= 3 ? "✅ met" : "❌ not met",
    ]);
  }
  for (const [id, name] of gateways) {
    for (const dir of ["download", "upload"]) {
      const runs = streamResults.filter((r) => r.variant === `${id}/${dir}` && r.ok);
      if (runs.length === 0) continue;
      const rr = pairedRatio(streamResults, `${id}/${dir}`, `haproxy/${dir}`, (r) => r.mibps);
      const rss = Math.max(...runs.map((r) => r.rssKiB!)) / 1024;
      const ok = rr !== undefined && rr >= 0.95 && rss <= 64;
      rows.push([
        `${name}: ${dir} ≥ 0.95× HAProxy MiB/s, peak RSS ≤ 64 MiB`,
        `${times(rr)}, ${rss.toFixed(0)} MiB (max)`,
        rr === undefined ? "not measured" : ok ? "✅ met" : "❌ not met",
      ]);
    }
  }
  for (const [id, name] of gateways) {
    const runs = results.filter((r) =>
      r.ok && (r.variant === `${id}/main/absent` || r.variant === `${id}/main/present`)
    );
    if (runs.length === 0) continue;
    const limit = id === "gw-deno" ? 150 : 64;
    const rss = Math.max(...runs.map((r) => r.rssKiB!)) / 1024;
    rows.push([
      `${name}: RSS under the 64-connection load ≤ ${limit} MiB`,
      `${rss.toFixed(0)} MiB (max of ${runs.length} runs)`,
      rss <= limit ? "✅ met" : "❌ not met",
    ]);
  }
  const micro = (input.micro ?? []).flatMap((m) => (m.result === undefined ? [] : [m.result]));
  for (const result of micro) rows.push(...microTargetRows(result, input));
  // Issue 9: the access log (to a file) ≤ 10% and a scraped /metrics ≤ 3% of req/s, against
  // the same gateway without them, in the same rounds.
  // Issue 10: a reload storm ≥ 90% of steady state.
  const opsLimits: Record<string, number> = { log: 0.9, metrics: 0.97, reloads: 0.9 };
  const opsIds = [...new Set(results.map((r) => r.variant))].filter((id) =>
    id.startsWith("gw-") && id.split("/")[1] in opsLimits
  );
  for (const id of opsIds) {
    const [target, scenario, cookie] = id.split("/");
    const r = sideBySide(results, id, (x) => x.rps) ??
      pairedRatio(
        results,
        id,
        `${target}/${COMPANIONS[scenario as Scenario] ?? "main"}/${cookie}`,
        (x) => x.rps,
      );
    const what = scenario === "log"
      ? "access log to a file"
      : scenario === "metrics"
      ? "/metrics scraped every second"
      : `a reload storm (${reloadRate(results, id)})`;
    const how = sideBySide(results, id, (x) => x.rps) === undefined ? "" : " (side by side)";
    rows.push([
      `${target} with ${what}, cookie ${cookie}: ≥ ${
        opsLimits[scenario].toFixed(2)
      }× without${how}`,
      `${times(r)} req/s`,
      verdict(r, opsLimits[scenario]),
    ]);
  }
  // Issue 12: signed tokens with max_idle ≤ 5% below the md5 values, side by side.
  const tokenIds = [...new Set(results.map((r) => r.variant))].filter((id) =>
    id.startsWith("gw-") && id.split("/")[1] === "token"
  );
  for (const id of tokenIds) {
    const [target, , cookie] = id.split("/");
    const r = sideBySide(results, id, (x) => x.rps);
    if (r === undefined) continue;
    rows.push([
      `${target} with signed tokens (max_idle), cookie ${cookie}: ≥ 0.95× the md5 cookie (side by side)`,
      `${times(r)} req/s; ${times(sideBySide(results, id, cpuRate))} per CPU-second`,
      verdict(r, 0.95),
    ]);
  }
  // Issue 13: 200 servers from DNS re-resolved every second ≥ 0.97× the same 200 listed, side by
  // side (both in the same seconds). Without a companion (older results): per CPU-second between
  // separate runs, whose req/s swing ±30% on this VM.
  const dnsIds = [...new Set(results.map((r) => r.variant))].filter((id) =>
    id.startsWith("gw-") && id.split("/")[1] === "dns200"
  );
  for (const id of dnsIds) {
    const [target, , cookie] = id.split("/");
    const beside = sideBySide(results, id, (x) => x.rps);
    if (beside !== undefined) {
      rows.push([
        `${target} with 200 servers from DNS re-resolved every 1 s, cookie ${cookie}: ≥ 0.97× the same 200 listed (side by side)`,
        `${times(beside)} req/s; ${times(sideBySide(results, id, cpuRate))} per CPU-second`,
        verdict(beside, 0.97),
      ]);
      continue;
    }
    const r = pairedRatio(results, id, `${target}/static200/${cookie}`, (x) => x.rps);
    const c = pairedRatio(results, id, `${target}/static200/${cookie}`, perCpuSecond);
    rows.push([
      `${target} with 200 servers from DNS re-resolved every 1 s, cookie ${cookie}: ≥ 0.97× the same 200 listed (per CPU-second)`,
      `${times(c)} per CPU-second (${fixed(medianUs(results, id), 1)} against ${
        fixed(medianUs(results, `${target}/static200/${cookie}`), 1)
      } CPU µs/req); ${times(r)} req/s`,
      verdict(c, 0.97),
    ]);
  }
  const dnsScenarios = ["static200", "dns200"];
  const scaleIds = [
    ...new Set(results.map((r) => r.variant).filter((id) => !id.includes("/main/"))),
  ].filter((id) =>
    id.startsWith("gw-") && !(id.split("/")[1] in opsLimits) &&
    !dnsScenarios.includes(id.split("/")[1]) && id.split("/")[1] !== "token"
  );
  for (const id of scaleIds) {
    const [target, scenario, cookie] = id.split("/");
    const r = pairedRatio(results, id, `${target}/main/${cookie}`, (x) => x.rps);
    // Decided in process when that ran for this runtime; end to end it is only the picture.
    const decidedInProcess = micro.some((m) => m.runtime === runtimeOfTarget(target));
    rows.push([
      `${target} ${scenario}, cookie ${cookie}, end to end: ≤ 5% below 3 servers / 1 route`,
      `${times(r)} req/s`,
      decidedInProcess ? "ℹ️ picture only (decided in process)" : verdict(r, 0.95),
    ]);
  }
  return table(["Target", "Measured", "Status"], rows, ["---", "---", "---"]);
}

/** gw-deno runs Deno; gw-bun and the binary run Bun. */
function runtimeOfTarget(targetId: string): "deno" | "bun" {
  return targetId === "gw-deno" ? "deno" : "bun";
}

/**
 * "1,000 servers or 500 routes cost ≤ 5% throughput against 3 servers / 1 route", from the
 * in-process numbers: met when the whole Gateway.handle costs ≤ 1/0.95 of the baseline's, with
 * and without cookie. That leaves out the sockets and HTTP parsing, which a bigger config does not
 * change (apart from the connections to 1,000 live upstreams: the end-to-end rows); so when the
 * load runs measured the CPU a whole request costs on this runtime, the extra ns are also put
 * against it, and a config within 5% of that is met "against the whole request".
 */
function microTargetRows(result: MicroResult, input: Input): string[][] {
  const name = result.runtime === "bun" ? "Bun" : "Deno";
  const byKey = new Map(result.rows.map((row) => [`${row.scenario}/${row.cookie}`, row]));
  const rows: string[][] = [];
  for (const scenario of ["servers1000", "servers1000down", "routes500"] as const) {
    const pair = (["absent", "present"] as const).map((cookie) => ({
      row: byKey.get(`${scenario}/${cookie}`),
      base: byKey.get(`main/${cookie}`),
      requestUs: wholeRequestUs(input.results, `gw-${result.runtime}/main/${cookie}`),
    }));
    if (pair.some((p) => p.row === undefined || p.base === undefined)) continue;
    const [a, p] = pair as { row: MicroRow; base: MicroRow; requestUs: number | undefined }[];
    const extraNs = (x: { row: MicroRow; base: MicroRow }) =>
      (x.row.handle.ratio - 1) * x.base.handle.medianNs;
    const signed = (ns: number) => `${ns >= 0 ? "+" : "−"}${Math.abs(ns).toFixed(0)} ns`;
    const strict = Math.max(a.row.handle.ratio, p.row.handle.ratio) <= 1 / 0.95;
    const shares = [a, p].map((x) =>
      x.requestUs === undefined ? undefined : extraNs(x) / (x.requestUs * 1000 + extraNs(x))
    );
    const whole = shares.every((x) => x !== undefined && x <= 0.05);
    const share = (x: number | undefined) =>
      x === undefined ? "–" : `${Math.abs(x) < 0.0005 ? "0.0" : (x * 100).toFixed(1)}%`;
    const requestNote = shares.every((x) => x === undefined)
      ? ""
      : `; that is ${share(shares[0])} / ${
        share(shares[1])
      } of the CPU a whole request costs end to end (${fixed(a.requestUs, 1)} / ${
        fixed(p.requestUs, 1)
      } µs)`;
    rows.push([
      `${name}, ${
        MICRO_SCENARIO_NAMES[scenario]
      }: request cost ≤ 5% above 3 servers / 1 route (in process)`,
      `Gateway.handle ${times3(a.row.handle.ratio)} / ${times3(p.row.handle.ratio)} (${
        signed(extraNs(a))
      } / ${signed(extraNs(p))}), decision ${times3(a.row.decision.ratio)} / ${
        times3(p.row.decision.ratio)
      } (cookie absent / present)${requestNote}`,
      result.quick
        ? "not measured (quick)"
        : strict
        ? "✅ met"
        : whole
        ? "✅ met against the whole request"
        : "❌ not met",
    ]);
  }
  return rows;
}

const times3 = (n: number) => `${n.toFixed(3)}×`;

/** Median proxy CPU µs per request of a load-run variant, if it ran. */
function wholeRequestUs(results: ThroughputResult[], id: string): number | undefined {
  return median(okRuns(results, id).map((r) => usPerRequest(r)!));
}

// ---------------------------------------------------------------------------------------------
// SVG

const COLORS: Record<Target["kind"], string> = {
  gateway: "#2563eb",
  haproxy: "#16a34a",
  nginx: "#6b7280",
  baseline: "#f59e0b",
  peer: "#a16207",
};

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

interface Bar {
  label: string;
  value: number | undefined;
  min?: number;
  max?: number;
  color: string;
  /** After the value, e.g. "0.45× HAProxy". */
  note?: string;
}

function niceStep(max: number): number {
  const raw = max / 6;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * p).find((s) => s >= raw) ?? raw;
}

function panel(
  title: string,
  unit: string,
  bars: Bar[],
  y0: number,
  width: number,
): { svg: string; height: number } {
  const left = 330;
  const right = 150;
  const rowH = 22;
  const top = y0 + 30;
  const plotW = width - left - right;
  const vmax = Math.max(1, ...bars.map((b) => b.max ?? b.value ?? 0));
  const step = niceStep(vmax);
  const axisMax = Math.ceil(vmax / step) * step;
  const x = (v: number) => left + (v / axisMax) * plotW;
  const parts: string[] = [];
  parts.push(`<text x="12" y="${y0 + 18}" font-size="15" font-weight="bold">${esc(title)}</text>`);
  const bottom = top + bars.length * rowH;
  for (let v = 0; v <= axisMax + 1e-9; v += step) {
    parts.push(
      `<line x1="${x(v).toFixed(1)}" y1="${top - 4}" x2="${
        x(v).toFixed(1)
      }" y2="${bottom}" stroke="#e5e7eb"/>`,
    );
    parts.push(
      `<text x="${x(v).toFixed(1)}" y="${
        bottom + 14
      }" font-size="11" text-anchor="middle" fill="#6b7280">${
        v >= 1000 ? `${(v / 1000).toLocaleString("en-US")}k` : v
      }</text>`,
    );
  }
  parts.push(
    `<text x="${left + plotW / 2}" y="${
      bottom + 30
    }" font-size="11" text-anchor="middle" fill="#6b7280">${esc(unit)}</text>`,
  );
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    parts.push(
      `<text x="${left - 8}" y="${y + 14}" font-size="12" text-anchor="end">${esc(b.label)}</text>`,
    );
    if (b.value === undefined) {
      parts.push(`<text x="${left + 4}" y="${y + 14}" font-size="12" fill="#dc2626">failed</text>`);
      return;
    }
    parts.push(
      `<rect x="${left}" y="${y + 3}" width="${
        Math.max(1, x(b.value) - left).toFixed(1)
      }" height="${rowH - 7}" fill="${b.color}" rx="2"/>`,
    );
    if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
      const cy = y + 3 + (rowH - 7) / 2;
      parts.push(
        `<line x1="${x(b.min).toFixed(1)}" y1="${cy}" x2="${
          x(b.max).toFixed(1)
        }" y2="${cy}" stroke="#111827" stroke-width="1.2"/>`,
      );
      for (const v of [b.min, b.max]) {
        parts.push(
          `<line x1="${x(v).toFixed(1)}" y1="${cy - 4}" x2="${x(v).toFixed(1)}" y2="${
            cy + 4
          }" stroke="#111827" stroke-width="1.2"/>`,
        );
      }
    }
    const tx = x(b.max ?? b.value) + 6;
    parts.push(
      `<text x="${tx.toFixed(1)}" y="${y + 14}" font-size="12" fill="#111827">${
        Math.round(b.value).toLocaleString("en-US")
      }${b.note ? `<tspan dx="10" fill="#6b7280">${esc(b.note)}</tspan>` : ""}</text>`,
    );
  });
  return { svg: parts.join("\n"), height: bottom + 40 - y0 };
}

function ratioNote(r: number | undefined): string | undefined {
  return r === undefined || Math.abs(r - 1) < 1e-9 ? undefined : `${r.toFixed(2)}× HAProxy`;
}

function chart(input: Input): string {
  const width = 960;
  const { results, streamResults } = input;
  const main = input.variants.filter((v) => v.scenario === "main");
  const bars: Bar[] = main.map((v) => {
    const runs = okRuns(results, v.id).map((r) => r.rps!);
    return {
      label: `${v.target.label}${v.cookie === "-" ? "" : ` · cookie ${v.cookie}`}`,
      value: median(runs),
      min: runs.length ? Math.min(...runs) : undefined,
      max: runs.length ? Math.max(...runs) : undefined,
      color: COLORS[v.target.kind],
      note: ratioNote(pairedRatio(results, v.id, haproxyRef(v), (r) => r.rps)),
    };
  });
  const parts: string[] = [];
  const p1 = panel(
    `Requests/s through one proxy core (wrk -t1 -c64, 16-byte responses; median, min–max of ${input.opt.rounds})`,
    "requests per second",
    bars,
    0,
    width,
  );
  parts.push(p1.svg);
  let height = p1.height;
  if (input.streams.length > 0) {
    const sbars: Bar[] = input.streams.map((v) => {
      const runs = streamResults.filter((r) => r.variant === v.id && r.ok).map((r) => r.mibps!);
      return {
        label: `${v.target.label} · ${v.direction}`,
        value: median(runs),
        min: runs.length ? Math.min(...runs) : undefined,
        max: runs.length ? Math.max(...runs) : undefined,
        color: COLORS[v.target.kind],
        note: ratioNote(pairedRatio(streamResults, v.id, `haproxy/${v.direction}`, (r) => r.mibps)),
      };
    });
    const size = input.streamMiB >= 1024
      ? `${input.streamMiB / 1024} GiB`
      : `${input.streamMiB} MiB`;
    const p2 = panel(
      `Streaming ${size} through the proxy (MiB/s; median, min–max of ${input.opt.streamRounds})`,
      "MiB per second",
      sbars,
      height + 10,
      width,
    );
    parts.push(p2.svg);
    height += 10 + p2.height;
  }
  for (const panelOfPhase of (input.phases ?? []).flatMap((p) => p.panels)) {
    const bars: Bar[] = panelOfPhase.bars.map((b) => ({
      label: b.label,
      value: b.value,
      min: b.min,
      max: b.max,
      color: COLORS[b.kind],
      note: b.note,
    }));
    const p = panel(panelOfPhase.title, panelOfPhase.unit, bars, height + 10, width);
    parts.push(p.svg);
    height += 10 + p.height;
  }
  const legend = Object.entries({
    "sticky-gateway": COLORS.gateway,
    HAProxy: COLORS.haproxy,
    nginx: COLORS.nginx,
    "plain runtime proxy": COLORS.baseline,
    "other peers": COLORS.peer,
  });
  const ly = height + 8;
  legend.forEach(([name, color], i) => {
    const lx = 12 + i * 170;
    parts.push(
      `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${color}" rx="2"/><text x="${
        lx + 18
      }" y="${ly + 11}" font-size="12">${esc(name)}</text>`,
    );
  });
  height = ly + 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#ffffff"/>
${parts.join("\n")}
</svg>
`;
}

/** Reloads per second that succeeded during a variant's runs, e.g. "41 reloads/s". */
function reloadRate(results: readonly ThroughputResult[], id: string): string {
  const runs = results.filter((r) => r.ok && r.variant === id && r.reloads !== undefined);
  if (runs.length === 0) return "no reloads";
  const ok = runs.reduce((n, r) => n + r.reloads!.ok, 0);
  const seconds = runs.reduce((n, r) => n + r.requests! / r.rps!, 0);
  const rate = Math.round(ok / seconds);
  return `${rate} ${rate === 1 ? "reload" : "reloads"}/s`;
}
