/**
 * `make bench` / `make bench-quick`: sticky-gateway side by side with HAProxy, nginx and plain
 * runtime proxies, on loopback, with the proxy under test pinned to its own core.
 *
 *   bun bench/run.ts [--quick] [--rounds N] [--duration S] [--warmup S] [--stream-mib N]
 *                    [--only REGEX] [--no-stream] [--no-scale] [--no-ops] [--no-dns] [--no-micro] [--no-peers]
 *                    [--phases tls,ws,streams,idle | --no-phases] [--phase-rounds N] [--write-docs]
 *   bun bench/run.ts --report bench/results/full-<time>/results.json   (re-render, no measuring)
 *
 * Before the load runs, the in-process scale micro-benchmark (bench/micro/scale.ts) runs once on
 * Deno and once on Bun, pinned like the proxy (quick form with --quick). With --only it runs for
 * the runtimes of the selected gateway variants, or when the regex matches `micro/deno` /
 * `micro/bun`; --no-micro skips it.
 *
 * After the throughput and streaming rounds come the phases of bench/phases/ (issue 14: TLS and
 * HTTP/2, WebSockets, concurrent and slow streams, idle connections; contract in
 * bench/lib/phase.ts), each in interleaved rounds of its own variants (ids `<phase>/...`, also
 * selected by --only).
 *
 * Environment: DENO, BUN, BINARY (the gateway three ways), NODE, HTTP_PROXY_MODULE (optional
 * node-http-proxy peer), BENCH_PORT_BASE (default: 28000, or 25000, 22000… when another bench run holds it), BENCH_PROXY_CPU / BENCH_LOAD_CPU,
 * BENCH_UPSTREAM_CLIENT (sets [server] upstream_client for the gateway).
 *
 * Exit status: 0 when every target served and verified, 1 otherwise, 2 on bad arguments.
 *
 * @module
 */
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import {
  BODY,
  caddyfile,
  DNS_SCENARIOS,
  dnsHosts,
  dnsSrv,
  gatewayToml,
  haproxyCfg,
  nginxProxyConf,
  OPS_SCENARIOS,
  type Ports,
  ports,
  requestPath,
  type Scenario,
  servingPorts,
  TOKEN_KEYS_FILE,
  TOKEN_KEYS_TEXT,
  TOKEN_SCENARIO,
  upstreamNginx,
} from "./lib/configs.ts";
import {
  anonRssKiB,
  busyPct,
  cleanUpOnSignals,
  cpuSeconds,
  cpuTimes,
  peakRssKiB,
  portOpen,
  type Proc,
  run,
  runAsync,
  start,
  stop,
  stopAll,
  tail,
  waitPort,
} from "./lib/procs.ts";
import { uploadArgv } from "./lib/stream_upload.ts";
import { type HttpReply, parseHttpReply } from "./lib/http_reply.ts";
import { type MicroResult, type MicroRun, microSummary } from "./micro/result.ts";
import type { Phase, PhaseContext, PhaseRow, PhaseTarget, RenderContext } from "./lib/phase.ts";
import { loadPhases, PHASE_IDS } from "./phases/mod.ts";
import { type Dnsmasq, locateDnsmasq, startDnsmasq } from "../tests/dns/dnsmasq.ts";
import {
  COMPANIONS,
  type Machine,
  pairedRatio,
  report,
  type StreamResult,
  type StreamVariant,
  type Target,
  type ThroughputResult,
  type Variant,
} from "./lib/report.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BENCH = path.join(ROOT, "bench");
const T0 = Date.now();

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  quick: boolean;
  rounds: number;
  duration: number;
  warmup: number;
  streamMiB: number;
  streamRounds: number;
  only?: RegExp;
  stream: boolean;
  scale: boolean;
  /** The gateway with its access log on and with /metrics scraped (scenarios log, metrics). */
  ops: boolean;
  /** 200 servers found through DNS against the same 200 listed (scenarios dns200, static200). */
  dns: boolean;
  /** The in-process scale micro-benchmark (bench/micro/scale.ts) on Deno and Bun. */
  micro: boolean;
  /** Phases of bench/phases/ to run (issue 14: tls, ws, streams, idle); empty: none. */
  phases: string[];
  /** Interleaved rounds of each phase (default: --rounds). */
  phaseRounds?: number;
  peers: boolean;
  writeDocs: boolean;
  /** --write-docs or --no-docs was given (otherwise a subset leaves docs/ alone). */
  docsChosen: boolean;
  /** Re-render tables, chart and docs from a results.json (no measuring). */
  reportFrom?: string;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes("--quick");
  const o: Options = {
    quick,
    rounds: quick ? 1 : 3,
    duration: quick ? 1 : 8,
    warmup: quick ? 0 : 2,
    streamMiB: quick ? 64 : 1024,
    streamRounds: quick ? 1 : 3,
    stream: true,
    scale: true,
    ops: true,
    dns: true,
    micro: true,
    phases: [...PHASE_IDS],
    peers: !quick,
    writeDocs: !quick,
    docsChosen: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") continue;
    else if (a === "--rounds") o.rounds = o.streamRounds = positive(a, value());
    else if (a === "--duration") o.duration = positive(a, value());
    else if (a === "--warmup") o.warmup = Number(value());
    else if (a === "--stream-mib") o.streamMiB = positive(a, value());
    else if (a === "--only") o.only = new RegExp(value());
    else if (a === "--no-stream") o.stream = false;
    else if (a === "--no-scale") o.scale = false;
    else if (a === "--no-ops") o.ops = false;
    else if (a === "--no-dns") o.dns = false;
    else if (a === "--no-micro") o.micro = false;
    else if (a === "--no-phases") o.phases = [];
    else if (a === "--phases") o.phases = value().split(",").filter(Boolean);
    else if (a === "--phase-rounds") o.phaseRounds = positive(a, value());
    else if (a === "--no-peers") o.peers = false;
    else if (a === "--peers") o.peers = true;
    else if (a === "--write-docs") o.writeDocs = o.docsChosen = true;
    else if (a === "--no-docs") (o.writeDocs = false), (o.docsChosen = true);
    else if (a === "--report") o.reportFrom = value();
    else usage(`unknown argument ${a}`);
  }
  // A subset (--only) does not replace docs/benchmarks.md unless asked to.
  if (!o.docsChosen && o.only !== undefined) o.writeDocs = false;
  return o;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(n > 0)) usage(`${name} must be a positive number`);
  return n;
}

function usage(message: string): never {
  console.error(
    `bench: ${message}\nusage: bun bench/run.ts [--quick] [--rounds N] [--duration S] [--warmup S] [--stream-mib N] [--only REGEX] [--no-stream] [--no-scale] [--no-ops] [--no-dns] [--no-micro] [--phases tls,ws,streams,idle | --no-phases] [--phase-rounds N] [--no-peers] [--write-docs]`,
  );
  process.exit(2);
}

const opt = parseOptions(process.argv.slice(2));
/**
 * The port base: BENCH_PORT_BASE, or the first of a few bases no other bench run on this machine
 * holds (a lock file per base, taken over when its process is gone), so runs can go side by side.
 */
function claimPortBase(): { base: number; lock?: string } {
  if (process.env.BENCH_PORT_BASE) return { base: Number(process.env.BENCH_PORT_BASE) };
  for (const base of [28000, 25000, 22000, 19000, 16000]) {
    const lock = path.join(os.tmpdir(), `sticky-bench-ports-${base}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(lock, String(process.pid), { flag: "wx" });
        return { base, lock };
      } catch {
        const holder = Number(readFileSync(lock, "utf8").trim());
        if (holder > 0 && existsSync(`/proc/${holder}`)) break;
        rmSync(lock, { force: true }); // its run is gone
      }
    }
  }
  throw new Error("every bench port base is taken; set BENCH_PORT_BASE");
}
const PORTS = claimPortBase();
const P = ports(PORTS.base);
const CORES = os.availableParallelism?.() ?? os.cpus().length;
const PROXY_CPU = process.env.BENCH_PROXY_CPU ?? (CORES >= 2 ? "1" : undefined);
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? (CORES >= 2 ? "0" : undefined);
const which = (cmd: string) => {
  try {
    return run(["bash", "-c", `command -v ${cmd}`]).trim() || undefined;
  } catch {
    return undefined;
  }
};
const DENO = process.env.DENO || which("deno") || "deno";
const BUN = process.env.BUN || which("bun") || process.execPath;
const BINARY_BUILT = path.resolve(ROOT, process.env.BINARY || "dist/sticky-gateway");
const NODE = process.env.NODE || which("node");
const HTTP_PROXY_MODULE = process.env.HTTP_PROXY_MODULE ||
  path.join(ROOT, ".tools/bench/node_modules/http-proxy");

const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
const RESULTS = path.join(BENCH, "results");
// Quick runs (make test) reuse one directory; full runs keep theirs.
const RUN_DIR = opt.reportFrom !== undefined
  ? path.dirname(path.resolve(opt.reportFrom))
  : path.join(
    RESULTS,
    // A quick run on another port base (another bench running) keeps its own directory.
    opt.quick ? (PORTS.base === 28000 ? "quick" : `quick-${PORTS.base}`) : `full-${stamp}`,
  );
if (opt.reportFrom === undefined) {
  if (opt.quick) rmSync(RUN_DIR, { recursive: true, force: true });
  mkdirSync(RUN_DIR, { recursive: true });
}
const TMP = mkdtempSync(path.join(os.tmpdir(), "sticky-bench-"));
chmodSync(TMP, 0o755); // nginx workers (nobody) read the download file from here

/**
 * The gateway as it is now, copied once: every round measures the same code even while src/ is
 * being edited. node_modules is shared (symlink).
 */
const GW = path.join(TMP, "gateway");
const BINARY = path.join(GW, "sticky-gateway");
let SOURCE_DIGEST = "?";

function snapshotGateway(): void {
  mkdirSync(GW);
  cpSync(path.join(ROOT, "src"), path.join(GW, "src"), { recursive: true });
  for (const file of ["package.json", "deno.json", "deno.lock"]) {
    if (existsSync(path.join(ROOT, file))) cpSync(path.join(ROOT, file), path.join(GW, file));
  }
  symlinkSync(path.join(ROOT, "node_modules"), path.join(GW, "node_modules"));
  // The micro-benchmark imports ../../src and ../lib: copied beside the snapshot, it times it.
  for (const dir of ["bench/micro", "bench/lib"]) {
    cpSync(path.join(ROOT, dir), path.join(GW, dir), { recursive: true });
  }
  if (existsSync(BINARY_BUILT)) cpSync(BINARY_BUILT, BINARY);
  const hash = createHash("sha256");
  for (const file of readdirSync(path.join(GW, "src"), { recursive: true }).map(String).sort()) {
    const full = path.join(GW, "src", file);
    if (statSync(full).isFile()) hash.update(file).update(readFileSync(full));
  }
  SOURCE_DIGEST = hash.digest("hex").slice(0, 12);
}

function log(message: string): void {
  console.log(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s] ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Targets

/** As the Makefile runs the gateway (DENO_GATEWAY): permissions and the young-generation cap. */
const DENO_PERMS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--v8-flags=--max-semi-space-size=4",
];

function gatewayTarget(
  id: string,
  label: string,
  runtime: string,
  argv: (config: string) => string[],
  skip?: string,
): Target {
  return {
    id,
    label,
    kind: "gateway",
    runtime,
    cookie: "route",
    quietWhenPinned: true,
    scale: true,
    stream: true,
    skip,
    launch: (scenario, extra, p = P, fileTag = "") => {
      const file = path.join(TMP, `${id}-${scenario}${fileTag}.toml`);
      const keys = path.join(TMP, TOKEN_KEYS_FILE);
      if (scenario === TOKEN_SCENARIO) writeFileSync(keys, TOKEN_KEYS_TEXT);
      writeFileSync(
        file,
        gatewayToml(scenario, p, extra, path.join(TMP, `${id}${fileTag}-access.log`), keys),
      );
      return { argv: argv(file) };
    },
  };
}

/** How each way of running the gateway starts with a config file (cwd: the snapshot). */
const GATEWAY_ARGV: Record<string, (config: string) => string[]> = {
  "gw-deno": (c) => [DENO, "run", ...DENO_PERMS, path.join(GW, "src/main.ts"), "--config", c],
  "gw-bun": (c) => [BUN, path.join(GW, "src/main.ts"), "--config", c],
  "gw-binary": (c) => [BINARY, "--config", c],
};

function buildTargets(): Target[] {
  const plainEnv = () => ({
    LISTEN: `${P.host}:${P.proxy}`,
    UPSTREAMS: P.upstreams.map((port) => `${P.host}:${port}`).join(","),
    SINK: `${P.host}:${P.sink}`,
  });
  const targets: Target[] = [
    gatewayTarget(
      "gw-deno",
      "gateway (Deno)",
      "deno",
      GATEWAY_ARGV["gw-deno"],
    ),
    gatewayTarget(
      "gw-bun",
      "gateway (Bun)",
      "bun",
      GATEWAY_ARGV["gw-bun"],
    ),
    gatewayTarget(
      "gw-binary",
      "gateway (binary)",
      "binary",
      GATEWAY_ARGV["gw-binary"],
      existsSync(BINARY) ? undefined : `${BINARY_BUILT} not built (make compile)`,
    ),
    {
      id: "haproxy",
      label: "HAProxy (cookie insert)",
      kind: "haproxy",
      cookie: "SRV",
      quietWhenPinned: true,
      scale: false,
      stream: true,
      launch: (scenario) => {
        const file = path.join(TMP, `haproxy-${scenario}.cfg`);
        writeFileSync(file, haproxyCfg(scenario, P));
        return { argv: ["haproxy", "-db", "-f", file] };
      },
    },
    {
      id: "nginx",
      label: "nginx (round robin)",
      kind: "nginx",
      scale: false,
      stream: true,
      launch: (scenario) => {
        const file = path.join(TMP, `proxy-nginx-${scenario}.conf`);
        writeFileSync(file, nginxProxyConf(scenario, P, TMP));
        return {
          argv: [
            "nginx",
            "-e",
            path.join(TMP, "proxy-nginx.error.log"),
            "-p",
            TMP,
            "-c",
            file,
            "-g",
            "daemon off;",
          ],
        };
      },
    },
    {
      id: "plain-deno",
      label: "plain Deno.serve+fetch",
      kind: "baseline",
      runtime: "deno",
      scale: false,
      stream: true,
      launch: () => ({
        argv: [DENO, "run", "--allow-net", "--allow-env", "bench/baselines/plain.ts"],
        env: plainEnv(),
      }),
    },
    {
      id: "plain-bun",
      label: "plain Bun.serve+fetch",
      kind: "baseline",
      runtime: "bun",
      scale: false,
      stream: true,
      launch: () => ({ argv: [BUN, "bench/baselines/plain.ts"], env: plainEnv() }),
    },
  ];
  if (opt.peers) {
    const caddy = which("caddy");
    targets.push({
      id: "caddy",
      label: "Caddy (lb_policy cookie)",
      kind: "peer",
      cookie: "route",
      quietWhenPinned: false,
      scale: false,
      stream: false,
      optional: true,
      skip: caddy ? undefined : "caddy not installed (optional; apt-get install caddy)",
      launch: (scenario) => {
        const file = path.join(TMP, `Caddyfile-${scenario}`);
        writeFileSync(file, caddyfile(scenario, P));
        return {
          argv: [caddy!, "run", "--config", file, "--adapter", "caddyfile"],
          env: { GOMAXPROCS: "1", XDG_CONFIG_HOME: TMP, XDG_DATA_HOME: TMP },
        };
      },
    });
    const nhp = NODE !== undefined && existsSync(path.join(HTTP_PROXY_MODULE, "package.json"));
    targets.push({
      id: "node-http-proxy",
      label: "node-http-proxy (Node)",
      kind: "peer",
      scale: false,
      stream: false,
      optional: true,
      skip: nhp ? undefined : `node-http-proxy not found at ${HTTP_PROXY_MODULE} (optional)`,
      launch: () => ({
        argv: [NODE!, "bench/baselines/node-http-proxy.cjs"],
        env: { ...plainEnv(), HTTP_PROXY_MODULE },
      }),
    });
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------
// HTTP checks (curl: a client independent of the runtimes under test)

async function curl(url: string, headers: string[] = []): Promise<HttpReply> {
  const args = ["curl", "-s", "-i", "--max-time", "5"];
  for (const h of headers) args.push("-H", h);
  args.push(url);
  const r = await runAsync(args, { timeoutMs: 8000 });
  if (r.code !== 0) throw new Error(`curl ${url}: exit ${r.code} ${r.stderr.trim()}`);
  return parseHttpReply(r.stdout);
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** Serves, balances, and (sticky targets) pins by cookie. Returns the cookie for the "present" case. */
async function verify(
  target: Target,
  scenario: Scenario,
  p: Ports = P,
): Promise<string | undefined> {
  const url = `http://${p.host}:${p.proxy}${requestPath(scenario)}`;
  const allowed = servingPorts(scenario, P);
  const one = async (headers: string[] = []) => {
    const r = await curl(url, headers);
    check(r.status === 200, `GET ${url}: status ${r.status} (${r.body.slice(0, 100).trim()})`);
    check(
      r.body === BODY,
      `GET ${url}: body ${JSON.stringify(r.body.slice(0, 60))}, expected ${JSON.stringify(BODY)}`,
    );
    const up = Number(r.header("x-upstream"));
    check(
      allowed.has(up),
      `GET ${url}: X-Upstream ${r.header("x-upstream")} is not one of the scenario's servers`,
    );
    return { r, up };
  };
  const first = await one();
  let cookie: string | undefined;
  if (target.cookie !== undefined) {
    const set = first.r.all("set-cookie").find((c) => c.startsWith(`${target.cookie}=`));
    check(set !== undefined, `no Set-Cookie ${target.cookie}= on a request without cookie`);
    cookie = set.split(";")[0];
  }
  // Round robin shows in 6 requests; Caddy's cookie policy falls back to *random* (its 2.6 has
  // no `fallback` option), where 12 all on one server has odds of 1 in 177,147.
  const tries = target.id === "caddy" ? 12 : 6;
  const seen = new Set([first.up]);
  for (let i = 1; i < tries; i++) seen.add((await one()).up);
  check(seen.size >= 2, `${tries} requests without cookie all went to ${[...seen]}: not balanced`);
  if (cookie !== undefined) {
    for (let i = 0; i < 3; i++) {
      const { r, up } = await one([`Cookie: ${cookie}`]);
      check(up === first.up, `with ${cookie} a request went to ${up}, not ${first.up}: not sticky`);
      if (target.quietWhenPinned) {
        check(
          !r.all("set-cookie").some((c) => c.startsWith(`${target.cookie}=`)),
          `Set-Cookie sent although ${cookie} is valid`,
        );
      }
    }
  }
  return cookie;
}

// ---------------------------------------------------------------------------------------------
// Runs

let upstream: Proc | undefined;
let sink: Proc | undefined;
/** Extra `[server]` lines for every gateway config (see the probe in main). */
let workersLine = "";
/** dnsmasq for scenario dns200 (started in main when a dns200 variant runs). */
let dnsServer: Dnsmasq | undefined;
/** The dnsmasq binary, or undefined (dns200 and static200 then do not run; main says why). */
let dnsmasqBinary: string | undefined;

async function startTarget(
  target: Target,
  scenario: Scenario,
  tag: string,
  p: Ports = P,
  fileTag = "",
): Promise<Proc> {
  check(!(await portOpen(p.host, p.proxy)), `port ${p.proxy} is already in use (another process?)`);
  const extra = scenario === "dns200" && dnsServer !== undefined
    ? `${workersLine}\nresolver = "127.0.0.1:${dnsServer.port}"`
    : workersLine;
  const { argv, env } = target.launch(scenario, extra, p, fileTag);
  const proc = start(target.id, argv, path.join(RUN_DIR, `${tag}.log`), {
    cpu: PROXY_CPU,
    env,
    cwd: target.kind === "gateway" ? GW : ROOT,
  });
  await waitPort(proc, p.host, p.proxy);
  return proc;
}

/** Where a side-by-side companion listens: the bench's ports, proxy and admin moved by 5. */
const COMPANION_PORTS: Ports = { ...P, proxy: P.proxy + 5, admin: P.admin + 5 };

/** A companion gateway started and checked beside a variant (see COMPANIONS). */
interface Companion {
  readonly variant: string;
  readonly proc: Proc;
  readonly url: string;
  readonly cookie: string | undefined;
}

async function startCompanion(v: Variant, tag: string): Promise<Companion | undefined> {
  const scenario = COMPANIONS[v.scenario];
  if (scenario === undefined || v.target.kind !== "gateway") return undefined;
  const proc = await startTarget(v.target, scenario, `${tag}-companion`, COMPANION_PORTS, "-c");
  try {
    const cookie = await verify(v.target, scenario, COMPANION_PORTS);
    return {
      variant: `${v.target.id}/${scenario}/${v.cookie}`,
      proc,
      url: `http://${P.host}:${COMPANION_PORTS.proxy}${requestPath(scenario)}`,
      cookie: v.cookie === "present" ? cookie : undefined,
    };
  } catch (error) {
    await stop(proc);
    throw error;
  }
}

function parseWrk(stdout: string): Record<string, number> {
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (line === undefined) throw new Error(`wrk printed no result: ${stdout.slice(-300)}`);
  return JSON.parse(line.slice("BENCH_JSON ".length));
}

async function wrk(
  url: string,
  seconds: number,
  cookie: string | undefined,
): Promise<Record<string, number>> {
  const argv = [
    "wrk",
    "-t1",
    "-c64",
    `-d${seconds}s`,
    "--latency",
    "--timeout",
    "2s",
    "-s",
    path.join(BENCH, "wrk/report.lua"),
    url,
  ];
  const full = LOAD_CPU === undefined ? argv : ["taskset", "-c", LOAD_CPU, ...argv];
  const r = await runAsync(full, {
    timeoutMs: (seconds + 20) * 1000,
    env: { BENCH_COOKIE: cookie ?? "" },
  });
  if (r.code !== 0) throw new Error(`wrk: exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
  return parseWrk(r.stdout);
}

/**
 * On a shared machine, waits (≤ 15 s) until both cores are mostly idle before a measurement;
 * returns the busiest core's percentage in the last 0.5 s sample (recorded with the run).
 */
let quietBudgetMs = 300_000; // all waits together: the run stays bounded on a busy machine

async function awaitQuiet(): Promise<number> {
  if (opt.quick) return NaN;
  const started = Date.now();
  const deadline = started + Math.min(15_000, quietBudgetMs);
  for (;;) {
    const a = cpuTimes();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const b = cpuTimes();
    const busiest = Math.max(...a.map((_, i) => busyPct(a, b, String(i)) ?? 0));
    if (busiest < 15 || Date.now() > deadline) {
      quietBudgetMs = Math.max(0, quietBudgetMs - (Date.now() - started - 500));
      return busiest;
    }
  }
}

/**
 * Scenario "reloads": rewrites the config file (the first server's weight, 1 ↔ 2: a real change
 * every time) and asks for a reload through the API, back to back, until stopped; counts the
 * answers (the gateway coalesces what arrives while one applies) from `measure()` on.
 */
function reloadStorm(
  file: string,
): { measure(): void; stop(): Promise<{ asked: number; ok: number }> } {
  const url = `http://${P.host}:${P.admin}/api/v1/reload`;
  const text = readFileSync(file, "utf8");
  const first = `"${P.host}:${P.upstreams[0]}"`;
  const variants = [text, text.replace(first, `{ address = ${first}, weight = 2 }`)];
  let running = true;
  let asked = 0;
  let ok = 0;
  let from = { asked: 0, ok: 0 };
  const loop = (async () => {
    while (running) {
      writeFileSync(file, variants[++asked % 2]);
      const answer = await fetch(url, { method: "POST" }).catch(() => undefined);
      if (answer?.status === 200) ok++;
      await answer?.body?.cancel();
    }
  })();
  return {
    measure() {
      from = { asked, ok };
    },
    async stop() {
      running = false;
      await loop;
      writeFileSync(file, text);
      return { asked: asked - from.asked, ok: ok - from.ok };
    },
  };
}

/** Fetches the gateway's /metrics every `ms` until stopped (scenario "metrics"). */
function scrapeEvery(ms: number): { stop(): void } {
  const url = `http://${P.host}:${P.admin}/metrics`;
  const timer = setInterval(() => {
    fetch(url).then((r) => r.text()).catch(() => {});
  }, ms);
  return { stop: () => clearInterval(timer) };
}

async function throughputRun(v: Variant, round: number): Promise<ThroughputResult> {
  const tag = `r${round}-${v.id.replaceAll("/", "-")}`;
  const base: ThroughputResult = {
    variant: v.id,
    round,
    ok: false,
    loadavg: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
  };
  base.idleBefore = await awaitQuiet();
  let proc: Proc | undefined;
  let companion: Companion | undefined;
  let scraping: { stop(): void } | undefined;
  let storm: ReturnType<typeof reloadStorm> | undefined;
  try {
    proc = await startTarget(v.target, v.scenario, tag);
    const cookie = await verify(v.target, v.scenario);
    companion = await startCompanion(v, tag);
    const url = `http://${P.host}:${P.proxy}${requestPath(v.scenario)}`;
    const sendCookie = v.cookie === "present" ? cookie : undefined;
    // A companion is loaded at the same time as the variant, by its own wrk, for the same time.
    const load = (seconds: number) =>
      Promise.all([
        wrk(url, seconds, sendCookie),
        companion && wrk(companion.url, seconds, companion.cookie),
      ]);
    // An operations feature runs through the warm-up too, as the load does: what is measured is
    // the gateway under it once warm. (A storm's first reloads make the runtime compile code
    // again: over the first 5 s a Bun storm cost 1-6 points more, docs/benchmarks.md.)
    // As Prometheus would scrape, only more often (its default interval is 15 s).
    scraping = v.scenario === "metrics" ? scrapeEvery(1000) : undefined;
    storm = v.scenario === "reloads"
      ? reloadStorm(path.join(TMP, `${v.target.id}-reloads.toml`))
      : undefined;
    if (opt.warmup > 0) await load(opt.warmup);
    storm?.measure();
    const cpu0 = cpuSeconds(proc.pid);
    const companionCpu0 = companion && cpuSeconds(companion.proc.pid);
    const cores0 = cpuTimes();
    const [w, wc] = await load(opt.duration);
    scraping?.stop();
    const reloads = await storm?.stop();
    if (companion !== undefined && wc !== undefined) {
      check(!companion.proc.exited, `the companion exited: ${tail(companion.proc.log)}`);
      check(wc.requests > 0 && wc.status === 0, `companion: ${wc.status} non-2xx responses`);
      const seconds = wc.duration_us / 1e6;
      base.companion = {
        variant: companion.variant,
        rps: wc.requests / seconds,
        p99Ms: wc.p99_us / 1000,
        cpuPct: (100 * (cpuSeconds(companion.proc.pid) - companionCpu0!)) / seconds,
        rssKiB: peakRssKiB(companion.proc.pid),
      };
    }
    if (reloads !== undefined) {
      check(reloads.ok > 0, `no reload succeeded (${reloads.asked} asked)`);
      base.reloads = reloads;
    }
    const cores1 = cpuTimes();
    const cpu = cpuSeconds(proc.pid) - cpu0;
    const rss = peakRssKiB(proc.pid);
    const anon = anonRssKiB(proc.pid);
    check(!proc.exited, `${v.target.id} exited during the run: ${tail(proc.log)}`);
    const seconds = w.duration_us / 1e6;
    const socketErrors = w.connect + w.read + w.write + w.timeout;
    Object.assign(base, {
      rps: w.requests / seconds,
      p50Ms: w.p50_us / 1000,
      p90Ms: w.p90_us / 1000,
      p99Ms: w.p99_us / 1000,
      maxMs: w.max_us / 1000,
      rssKiB: rss,
      anonRssKiB: anon,
      cpuPct: (100 * cpu) / seconds,
      proxyCoreBusyPct: busyPct(cores0, cores1, PROXY_CPU),
      loadCoreBusyPct: busyPct(cores0, cores1, LOAD_CPU),
      proxyCoreStealPct: busyPct(cores0, cores1, PROXY_CPU, 2),
      loadCoreStealPct: busyPct(cores0, cores1, LOAD_CPU, 2),
      requests: w.requests,
      errors: {
        connect: w.connect,
        read: w.read,
        write: w.write,
        timeout: w.timeout,
        status: w.status,
      },
    });
    check(w.requests > 0, "no request completed");
    check(w.status === 0, `${w.status} responses were not 2xx/3xx`);
    check(
      socketErrors <= Math.max(2, w.requests * 1e-4),
      `socket errors: connect ${w.connect}, read ${w.read}, write ${w.write}, timeout ${w.timeout}`,
    );
    base.ok = true;
  } catch (error) {
    base.error = (error as Error).message;
  } finally {
    // A failed run must not leave the storm or the scrapes going (stop() again is harmless).
    scraping?.stop();
    await storm?.stop();
    if (companion !== undefined) await stop(companion.proc);
    if (proc !== undefined) {
      await stop(proc);
      if (!proc.exited) base.error ??= "did not stop";
    }
  }
  return base;
}

interface DataFile {
  file: string;
  bytes: number;
  crc32: number;
}

async function streamRun(v: StreamVariant, round: number, data: DataFile): Promise<StreamResult> {
  const tag = `r${round}-stream-${v.id.replaceAll("/", "-")}`;
  const base: StreamResult = { variant: v.id, round, ok: false };
  base.idleBefore = await awaitQuiet();
  let proc: Proc | undefined;
  try {
    proc = await startTarget(v.target, "stream", tag);
    const probe = await curl(`http://${P.host}:${P.proxy}/`);
    check(probe.status === 200 && probe.body === BODY, `GET /: status ${probe.status}`);
    const maxTime = String(Math.max(60, Math.ceil(data.bytes / (8 << 20)))); // ≥ 8 MiB/s or fail
    const load = LOAD_CPU === undefined ? [] : ["taskset", "-c", LOAD_CPU];
    const cpu0 = cpuSeconds(proc.pid);
    const cores0 = cpuTimes();
    const timeoutMs = (Number(maxTime) + 10) * 1000;
    let answer: { status?: number; bytes: number; crc32: number; seconds: number };
    if (v.direction === "download") {
      const r = await runAsync([
        ...load,
        BUN,
        path.join(BENCH, "upstreams/download.ts"),
        `http://${P.host}:${P.proxy}/big`,
      ], { timeoutMs });
      check(r.code === 0, `download failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
      answer = JSON.parse(r.stdout);
      check(answer.status === 200, `download: status ${answer.status}`);
    } else {
      const r = await runAsync(
        uploadArgv(load, data.file, `http://${P.host}:${P.proxy}/upload`, Number(maxTime)),
        { timeoutMs },
      );
      check(r.code === 0, `upload failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
      const lines = r.stdout.trim().split("\n");
      answer = { ...JSON.parse(lines[0]), seconds: Number(lines[1]) };
    }
    const cores1 = cpuTimes();
    const where = v.direction === "download" ? "the client" : "the sink";
    base.verified = `${where} got ${answer.bytes} bytes, CRC-32 ${answer.crc32.toString(16)}`;
    check(
      answer.bytes === data.bytes && answer.crc32 === data.crc32,
      `${where} got ${answer.bytes} bytes with CRC-32 ${answer.crc32}; sent ${data.bytes} bytes with CRC-32 ${data.crc32}`,
    );
    base.bytes = answer.bytes;
    const seconds = answer.seconds;
    base.loadCoreBusyPct = busyPct(cores0, cores1, LOAD_CPU);
    base.proxyCoreStealPct = busyPct(cores0, cores1, PROXY_CPU, 2);
    const cpu = cpuSeconds(proc.pid) - cpu0;
    base.seconds = seconds;
    base.mibps = data.bytes / (1 << 20) / seconds;
    base.cpuPerGiB = cpu / (data.bytes / (1 << 30));
    base.rssKiB = peakRssKiB(proc.pid);
    check(!proc.exited, `${v.target.id} exited during the transfer`);
    base.ok = true;
  } catch (error) {
    base.error = (error as Error).message;
  } finally {
    if (proc !== undefined) await stop(proc);
  }
  return base;
}

function makeDataFile(mib: number): DataFile {
  const free = Number(run(["df", "-Pk", TMP]).trim().split("\n")[1].split(/\s+/)[3]) * 1024;
  check(
    free > mib * (1 << 20) + (2 << 30),
    `not enough space in ${TMP} for a ${mib} MiB file (+2 GiB margin)`,
  );
  const file = path.join(TMP, "big");
  const block = randomBytes(4 << 20);
  const fd = openSync(file, "w", 0o644);
  let crc = 0;
  const crc32 = (zlib as unknown as { crc32(d: Uint8Array, v?: number): number }).crc32;
  const bytes = mib << 20;
  for (let written = 0; written < bytes; written += block.length) {
    const chunk = block.subarray(0, Math.min(block.length, bytes - written));
    writeSync(fd, chunk);
    crc = crc32(chunk, crc);
  }
  closeSync(fd);
  chmodSync(file, 0o644);
  return {
    file,
    bytes,
    crc32: crc,
  };
}

// ---------------------------------------------------------------------------------------------
// In-process scale micro-benchmark (bench/micro/scale.ts)

type MicroRuntime = MicroRun["runtime"];

/** Both runtimes; under --only, those of the selected gateway variants or matching micro/<rt>. */
function microPlan(selected: Variant[]): MicroRuntime[] {
  const only = opt.only;
  const all: MicroRuntime[] = ["deno", "bun"];
  if (!opt.micro) return [];
  if (only === undefined) return all;
  const runtimeOf = (v: Variant) => (v.target.runtime === "deno" ? "deno" : "bun");
  return all.filter((rt) =>
    only.test(`micro/${rt}`) ||
    selected.some((v) => v.target.kind === "gateway" && runtimeOf(v) === rt)
  );
}

/**
 * One run of the micro-benchmark on the snapshot, in a child process pinned like the proxy (the
 * core the gateway gets in the load runs). Its table goes to micro-<runtime>.log.
 */
async function microRun(runtime: MicroRuntime): Promise<MicroRun> {
  const json = path.join(RUN_DIR, `micro-${runtime}.json`);
  const script = path.join(GW, "bench/micro/scale.ts");
  const args = ["--json", json, ...(opt.quick ? ["--quick"] : [])];
  const argv = runtime === "deno" ? [DENO, "run", "-A", script, ...args] : [BUN, script, ...args];
  const run: MicroRun = { id: `micro/${runtime}`, runtime, ok: false };
  await awaitQuiet();
  const t0 = Date.now();
  const r = await runAsync(PROXY_CPU === undefined ? argv : ["taskset", "-c", PROXY_CPU, ...argv], {
    cwd: GW,
    timeoutMs: (opt.quick ? 120 : 900) * 1000,
  });
  run.seconds = (Date.now() - t0) / 1000;
  writeFileSync(path.join(RUN_DIR, `micro-${runtime}.log`), r.stdout + r.stderr);
  if (r.code !== 0) {
    const why = r.stderr.trim().split("\n").slice(-3).join(" | ").slice(0, 500);
    run.error = `exit ${r.code}: ${why || "(no output)"}`;
    return run;
  }
  try {
    run.result = JSON.parse(readFileSync(json, "utf8")) as MicroResult;
    run.ok = true;
  } catch (error) {
    run.error = `no result in ${json}: ${(error as Error).message}`;
  }
  return run;
}

// ---------------------------------------------------------------------------------------------
// Machine and versions

function firstLine(argv: string[]): string {
  try {
    const r = run(argv, { timeoutMs: 10_000 });
    return r.trim().split("\n")[0];
  } catch (error) {
    return `? (${(error as Error).message.slice(0, 80)})`;
  }
}

function machine(): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "?";
  const osRelease = existsSync("/etc/os-release")
    ? /PRETTY_NAME="?([^"\n]*)/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "?"
    : "?";
  let commit = "?";
  try {
    commit = run(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT }).trim();
    if (run(["git", "status", "--porcelain", "--", "src"], { cwd: ROOT }).trim() !== "") {
      commit += ` + uncommitted changes in src/ (snapshot ${SOURCE_DIGEST})`;
    }
  } catch { /* not a git checkout */ }
  return {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    cpu: model,
    cores: CORES,
    memGiB: Math.round(os.totalmem() / (1 << 30)),
    kernel: os.release(),
    os: osRelease,
    proxyCpu: PROXY_CPU,
    loadCpu: LOAD_CPU,
    commit,
    versions: {
      deno: firstLine([DENO, "--version"]),
      bun: firstLine([BUN, "--version"]),
      haproxy: firstLine(["haproxy", "-v"]).replace(/ - https.*/, ""),
      nginx: firstLine(["bash", "-c", "nginx -v 2>&1"]),
      wrk: firstLine(["bash", "-c", "wrk -v 2>&1 | head -1"]).replace(/ Copyright.*/, ""),
      caddy: which("caddy") ? firstLine(["caddy", "version"]) : "not installed",
      node: NODE ? firstLine([NODE, "--version"]) : "not installed",
    },
    workers: workersLine.includes("workers"),
    serverExtras: workersLine === "" ? [] : workersLine.split("\n"),
    upstreamClient: process.env.BENCH_UPSTREAM_CLIENT ?? "auto (default)",
  };
}

/** Every variant of every target, in table order. */
function plan(usable: Target[]): { variants: Variant[]; streams: StreamVariant[] } {
  const variants: Variant[] = [];
  for (const t of usable) {
    const cookies = t.cookie === undefined
      ? ["-" as const]
      : ["absent" as const, "present" as const];
    const scenarios: Scenario[] = ["main"];
    if (opt.scale && t.scale && (t.runtime === "bun" || (t.runtime === "deno" && !opt.quick))) {
      scenarios.push("servers1000", "servers1000down", "routes500");
    }
    // Reference for the gateway's 1,000 live servers: what a large pool costs HAProxy.
    if (opt.scale && !opt.quick && t.kind === "haproxy") scenarios.push("servers1000");
    if (opt.ops && t.kind === "gateway" && t.id !== "gw-binary") scenarios.push(...OPS_SCENARIOS);
    // Issue 12: signed tokens against main's md5 values (quick runs: on Bun only).
    if (t.kind === "gateway" && t.id !== "gw-binary" && (t.runtime === "bun" || !opt.quick)) {
      scenarios.push(TOKEN_SCENARIO);
    }
    // Quick runs (make test) measure it on Bun only, as the scale scenarios.
    const dnsHere = t.runtime === "bun" || (t.runtime === "deno" && !opt.quick);
    if (dnsmasqBinary !== undefined && t.kind === "gateway" && t.id !== "gw-binary" && dnsHere) {
      scenarios.push(...DNS_SCENARIOS);
    }
    for (const scenario of scenarios) {
      for (const cookie of cookies) {
        variants.push({ id: `${t.id}/${scenario}/${cookie}`, target: t, scenario, cookie });
      }
    }
  }
  const streams: StreamVariant[] = [];
  if (opt.stream) {
    for (const t of usable) {
      if (!t.stream) continue;
      for (const direction of ["download", "upload"] as const) {
        streams.push({ id: `${t.id}/${direction}`, target: t, direction });
      }
    }
  }
  return { variants, streams };
}

// ---------------------------------------------------------------------------------------------
// Phases (bench/phases/, issue 14)

let loadedPhases: Phase[] = [];

function phaseContext(usable: Target[]): PhaseContext {
  const targets: PhaseTarget[] = usable
    .filter((t) => t.id in GATEWAY_ARGV || t.id === "haproxy")
    .map((t) => ({
      id: t.id,
      label: t.label,
      kind: t.kind === "haproxy" ? "haproxy" : "gateway",
      argv: GATEWAY_ARGV[t.id] ?? (() => []),
    }));
  return {
    quick: opt.quick,
    rounds: opt.phaseRounds ?? opt.rounds,
    duration: opt.duration,
    warmup: opt.warmup,
    ports: P,
    tmp: TMP,
    runDir: RUN_DIR,
    root: ROOT,
    gatewayDir: GW,
    deno: DENO,
    bun: BUN,
    proxyCpu: PROXY_CPU,
    loadCpu: LOAD_CPU,
    serverExtras: workersLine,
    targets,
    log,
    awaitQuiet,
  };
}

/**
 * Every selected phase: setup, its variants (filtered by --only like any variant) in
 * interleaved rounds, teardown. A phase with no selected variant does not run.
 */
async function runPhases(usable: Target[]): Promise<Record<string, PhaseRow[]>> {
  const out: Record<string, PhaseRow[]> = {};
  const { phases, missing } = await loadPhases(opt.phases);
  for (const m of missing) log(`skip phase ${m}`);
  loadedPhases = phases;
  const ctx = phaseContext(usable);
  for (const phase of phases) {
    const variants = phase.variants(ctx).filter((id) =>
      opt.only === undefined || opt.only.test(id)
    );
    if (variants.length === 0) continue;
    const setup = await phase.setup(ctx, variants).catch((error: Error) => ({
      skip: `setup failed: ${error.message}`,
    }));
    const rows: PhaseRow[] = [];
    out[phase.id] = rows;
    if (setup !== undefined && "skip" in setup) {
      log(`phase ${phase.id}: ${setup.skip}`);
      for (const variant of variants) {
        rows.push({ variant, round: 1, ok: false, error: setup.skip });
      }
      continue;
    }
    const rounds = opt.phaseRounds ?? opt.rounds;
    log(`phase ${phase.id}: ${variants.length} variants × ${rounds} rounds`);
    try {
      for (let round = 1; round <= rounds; round++) {
        const order = variants.map((_, i) => variants[(i + round - 1) % variants.length]);
        for (const variant of order) {
          let row: PhaseRow;
          try {
            row = await phase.run(ctx, variant, round);
          } catch (error) {
            row = { variant, round, ok: false, error: (error as Error).message };
          }
          rows.push(row);
          log(
            `round ${round} ${variant.padEnd(36)} ${
              row.ok ? phase.summary(row) : `FAILED: ${row.error}`
            }`,
          );
        }
      }
    } finally {
      await phase.teardown();
    }
  }
  return out;
}

/** Each phase's section and target lines, for the report (also from a saved results.json). */
function phaseReports(rows: Record<string, PhaseRow[]>, results: ThroughputResult[]) {
  const ctx: RenderContext = {
    rounds: opt.phaseRounds ?? opt.rounds,
    quick: opt.quick,
    plainRatio: (targetId, cookie) =>
      pairedRatio(
        results,
        `${targetId}/main/${cookie}`,
        `haproxy/main/${cookie}`,
        (r) => r.rps,
      ),
  };
  return loadedPhases
    .filter((p) => rows[p.id] !== undefined)
    .map((p) => ({
      id: p.id,
      section: p.render(rows[p.id], ctx),
      targets: p.targets(rows[p.id], ctx),
      panels: p.chart(rows[p.id], ctx),
    }));
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  for (const tool of ["wrk", "haproxy", "nginx", "curl"]) {
    check(which(tool) !== undefined, `${tool} not found; run bench/install.sh (make bench does)`);
  }
  if (PROXY_CPU !== undefined) {
    check(which("taskset") !== undefined, "taskset not found (util-linux)");
  }
  snapshotGateway();
  log(
    `results in ${
      path.relative(ROOT, RUN_DIR)
    }; temp files in ${TMP}; ${CORES} cores: proxy on CPU ${
      PROXY_CPU ?? "any"
    }, wrk + upstreams on CPU ${LOAD_CPU ?? "any"}`,
  );

  // Server keys the gateway may or may not know yet (it grows while the bench is used): each is
  // kept when `--check` accepts it. workers = 1: one process on the one proxy core, like HAProxy
  // with nbthread 1. client_max_body_size = 0: no cap, or the 1 GiB upload is refused (413).
  const probe = path.join(TMP, "probe.toml");
  const accepted: string[] = [];
  for (const line of ["workers = 1", "client_max_body_size = 0"]) {
    writeFileSync(probe, gatewayToml("main", P, line));
    try {
      run([BUN, "src/main.ts", "--config", probe, "--check"], { cwd: GW, timeoutMs: 20_000 });
      accepted.push(line);
    } catch { /* unknown key: the gateway's behaviour without it is what we want anyway */ }
  }
  if (process.env.BENCH_UPSTREAM_CLIENT) {
    accepted.push(`upstream_client = "${process.env.BENCH_UPSTREAM_CLIENT}"`);
  }
  workersLine = accepted.join("\n");
  log(`gateway [server] extras: ${accepted.length ? accepted.join(", ") : "none"}`);

  if (opt.dns) {
    const found = locateDnsmasq();
    if ("binary" in found) dnsmasqBinary = found.binary;
    else log(`skip dns200/static200: ${found.reason}`);
  }
  const targets = buildTargets();
  for (const t of targets) if (t.skip !== undefined) log(`skip ${t.id}: ${t.skip}`);
  const usable = targets.filter((t) => t.skip === undefined);

  const { variants, streams } = plan(usable);
  const selected = variants.filter((v) => opt.only === undefined || opt.only.test(v.id));
  const selectedStreams = streams.filter((v) => opt.only === undefined || opt.only.test(v.id));
  const perRun = opt.duration + opt.warmup + 1;
  log(
    `${selected.length} throughput variants × ${opt.rounds} rounds (~${
      Math.round((selected.length * opt.rounds * perRun) / 60)
    } min), ` +
      `${selectedStreams.length} streaming runs × ${opt.streamRounds} rounds of ${opt.streamMiB} MiB`,
  );

  // First, while nothing else of the bench runs: the in-process micro-benchmark.
  const micro: MicroRun[] = [];
  for (const runtime of microPlan(selected)) {
    const m = await microRun(runtime);
    micro.push(m);
    log(
      `micro ${runtime.padEnd(4)} ${
        m.ok ? `${m.seconds!.toFixed(0)} s: ${microSummary(m.result!)}` : `FAILED: ${m.error}`
      }`,
    );
  }

  // Upstreams: nginx (16-byte body, /big) and the upload sink, on the load core.
  const scale = selected.some((v) => v.scenario === "servers1000");
  let data: DataFile | undefined;
  if (selectedStreams.length > 0) {
    data = makeDataFile(opt.streamMiB);
    log(`data file: ${opt.streamMiB} MiB, CRC-32 ${data.crc32.toString(16)}`);
  }
  const upConf = path.join(TMP, "upstream.conf");
  const dns = selected.some((v) => DNS_SCENARIOS.includes(v.scenario));
  writeFileSync(upConf, upstreamNginx(TMP, TMP, P, scale, dns));
  for (const port of [...P.upstreams, P.sink]) {
    check(!(await portOpen(P.host, port)), `port ${port} is already in use`);
  }
  upstream = start(
    "upstream-nginx",
    [
      "nginx",
      "-e",
      path.join(TMP, "upstream.error.log"),
      "-p",
      TMP,
      "-c",
      upConf,
      "-g",
      "daemon off;",
    ],
    path.join(RUN_DIR, "upstream-nginx.log"),
    { cpu: LOAD_CPU },
  );
  for (const port of P.upstreams) await waitPort(upstream, P.host, port);
  if (scale) await waitPort(upstream, P.host, P.scaleBase + 999);
  if (dns) {
    if (!scale) await waitPort(upstream, P.host, P.scaleBase + dnsSrv(P).length - 1);
    // A peer, like the upstreams: on the load core, not sharing the proxy's.
    dnsServer = await startDnsmasq(dnsmasqBinary!, {
      hosts: dnsHosts(),
      srv: dnsSrv(P),
      cpu: LOAD_CPU,
    });
    log(`dnsmasq on 127.0.0.1:${dnsServer.port} answers ${dnsSrv(P).length} SRV records`);
  }
  if (selectedStreams.length > 0) {
    sink = start("sink", [BUN, "bench/upstreams/sink.ts"], path.join(RUN_DIR, "sink.log"), {
      cpu: LOAD_CPU,
      cwd: ROOT,
      env: { LISTEN: `${P.host}:${P.sink}` },
    });
    await waitPort(sink, P.host, P.sink);
  }
  const info = machine();

  const results: ThroughputResult[] = [];
  const streamResults: StreamResult[] = [];
  const rounds = Math.max(opt.rounds, opt.streamRounds);
  for (let round = 1; round <= rounds; round++) {
    if (round <= opt.rounds) {
      // Round robin over the variants, starting one further each round.
      const order = selected.map((_, i) => selected[(i + round - 1) % selected.length]);
      for (const v of order) {
        const r = await throughputRun(v, round);
        results.push(r);
        log(
          `round ${round} ${v.id.padEnd(36)} ${
            r.ok
              ? `${Math.round(r.rps!).toLocaleString("en-US").padStart(7)} req/s  p50 ${
                r.p50Ms!.toFixed(2)
              } ms  p99 ${r.p99Ms!.toFixed(2)} ms  RSS ${(r.rssKiB! / 1024).toFixed(0)} MiB  CPU ${
                r.cpuPct!.toFixed(0)
              }%`
              : `FAILED: ${r.error}`
          }`,
        );
      }
    }
    if (round <= opt.streamRounds && data !== undefined) {
      const order = selectedStreams.map((_, i) =>
        selectedStreams[(i + round - 1) % selectedStreams.length]
      );
      for (const v of order) {
        const r = await streamRun(v, round, data);
        streamResults.push(r);
        log(
          `round ${round} stream ${v.id.padEnd(28)} ${
            r.ok
              ? `${r.mibps!.toFixed(0).padStart(5)} MiB/s  CPU ${
                r.cpuPerGiB!.toFixed(2)
              } s/GiB  RSS ${(r.rssKiB! / 1024).toFixed(0)} MiB  ${r.verified}`
              : `FAILED: ${r.error}`
          }`,
        );
      }
    }
  }
  const phaseRows = await runPhases(usable);
  check(!upstream.exited, "the upstream nginx died during the bench");
  await dnsServer?.stop();

  const wall = (Date.now() - T0) / 1000;
  writeFileSync(
    path.join(RUN_DIR, "results.json"),
    JSON.stringify(
      {
        machine: info,
        options: { ...opt, only: opt.only?.source },
        wallSeconds: wall,
        results,
        streamResults,
        micro,
        phases: phaseRows,
      },
      null,
      2,
    ),
  );
  publish(info, selected, selectedStreams, results, streamResults, micro, wall, phaseRows);
  // A required target that could not even start (e.g. the binary not built) is a failure too.
  const missing = targets.filter((t) =>
    t.skip !== undefined && !t.optional && (opt.only === undefined || opt.only.test(`${t.id}/`))
  );
  for (const t of missing) console.error(`FAILED ${t.id}: ${t.skip}`);
  const allPhaseRows = Object.values(phaseRows).flat();
  const failed = missing.length + results.filter((r) => !r.ok).length +
    streamResults.filter((r) => !r.ok).length + micro.filter((m) => !m.ok).length +
    allPhaseRows.filter((r) => !r.ok).length;
  log(
    `done in ${wall.toFixed(0)} s: ${
      results.length + streamResults.length + allPhaseRows.length
    } runs, ${failed} failed; raw results in ${path.relative(ROOT, RUN_DIR)}`,
  );
  if (failed > 0) {
    for (const r of [...results, ...streamResults, ...allPhaseRows]) {
      if (!r.ok) console.error(`FAILED round ${r.round} ${r.variant}: ${r.error}`);
    }
    for (const m of micro) if (!m.ok) console.error(`FAILED ${m.id}: ${m.error}`);
  }
  return failed > 0 ? 1 : 0;
}

/** Prints the tables and writes results.md, the chart, and (full mode) docs/benchmarks.md. */
function publish(
  info: Machine,
  variants: Variant[],
  streams: StreamVariant[],
  results: ThroughputResult[],
  streamResults: StreamResult[],
  micro: MicroRun[],
  wall: number,
  phaseRows: Record<string, PhaseRow[]>,
): void {
  const out = report({
    phases: phaseReports(phaseRows, results),
    opt,
    machine: info,
    variants,
    streams,
    results,
    streamResults,
    micro,
    wallSeconds: wall,
    streamMiB: opt.streamMiB,
    ports: P,
  });
  console.log("\n" + out.tables);
  writeFileSync(path.join(RUN_DIR, "results.md"), out.section);
  writeFileSync(path.join(RUN_DIR, "benchmarks.svg"), out.svg);
  formatMarkdown(path.join(RUN_DIR, "results.md"));
  writeFileSync(path.join(RESULTS, opt.quick ? "quick.md" : "full.md"), out.section);
  formatMarkdown(path.join(RESULTS, opt.quick ? "quick.md" : "full.md"));
  if (opt.writeDocs) {
    const doc = path.join(ROOT, "docs/benchmarks.md");
    writeFileSync(doc, out.document(existsSync(doc) ? readFileSync(doc, "utf8") : undefined));
    writeFileSync(path.join(ROOT, "docs/benchmarks.svg"), out.svg);
    formatMarkdown(doc);
    log("wrote docs/benchmarks.md and docs/benchmarks.svg");
  }
}

/** --report FILE: the same outputs from a saved results.json. */
async function rerender(file: string): Promise<number> {
  const saved = JSON.parse(readFileSync(file, "utf8"));
  loadedPhases = (await loadPhases(Object.keys(saved.phases ?? {}))).phases;
  Object.assign(opt, {
    ...saved.options,
    only: undefined,
    // Re-rendering a subset (--only) or a quick run leaves docs/ alone too, unless asked.
    writeDocs: opt.docsChosen
      ? opt.writeDocs
      : opt.writeDocs && saved.options.only === undefined && !saved.options.quick,
    reportFrom: file,
    peers: true,
  });
  const targets = buildTargets().map((t) => ({ ...t, skip: undefined }));
  const { variants, streams } = plan(targets);
  const ran = new Set<string>(
    [...saved.results, ...saved.streamResults].map((r: { variant: string }) => r.variant),
  );
  publish(
    saved.machine,
    variants.filter((v) => ran.has(v.id)),
    streams.filter((v) => ran.has(v.id)),
    saved.results,
    saved.streamResults,
    saved.micro ?? [],
    saved.wallSeconds ?? NaN,
    saved.phases ?? {},
  );
  return 0;
}

/** `deno fmt` keeps `make check` green on the generated markdown (best effort). */
function formatMarkdown(file: string): void {
  try {
    run([DENO, "fmt", "--quiet", file], { cwd: ROOT, timeoutMs: 30_000 });
  } catch (error) {
    const message = (error as Error).message;
    // "No target files found": deno.json excludes the file from fmt, which is fine too.
    if (!message.includes("No target files")) log(`deno fmt ${file}: ${message.slice(0, 200)}`);
  }
}

async function cleanup(): Promise<void> {
  await stopAll();
  rmSync(TMP, { recursive: true, force: true });
  if (PORTS.lock !== undefined) rmSync(PORTS.lock, { force: true });
}

cleanUpOnSignals(TMP);

let code = 1;
try {
  code = opt.reportFrom !== undefined ? await rerender(opt.reportFrom) : await main();
} catch (error) {
  console.error(`bench: ${(error as Error).message}`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
