/**
 * `make profile`: a CPU profile of the gateway under the load of `make bench` (one core for the
 * gateway, `workers = 1`; wrk -t1 -c64 and one nginx worker on the other core), summarised by
 * where the time goes, so docs/benchmarks.md can say where each CPU µs per request is spent.
 *
 *   bun bench/profile.ts [--runtime deno|bun|both] [--cookie absent|present|both]
 *                        [--duration S] [--warmup S] [--interval µs] [--compare]
 *                        [--scenario main|admin|log]
 *                        [--load wrk|download|upload|stream] [--stream-mib N] [--strace S]
 *                        [--perf]
 *   (sampling interval: 100 µs on Bun, 1,000 µs on Deno unless --interval; see intervalFor)
 *   bun bench/profile.ts --report bench/results/profile-<…>.json   (re-render, no measuring)
 *
 * Bun: `bun --cpu-prof` (written when the gateway exits); only samples inside the measured window
 * count. Deno: the V8 inspector (`--inspect`) and the DevTools protocol, started after the
 * warm-up and stopped after the measured run. `--compare` adds an unprofiled run of each case,
 * to show what the profiler itself costs.
 *
 * `--load download|upload` (`stream`: both) profiles one 1 GiB transfer instead of wrk, set up
 * as bench/run.ts's streaming rows are: a fresh gateway with the "stream" config, nginx serving a
 * file of random bytes (sendfile) and the Bun sink on the load core, the download client
 * (bench/upstreams/download.ts) or `curl -T`; every byte checked (size and CRC-32). No warm-up (as
 * in the bench); costs are per MiB moved; the gateway's VmRSS/RssAnon are sampled every 50 ms.
 * `--strace S` adds, per case, an unprofiled transfer with `strace -f` attached for S seconds and
 * the same for HAProxy: system calls per GiB and bytes per call, by call and descriptor.
 * `--perf` adds one more with `perf record -e cpu-clock` (kernel and native code: where the
 * time outside JavaScript goes), HAProxy's too.
 *
 * Writes bench/results/profile-<runtime>-<cookie>-<time>.md, the raw .cpuprofile beside it (open
 * it in Chrome DevTools or speedscope) and a .json of the measurements (for --report); a stream
 * load writes profile-<runtime>-<download|upload>-<time>.*. Environment: DENO, BUN, PROFILE_PORT_BASE
 * (default 30000, clear of the bench's 28000), BENCH_PROXY_CPU / BENCH_LOAD_CPU.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { BODY, gatewayToml, haproxyCfg, ports, upstreamNginx } from "./lib/configs.ts";
import {
  busyPct,
  cleanUpOnSignals,
  cpuSeconds,
  cpuTimes,
  peakRssKiB,
  portOpen,
  type Proc,
  run,
  runAsync,
  sleep,
  start,
  stop,
  stopAll,
  tail,
  waitPort,
} from "./lib/procs.ts";
import { uploadArgv } from "./lib/stream_upload.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS = path.join(ROOT, "bench", "results");

// ---------------------------------------------------------------------------------------------
// Options

type Runtime = "deno" | "bun";
type CookieCase = "absent" | "present";
/** wrk's requests (the default), or one large transfer through the gateway. */
type Load = "wrk" | Direction;
type Direction = "download" | "upload";

interface Options {
  runtimes: Runtime[];
  cookies: CookieCase[];
  loads: Load[];
  /** Size of a streamed transfer, MiB (default 1024, the bench's). */
  streamMiB: number;
  /** Stream loads: seconds of `strace -f` on an unprofiled transfer (and on HAProxy's). */
  strace?: number;
  /** Stream loads: `perf record` through an unprofiled transfer (and HAProxy's). */
  perf: boolean;
  duration: number;
  warmup: number;
  /** Sampling interval, µs (default: intervalFor). */
  interval?: number;
  compare: boolean;
  /** The config for wrk: "main"; "admin" (main with the admin listener, and with it the
   * per-request metrics) or "log" (main with the access log, to /dev/null): what they cost,
   * against a "main" profile. */
  scenario: "main" | "admin" | "log";
  /** Re-render the markdown of an earlier run from its .json and .cpuprofile (no measuring). */
  report?: string;
}

const USAGE =
  "usage: bun bench/profile.ts [--runtime deno|bun|both] [--cookie absent|present|both] " +
  "[--duration S] [--warmup S] [--interval µs] [--compare]\n" +
  "       [--scenario main|admin|log]\n" +
  "       [--load wrk|download|upload|stream] [--stream-mib N] [--strace S] [--perf]\n" +
  "       bun bench/profile.ts --report bench/results/profile-<…>.json   (re-render, no measuring)";

function usage(message: string): never {
  console.error(`profile: ${message}\n${USAGE}`);
  process.exit(2);
}

function choice<T extends string>(name: string, text: string, values: readonly T[]): T[] {
  if (text === "both") return [...values];
  const found = values.find((v) => v === text);
  if (found === undefined) usage(`${name} must be ${values.join(", ")} or both`);
  return [found];
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(n > 0)) usage(`${name} must be a positive number`);
  return n;
}

function loadChoice(text: string): Load[] {
  if (text === "stream") return ["download", "upload"];
  const found = (["wrk", "download", "upload"] as const).find((v) => v === text);
  if (found === undefined) usage("--load must be wrk, download, upload or stream (both ways)");
  return [found];
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = {
    runtimes: ["deno", "bun"],
    cookies: ["absent", "present"],
    loads: ["wrk"],
    streamMiB: 1024,
    perf: false,
    duration: 8,
    warmup: 2,
    compare: false,
    scenario: "main",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => argv[++i] ?? usage(`${a} needs a value`);
    if (a === "--runtime") o.runtimes = choice(a, value(), ["deno", "bun"] as const);
    else if (a === "--cookie") o.cookies = choice(a, value(), ["absent", "present"] as const);
    else if (a === "--duration") o.duration = positive(a, value());
    else if (a === "--warmup") o.warmup = Number(value());
    else if (a === "--interval") o.interval = Math.round(positive(a, value()));
    else if (a === "--compare") o.compare = true;
    else if (a === "--scenario") {
      const v = value();
      if (v !== "main" && v !== "admin" && v !== "log") {
        usage("--scenario must be main, admin or log");
      }
      o.scenario = v;
    } else if (a === "--report") o.report = value();
    else if (a === "--load") o.loads = loadChoice(value());
    else if (a === "--stream-mib") o.streamMiB = Math.round(positive(a, value()));
    else if (a === "--strace") o.strace = positive(a, value());
    else if (a === "--perf") o.perf = true;
    else if (a === "--help" || a === "-h") usage("help");
    else usage(`unknown argument ${a}`);
  }
  if (!(o.warmup >= 0)) usage("--warmup must be 0 or more");
  return o;
}

const opt = parseOptions(process.argv.slice(2));
const P = ports(Number(process.env.PROFILE_PORT_BASE ?? 30000));
const INSPECT_PORT = P.proxy + 10; // below the upstreams (base + 101…)
const TARGET = `http://${P.host}:${P.proxy}/`;
const CORES = os.availableParallelism?.() ?? os.cpus().length;
const PROXY_CPU = process.env.BENCH_PROXY_CPU ?? (CORES >= 2 ? "1" : undefined);
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? (CORES >= 2 ? "0" : undefined);
const DENO = process.env.DENO || which("deno") || "deno";
const BUN = process.env.BUN || which("bun") || process.execPath;
const TMP = mkdtempSync(path.join(os.tmpdir(), "sticky-profile-"));

function which(cmd: string): string | undefined {
  try {
    return run(["bash", "-c", `command -v ${cmd}`]).trim() || undefined;
  } catch {
    return undefined;
  }
}

function log(message: string): void {
  console.log(`profile: ${message}`);
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** Wall clock in µs since the epoch: the clock of Bun's .cpuprofile timestamps. */
function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

// ---------------------------------------------------------------------------------------------
// The V8 .cpuprofile format (what both runtimes write), as far as it is read here

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  /** 0-based; -1 when unknown (native code). */
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** µs: since the epoch (Bun) or on a monotonic clock (V8 in Deno). */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// A minimal Chrome DevTools Protocol client (Deno's inspector)

interface CdpMessage {
  readonly id?: number;
  readonly result?: unknown;
  readonly error?: { readonly message: string };
  /** Events: a method and its params, no id. */
  readonly method?: string;
  readonly params?: unknown;
}

interface CdpTarget {
  readonly webSocketDebuggerUrl?: string;
}

class Cdp {
  readonly #ws: WebSocket;
  readonly #pending = new Map<
    number,
    { resolve: (result: unknown) => void; reject: (error: Error) => void }
  >();
  readonly #listeners = new Map<string, (params: unknown) => void>();
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => this.#receive(String(event.data));
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new Error("inspector connection closed"));
      this.#pending.clear();
    };
  }

  /** Connects to the first target listed at http://host:port/json/list (retries ≤ 10 s). */
  static async connect(host: string, port: number): Promise<Cdp> {
    const deadline = Date.now() + 10_000;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const list =
          (await (await fetch(`http://${host}:${port}/json/list`)).json()) as CdpTarget[];
        const url = list.find((t) => t.webSocketDebuggerUrl !== undefined)?.webSocketDebuggerUrl;
        if (url !== undefined) return await Cdp.#open(url);
        last = "no target in /json/list";
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(100);
    }
    throw new Error(`no inspector on ${host}:${port}: ${last}`);
  }

  static #open(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(new Cdp(ws));
      ws.onerror = () => reject(new Error(`cannot open ${url}`));
    });
  }

  /** Sends one command; resolves with its result (the caller names the result's type). */
  send<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (result) => (clearTimeout(timer), resolve(result as T)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Calls `listener` with the params of every `method` event (one listener per event). */
  on<T>(method: string, listener: (params: T) => void): void {
    this.#listeners.set(method, (params) => listener(params as T));
  }

  close(): void {
    this.#ws.close();
  }

  #receive(text: string): void {
    const message = JSON.parse(text) as CdpMessage;
    if (message.id === undefined) {
      if (message.method !== undefined) this.#listeners.get(message.method)?.(message.params);
      return;
    }
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    if (message.error !== undefined) pending.reject(new Error(message.error.message));
    else pending.resolve(message.result);
  }
}

// ---------------------------------------------------------------------------------------------
// Source maps: V8 in Deno reports positions in the JavaScript that Deno made of our TypeScript

interface ScriptParsed {
  readonly url: string;
  readonly sourceMapURL?: string;
}

interface SourceMap {
  readonly mappings: string;
}

/** Per generated line: [generated column, source line] pairs, by column. */
type LineTable = readonly (readonly [number, number])[][];

/**
 * Our modules' source maps (Deno inlines them as data: URLs), collected from the scriptParsed
 * events Debugger.enable replays. The debugger is switched off again before anything is measured.
 */
async function sourceMaps(session: Cdp): Promise<Map<string, LineTable>> {
  const maps = new Map<string, LineTable>();
  session.on<ScriptParsed>("Debugger.scriptParsed", (script) => {
    const data = script.sourceMapURL ?? "";
    if (relativeUrl(script.url) === undefined || !data.startsWith("data:")) return;
    const comma = data.indexOf(",");
    const text = data.slice(0, comma).endsWith(";base64")
      ? Buffer.from(data.slice(comma + 1), "base64").toString("utf8")
      : decodeURIComponent(data.slice(comma + 1));
    maps.set(script.url, decodeMappings((JSON.parse(text) as SourceMap).mappings));
  });
  await session.send("Debugger.enable");
  await session.send("Debugger.disable");
  return maps;
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Source map v3 "mappings" (base64 VLQ) → per generated line, [column, source line] pairs. */
function decodeMappings(mappings: string): LineTable {
  const lines: [number, number][][] = [];
  let sourceLine = 0;
  for (const groups of mappings.split(";")) {
    const line: [number, number][] = [];
    let column = 0; // the generated column restarts on every line; the source fields do not
    for (const segment of groups.split(",")) {
      if (segment === "") continue;
      const fields = vlq(segment);
      column += fields[0];
      if (fields.length >= 4) {
        sourceLine += fields[2];
        line.push([column, sourceLine]);
      }
    }
    lines.push(line);
  }
  return lines;
}

function vlq(segment: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = BASE64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = shift = 0;
  }
  return out;
}

/** The source line of a generated position: the last mapping at or before it on its line. */
function sourceLine(table: LineTable, line: number, column: number): number | undefined {
  const segments = table[line] ?? [];
  let found: number | undefined;
  for (const [col, src] of segments) {
    if (col > column) break;
    found = src;
  }
  return found ?? segments[0]?.[1];
}

/** The profile with our frames' lines moved to the TypeScript sources (the column dropped). */
function toSources(profile: CpuProfile, maps: Map<string, LineTable>): CpuProfile {
  const nodes = profile.nodes.map((node) => {
    const cf = node.callFrame;
    const table = maps.get(cf.url);
    const line = table === undefined
      ? undefined
      : sourceLine(table, cf.lineNumber, cf.columnNumber);
    if (line === undefined) return node;
    return { ...node, callFrame: { ...cf, lineNumber: line, columnNumber: -1 } };
  });
  return { ...profile, nodes };
}

// ---------------------------------------------------------------------------------------------
// Load and measurement

interface WrkResult {
  readonly requests: number;
  readonly duration_us: number;
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly status: number;
  readonly timeout: number;
}

async function wrk(seconds: number, cookie: string | undefined): Promise<WrkResult> {
  const argv = ["wrk", "-t1", "-c64", `-d${seconds}s`, "--timeout", "2s"];
  argv.push("-s", path.join(ROOT, "bench/wrk/report.lua"), TARGET);
  const full = LOAD_CPU === undefined ? argv : ["taskset", "-c", LOAD_CPU, ...argv];
  const r = await runAsync(full, {
    timeoutMs: (seconds + 20) * 1000,
    env: { BENCH_COOKIE: cookie ?? "" },
  });
  if (r.code !== 0) throw new Error(`wrk: exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
  const line = r.stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (line === undefined) throw new Error(`wrk printed no result: ${r.stdout.slice(-300)}`);
  const w = JSON.parse(line.slice("BENCH_JSON ".length)) as WrkResult;
  const errors = w.connect + w.read + w.write + w.status + w.timeout;
  // Errors would make µs/request meaningless: the profile would show error paths.
  check(errors === 0, `wrk saw errors: ${line}`);
  return w;
}

/**
 * One request without a cookie: checks the gateway answers like the bench expects and returns
 * the sticky cookie it set ("route=…"), which the "present" case sends with every request.
 */
async function firstCookie(): Promise<string> {
  const response = await fetch(TARGET);
  const body = await response.text();
  check(response.status === 200 && body === BODY, `GET ${TARGET}: ${response.status} ${body}`);
  const set = response.headers.getSetCookie().find((c) => c.startsWith("route="));
  check(set !== undefined, `GET ${TARGET}: no Set-Cookie route=`);
  return set.split(";")[0];
}

/** On a shared machine: waits (≤ 15 s) until both cores are mostly idle; returns the busiest %. */
async function awaitQuiet(): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const a = cpuTimes();
    await sleep(500);
    const b = cpuTimes();
    const busiest = Math.max(...a.map((_, i) => busyPct(a, b, String(i)) ?? 0));
    if (busiest < 15 || Date.now() > deadline) return busiest;
  }
}

interface Measured {
  readonly rps: number;
  readonly requests: number;
  readonly seconds: number;
  /** Gateway utime + stime over the measured run, per request (all threads). */
  readonly cpuUsPerRequest: number;
  /** The same for the main thread alone: the one that runs JavaScript, the one sampled. */
  readonly mainCpuUsPerRequest: number;
  /** Gateway CPU over the measured run, % of one core. */
  readonly cpuPct: number;
  /** Busiest core just before the run (someone else's load shows here). */
  readonly busyBefore: number;
  /** The gateway's core and the load core, % busy over the measured run (anyone's work). */
  readonly proxyCoreBusy?: number;
  readonly loadCoreBusy?: number;
  readonly warmupRps?: number;
  /** A stream load's transfer (its "requests" are MiB moved). */
  readonly stream?: StreamFacts;
}

/** The measured run in a profile's clock. */
interface Window {
  readonly from: number;
  readonly to: number;
}

interface Profiled extends Measured {
  readonly profile: CpuProfile;
  /** Bun: the measured window (its profile covers the process); undefined = every sample. */
  readonly window?: Window;
}

/**
 * Bun: 100 µs. Deno: 1,000 µs (V8's default), because at 100 µs V8's sampler cuts Deno's
 * requests/s to about a third and leaves its core half idle: that profile would not be of the
 * bench's load. At 1,000 µs the profiled run is as fast as an unprofiled one.
 */
function intervalFor(runtime: Runtime): number {
  return opt.interval ?? (runtime === "deno" ? 1000 : 100);
}

/**
 * Gateway argv; `profiling` adds `--cpu-prof` into `dir` (Bun) or `--inspect` (Deno). A stream
 * load runs Deno as bench/run.ts does, with V8's semi-space at 4 MiB (the wrk load as it was).
 */
function gatewayArgv(
  runtime: Runtime,
  config: string,
  profiling: boolean,
  dir: string,
  load: Load,
): string[] {
  const main = path.join(ROOT, "src/main.ts");
  if (runtime === "bun") {
    const prof = profiling
      ? ["--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${intervalFor("bun")}`]
      : [];
    return [BUN, ...prof, main, "--config", config];
  }
  const inspect = profiling ? [`--inspect=${P.host}:${INSPECT_PORT}`] : [];
  const v8 = load === "wrk" ? [] : ["--v8-flags=--max-semi-space-size=4"];
  return [DENO, "run", "-A", ...v8, ...inspect, main, "--config", config];
}

/**
 * As bench/run.ts configures the gateway: `workers = 1` and the "main" scenario for wrk; for a
 * stream load the "stream" scenario (a route to the sink) and no cap on the upload's size.
 */
function writeConfig(load: Load, scenario: Options["scenario"]): string {
  const file = path.join(TMP, "gateway.toml");
  const toml = load === "wrk"
    ? gatewayToml(scenario, P, "workers = 1")
    : gatewayToml("stream", P, "workers = 1\nclient_max_body_size = 0");
  writeFileSync(file, toml);
  return file;
}

async function startGateway(
  runtime: Runtime,
  profiling: boolean,
  dir: string,
  load: Load = "wrk",
): Promise<Proc> {
  const argv = gatewayArgv(runtime, writeConfig(load, opt.scenario), profiling, dir, load);
  const proc = start(`gateway-${runtime}`, argv, path.join(dir, "gateway.log"), {
    cpu: PROXY_CPU,
    cwd: ROOT,
  });
  await waitPort(proc, P.host, P.proxy);
  return proc;
}

const CLK_TCK = Number(run(["getconf", "CLK_TCK"]).trim()) || 100;

/** utime + stime (s) of a process's main thread (its task with the process's own id). */
function mainThreadSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
}

/** Warm-up (not measured), then the measured run; `around` brackets only the measured run. */
async function measure(
  proc: Proc,
  cookie: string | undefined,
  around: { before(): Promise<void>; after(): Promise<void> },
): Promise<Measured> {
  const busyBefore = await awaitQuiet();
  const warm = opt.warmup > 0 ? await wrk(opt.warmup, cookie) : undefined;
  await around.before();
  const cpu0 = cpuSeconds(proc.pid);
  const main0 = mainThreadSeconds(proc.pid);
  const cores0 = cpuTimes();
  const w = await wrk(opt.duration, cookie);
  const cores1 = cpuTimes();
  const cpu = cpuSeconds(proc.pid) - cpu0;
  const main = mainThreadSeconds(proc.pid) - main0;
  await around.after();
  check(!proc.exited, `${proc.name} exited during the run: ${tail(proc.log)}`);
  const seconds = w.duration_us / 1e6;
  return {
    rps: w.requests / seconds,
    requests: w.requests,
    seconds,
    cpuUsPerRequest: (cpu * 1e6) / w.requests,
    mainCpuUsPerRequest: (main * 1e6) / w.requests,
    cpuPct: (100 * cpu) / seconds,
    busyBefore,
    proxyCoreBusy: busyPct(cores0, cores1, PROXY_CPU),
    loadCoreBusy: busyPct(cores0, cores1, LOAD_CPU),
    warmupRps: warm === undefined ? undefined : warm.requests / (warm.duration_us / 1e6),
  };
}

const NOTHING: Around = { before: async () => {}, after: async () => {} };

/** Brackets the measured part of a run (the profiler started and stopped, or Bun's window). */
interface Around {
  before(): Promise<void>;
  after(): Promise<void>;
}

/** What a case does with the gateway it started: a load, measured. */
interface Work {
  /** Once the gateway listens, before a profiler attaches (e.g. the request that gets a cookie). */
  prepare(): Promise<void>;
  /** The measured load; `around` brackets exactly what is measured. */
  run(proc: Proc, around: Around): Promise<Measured>;
}

/** wrk's load, with or without the sticky cookie. */
function wrkWork(cookie: CookieCase): Work {
  let sent: string | undefined;
  return {
    prepare: async () => void (sent = cookie === "present" ? await firstCookie() : undefined),
    run: (proc, around) => measure(proc, sent, around),
  };
}

async function profileDeno(work: Work, dir: string, load: Load): Promise<Profiled> {
  const proc = await startGateway("deno", true, dir, load);
  let cdp: Cdp | undefined;
  try {
    await work.prepare();
    cdp = await Cdp.connect(P.host, INSPECT_PORT);
    const session = cdp;
    const maps = await sourceMaps(session);
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: intervalFor("deno") });
    let profile: CpuProfile | undefined;
    const m = await work.run(proc, {
      before: () => session.send("Profiler.start"),
      after: async () => {
        profile = (await session.send<{ profile: CpuProfile }>("Profiler.stop")).profile;
      },
    });
    check(profile !== undefined, "Profiler.stop returned no profile");
    return { ...m, profile: toSources(profile, maps) };
  } finally {
    cdp?.close();
    await stop(proc);
  }
}

async function profileBun(work: Work, dir: string, load: Load): Promise<Profiled> {
  const proc = await startGateway("bun", true, dir, load);
  const window = { from: 0, to: 0 };
  let m: Measured;
  try {
    await work.prepare();
    m = await work.run(proc, {
      before: async () => void (window.from = nowUs()),
      after: async () => void (window.to = nowUs()),
    });
  } finally {
    await stop(proc); // Bun writes the profile as the gateway exits (SIGTERM: a clean exit)
  }
  return { ...m, profile: await bunProfile(dir), window };
}

/** The .cpuprofile `bun --cpu-prof` wrote into `dir` (waits ≤ 5 s for it). */
async function bunProfile(dir: string): Promise<CpuProfile> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (file !== undefined) {
      return JSON.parse(readFileSync(path.join(dir, file), "utf8")) as CpuProfile;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `bun --cpu-prof wrote no .cpuprofile in ${dir}: ${tail(path.join(dir, "gateway.log"))}`,
      );
    }
    await sleep(100);
  }
}

/** The same case without any profiler, for the profiler's own cost. */
async function unprofiled(
  runtime: Runtime,
  work: Work,
  dir: string,
  load: Load,
): Promise<Measured> {
  const proc = await startGateway(runtime, false, dir, load);
  try {
    await work.prepare();
    return await work.run(proc, NOTHING);
  } finally {
    await stop(proc);
  }
}

// ---------------------------------------------------------------------------------------------
// Stream loads: one large transfer, as bench/run.ts's streaming rows

/** The file nginx serves at /big and curl uploads: random bytes with a known CRC-32. */
interface DataFile {
  readonly file: string;
  readonly bytes: number;
  readonly crc32: number;
}

const crc32 = (zlib as unknown as { crc32(data: Uint8Array, value?: number): number }).crc32;

/** Writes TMP/big (`mib` MiB of random bytes), as bench/run.ts's makeDataFile does. */
function makeDataFile(mib: number): DataFile {
  const free = Number(run(["df", "-Pk", TMP]).trim().split("\n")[1].split(/\s+/)[3]) * 1024;
  check(free > mib * (1 << 20) + (2 << 30), `not enough space in ${TMP} for ${mib} MiB (+2 GiB)`);
  chmodSync(TMP, 0o755); // nginx's worker (nobody, when run as root) reads the file from here
  const file = path.join(TMP, "big");
  const block = randomBytes(4 << 20);
  const fd = openSync(file, "w", 0o644);
  let crc = 0;
  const bytes = mib * (1 << 20);
  for (let written = 0; written < bytes; written += block.length) {
    const chunk = block.subarray(0, Math.min(block.length, bytes - written));
    writeSync(fd, chunk);
    crc = crc32(chunk, crc);
  }
  closeSync(fd);
  return { file, bytes, crc32: crc };
}

/** What the client (download) or the sink (upload) got, and the client's transfer time. */
interface Transfer {
  readonly bytes: number;
  readonly crc32: number;
  /** The transfer's own time on the client's side, s (what the bench's MiB/s divide by). */
  readonly seconds: number;
}

/**
 * One transfer through the proxy on P.proxy with the bench's clients on the load core: the
 * download client (Bun `fetch`) or `curl -T` to the sink. Throws unless every byte arrived.
 */
async function transfer(direction: Direction, data: DataFile): Promise<Transfer> {
  const maxTime = Math.max(60, Math.ceil(data.bytes / (8 << 20))); // ≥ 8 MiB/s or fail
  const load = LOAD_CPU === undefined ? [] : ["taskset", "-c", LOAD_CPU];
  const timeoutMs = (maxTime + 10) * 1000;
  let answer: Transfer;
  if (direction === "download") {
    const client = path.join(ROOT, "bench/upstreams/download.ts");
    const url = `http://${P.host}:${P.proxy}/big`;
    const r = await runAsync([...load, BUN, client, url], { timeoutMs });
    check(r.code === 0, `download failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    const got = JSON.parse(r.stdout) as Transfer & { readonly status: number };
    check(got.status === 200, `download: status ${got.status}`);
    answer = got;
  } else {
    const r = await runAsync(
      uploadArgv(load, data.file, `http://${P.host}:${P.proxy}/upload`, maxTime),
      { timeoutMs },
    );
    check(r.code === 0, `upload failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    const lines = r.stdout.trim().split("\n");
    const got = JSON.parse(lines[0]) as { readonly bytes: number; readonly crc32: number };
    answer = { ...got, seconds: Number(lines[1]) };
  }
  check(
    answer.bytes === data.bytes && answer.crc32 === data.crc32,
    `${direction}: ${answer.bytes} bytes with CRC-32 ${answer.crc32}; sent ${data.bytes} ` +
      `with CRC-32 ${data.crc32}`,
  );
  return answer;
}

/** One reading of the gateway's memory during a transfer. */
interface RssSample {
  /** Since the transfer started. */
  readonly ms: number;
  readonly vmRssKiB: number;
  readonly anonKiB: number;
}

/** VmRSS and RssAnon of one process (the gateway runs as one: no tree walk every 50 ms). */
function rssNow(pid: number): { vmRssKiB: number; anonKiB: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1]);
    return { vmRssKiB: field("VmRSS"), anonKiB: field("RssAnon") };
  } catch {
    return { vmRssKiB: NaN, anonKiB: NaN };
  }
}

/** Samples {@link rssNow} every `everyMs` until stopped. */
function sampleRss(pid: number, everyMs: number): { stop(): RssSample[] } {
  const t0 = performance.now();
  const samples: RssSample[] = [];
  const take = () => samples.push({ ms: Math.round(performance.now() - t0), ...rssNow(pid) });
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/** What a stream load adds to {@link Measured} (whose "requests" are then MiB moved). */
interface StreamFacts {
  readonly direction: Direction;
  readonly bytes: number;
  /** From the measured window's start to its end, as the driver saw it (s). */
  readonly wallSeconds: number;
  /** VmHWM of the proxy at the end (the bench's peak RSS). */
  readonly peakRssKiB: number;
  /** VmRSS and RssAnon every 50 ms through the transfer. */
  readonly rss: readonly RssSample[];
}

/** One transfer, measured: "requests" are MiB, so every "per request" figure is per MiB. */
async function measureStream(
  proc: Proc,
  direction: Direction,
  data: DataFile,
  around: Around,
): Promise<Measured> {
  const busyBefore = await awaitQuiet();
  await around.before();
  const t0 = performance.now();
  const cpu0 = cpuSeconds(proc.pid);
  const main0 = mainThreadSeconds(proc.pid);
  const cores0 = cpuTimes();
  const sampler = sampleRss(proc.pid, 50);
  const t = await transfer(direction, data);
  const rss = sampler.stop();
  const cores1 = cpuTimes();
  const cpu = cpuSeconds(proc.pid) - cpu0;
  const main = mainThreadSeconds(proc.pid) - main0;
  const wallSeconds = (performance.now() - t0) / 1000;
  const peak = peakRssKiB(proc.pid);
  await around.after();
  check(!proc.exited, `${proc.name} exited during the transfer: ${tail(proc.log)}`);
  const mib = t.bytes / (1 << 20);
  return {
    rps: mib / t.seconds,
    requests: mib,
    seconds: t.seconds,
    cpuUsPerRequest: (cpu * 1e6) / mib,
    mainCpuUsPerRequest: (main * 1e6) / mib,
    cpuPct: (100 * cpu) / wallSeconds,
    busyBefore,
    proxyCoreBusy: busyPct(cores0, cores1, PROXY_CPU),
    loadCoreBusy: busyPct(cores0, cores1, LOAD_CPU),
    stream: { direction, bytes: t.bytes, wallSeconds, peakRssKiB: peak, rss },
  };
}

/** GET / through the proxy: it answers as the bench expects before anything is measured. */
async function probe(): Promise<void> {
  const response = await fetch(TARGET);
  const body = await response.text();
  check(response.status === 200 && body === BODY, `GET ${TARGET}: ${response.status} ${body}`);
}

function streamWork(direction: Direction, data: DataFile): Work {
  return { prepare: probe, run: (proc, around) => measureStream(proc, direction, data, around) };
}

// System calls (strace)

/** System calls of one kind on one descriptor and thread, while strace watched. */
interface SyscallRow {
  readonly name: string;
  /** The descriptor of a data call (read, write, sendmsg, …), else "". */
  readonly fd: string;
  /** "main": the thread that runs JavaScript (the process's own id); else "other". */
  readonly thread: "main" | "other";
  calls: number;
  /** Calls that failed (EAGAIN mostly). */
  errors: number;
  /** Bytes the data calls moved (their positive results). */
  bytes: number;
  /** Median and largest size of a successful data call. */
  median: number;
  max: number;
}

/** What strace saw of one proxy during part of a transfer. */
interface Syscalls {
  readonly proxy: string;
  readonly direction: Direction;
  /** How long strace was attached, s. */
  readonly seconds: number;
  /** Bytes moved in that time (the larger of the bytes read and written by data calls). */
  readonly moved: number;
  readonly rows: readonly SyscallRow[];
}

const READS = new Set(["read", "readv", "recvfrom", "recvmsg", "recvmmsg", "pread64"]);
const WRITES = new Set(["write", "writev", "sendto", "sendmsg", "sendmmsg", "pwrite64"]);
const DATA_CALLS = new Set([...READS, ...WRITES, "splice", "sendfile", "tee", "vmsplice"]);

/**
 * strace's `-f -o` lines: `TID name(args) = ret`, or split in two around another thread's
 * (`TID name(args <unfinished ...>`, `TID <... name resumed>rest) = ret`).
 */
function parseStrace(text: string, pid: number): SyscallRow[] {
  const rows = new Map<string, SyscallRow>();
  const sizes = new Map<SyscallRow, number[]>();
  const pending = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const [, tid, rest0] = m;
    let rest = rest0;
    if (rest.endsWith("<unfinished ...>")) {
      pending.set(tid, rest);
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed !== null) {
      const head = pending.get(tid);
      pending.delete(tid);
      rest = head === undefined
        ? `${resumed[1]}(?${resumed[2]}`
        : head.replace(/\s*<unfinished \.\.\.>$/, "") + resumed[2];
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    const eq = rest.lastIndexOf(" = ");
    if (call === null || eq < 0) continue;
    const name = call[1];
    const result = rest.slice(eq + 3).trim();
    const data = DATA_CALLS.has(name);
    const fd = data ? call[2].split(",")[0] : "";
    const thread = Number(tid) === pid ? "main" : "other";
    const row = bump(rows, `${name}\u0000${fd}\u0000${thread}`, () => ({
      name,
      fd,
      thread,
      calls: 0,
      errors: 0,
      bytes: 0,
      median: 0,
      max: 0,
    }));
    row.calls++;
    const n = Number(result.split(" ")[0]);
    if (result.startsWith("-1 ")) row.errors++;
    else if (data && n > 0) {
      row.bytes += n;
      bump(sizes, row, () => []).push(n);
    }
  }
  for (const [row, list] of sizes) {
    list.sort((a, b) => a - b);
    row.median = list[Math.floor(list.length / 2)];
    row.max = list[list.length - 1];
  }
  return [...rows.values()];
}

/**
 * `strace -f` on `proc` from 0.5 s into a transfer for up to `seconds` (ptrace slows every call:
 * what counts is calls per byte and bytes per call, not the time).
 */
async function straceTransfer(
  proc: Proc,
  label: string,
  direction: Direction,
  data: DataFile,
  seconds: number,
  dir: string,
): Promise<Syscalls> {
  const out = path.join(dir, `strace-${label}-${direction}.txt`);
  let finished = false;
  const moving = transfer(direction, data).finally(() => void (finished = true));
  await sleep(500);
  check(!finished, `${label}: the transfer ended before strace could attach`);
  const argv = ["strace", "-f", "-qq", "-s", "0", "-o", out, "-p", String(proc.pid)];
  const tracer = start("strace", argv, path.join(dir, "strace.log"));
  const t0 = performance.now();
  await Promise.race([sleep(seconds * 1000), moving]);
  await stop(tracer);
  const traced = (performance.now() - t0) / 1000;
  await moving;
  const rows = parseStrace(readFileSync(out, "utf8"), proc.pid);
  const sum = (set: Set<string>) =>
    rows.filter((r) => set.has(r.name)).reduce((n, r) => n + r.bytes, 0);
  return {
    proxy: label,
    direction,
    seconds: traced,
    moved: Math.max(sum(READS), sum(WRITES)),
    rows,
  };
}

/** `perf report` of one proxy's whole transfer: shares by binary and by symbol. */
interface PerfReport {
  readonly proxy: string;
  readonly direction: Direction;
  /** `perf report --sort dso` and `--sort dso,sym`, as printed (lines ≥ 0.5 %). */
  readonly byDso: string;
  readonly bySymbol: string;
}

/** The transfer with `perf record -e cpu-clock` on `proc` (every thread) from start to end. */
async function perfTransfer(
  proc: Proc,
  label: string,
  direction: Direction,
  data: DataFile,
  dir: string,
): Promise<PerfReport> {
  const out = path.join(dir, `perf-${label}-${direction}.data`);
  const argv = ["perf", "record", "-e", "cpu-clock", "-F", "4000", "-o", out, "-p"];
  const recorder = start("perf", [...argv, String(proc.pid)], path.join(dir, "perf.log"));
  await sleep(300); // attached
  await transfer(direction, data);
  await stop(recorder);
  const report = (sort: string) =>
    run(
      ["perf", "report", "-i", out, "--stdio", "-q", "--sort", sort, "--percent-limit", "0.5"],
      { timeoutMs: 120_000 },
    ).split("\n").filter((l) => l.trim() !== "").slice(0, 40).join("\n");
  return { proxy: label, direction, byDso: report("dso"), bySymbol: report("dso,sym") };
}

/** HAProxy as bench/run.ts runs it for the streaming rows, on the gateway's core. */
async function startHaproxy(dir: string): Promise<Proc> {
  const file = path.join(TMP, "haproxy-stream.cfg");
  writeFileSync(file, haproxyCfg("stream", P));
  const argv = ["haproxy", "-db", "-f", file];
  const proc = start("haproxy", argv, path.join(dir, "haproxy.log"), { cpu: PROXY_CPU });
  await waitPort(proc, P.host, P.proxy);
  return proc;
}

/** The reference row: HAProxy's transfer measured (and straced) here, for the ratios. */
interface Reference {
  readonly measured: Measured;
  readonly syscalls?: Syscalls;
  readonly perf?: PerfReport;
}

/** HAProxy's transfer each way, measured once (and straced with --strace) per run of profile.ts. */
const references = new Map<Direction, Reference>();

async function haproxyReference(direction: Direction, data: DataFile): Promise<Reference> {
  const known = references.get(direction);
  if (known !== undefined) return known;
  const extra = [opt.strace ? "straced" : "", opt.perf ? "under perf" : ""].filter((x) => x);
  const more = extra.length === 0 ? "" : ` (and one each ${extra.join(", ")})`;
  log(`HAProxy, ${direction}: the reference transfer${more}`);
  const dir = mkdtempSync(path.join(TMP, `haproxy-${direction}-`));
  const proc = await startHaproxy(dir);
  try {
    await probe();
    const measured = await measureStream(proc, direction, data, NOTHING);
    const syscalls = opt.strace === undefined
      ? undefined
      : await straceTransfer(proc, "haproxy", direction, data, opt.strace, dir);
    const perf = opt.perf ? await perfTransfer(proc, "haproxy", direction, data, dir) : undefined;
    const reference = { measured, syscalls, perf };
    references.set(direction, reference);
    return reference;
  } finally {
    await stop(proc);
  }
}

/** The gateway's transfer without a profiler, straced (--strace) or under perf (--perf). */
async function gatewayAttached<T>(
  runtime: Runtime,
  direction: Direction,
  attached: (proc: Proc, label: string, dir: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(path.join(TMP, `attached-${runtime}-`));
  const proc = await startGateway(runtime, false, dir, direction);
  try {
    await probe();
    return await attached(proc, `gateway-${runtime}`, dir);
  } finally {
    await stop(proc);
  }
}

// ---------------------------------------------------------------------------------------------
// Summary: self time by category and function, inclusive time for our code

/** What a frame is: our code, a dependency, the runtime's JS, native code, or a pseudo-frame. */
type Kind =
  | "src/"
  | "dependency"
  | "runtime JS"
  | "native"
  | "GC"
  | "(program)"
  | "(idle)"
  | "(root)";

interface Frame {
  /** Name, file and line: one row per function (the column varies within one in JSC). */
  readonly key: string;
  readonly name: string;
  /** file:line (1-based), or the runtime module, or "" for native code. */
  readonly location: string;
  readonly kind: Kind;
  /** The row of the category table: our file, a runtime module, or a native function. */
  readonly category: string;
}

// A Map, not an object: "toString" and the like must not find Object.prototype's.
const PSEUDO = new Map<string, Kind>([
  ["(garbage collector)", "GC"],
  ["(program)", "(program)"],
  ["(idle)", "(idle)"],
  ["(root)", "(root)"],
]);

/**
 * JavaScriptCore has no `(program)` frame: while the JS thread runs none (event loop, Bun's HTTP
 * server, socket I/O, or waiting) its sample is an unnamed native frame right under the root.
 */
const OUTSIDE_JS: Frame = {
  key: "(program)",
  name: "(program)",
  location: "",
  kind: "(program)",
  category: "(program)",
};

/** A script URL relative to the repository when it is in it ("src/proxy/http1.ts"). */
function relativeUrl(url: string): string | undefined {
  let file = url;
  if (url.startsWith("file://")) file = fileURLToPath(url);
  if (!path.isAbsolute(file)) return undefined;
  const rel = path.relative(ROOT, file);
  return rel.startsWith("..") ? undefined : rel;
}

function classify(cf: CallFrame): Frame {
  const name = cf.functionName || "(anonymous)";
  const key = `${cf.functionName}\u0000${cf.url}\u0000${cf.lineNumber}`;
  const pseudo = PSEUDO.get(cf.functionName);
  if (pseudo !== undefined && cf.url === "") {
    return { key, name, location: "", kind: pseudo, category: cf.functionName };
  }
  const line = cf.lineNumber >= 0 ? `:${cf.lineNumber + 1}` : "";
  const rel = relativeUrl(cf.url);
  if (rel !== undefined) {
    const kind = rel.startsWith("src/") ? "src/" : "dependency";
    return { key, name, location: `${rel}${line}`, kind, category: rel };
  }
  // Bun names some built-ins' "url" after their source text: "function toString() { [native code] }".
  if (cf.url === "" || cf.url.includes("[native code]")) {
    return { key, name, location: "", kind: "native", category: `native: ${name}` };
  }
  return { key, name, location: `${cf.url}${line}`, kind: "runtime JS", category: cf.url };
}

const sourceLines = new Map<string, readonly string[]>();

/** The character at a 0-based line and column of a file in the repository ("" if unknown). */
function charAt(url: string, line: number, column: number): string {
  const rel = relativeUrl(url);
  if (rel === undefined || line < 0 || column < 0) return "";
  let lines = sourceLines.get(rel);
  if (lines === undefined) {
    try {
      lines = readFileSync(path.join(ROOT, rel), "utf8").split("\n");
    } catch {
      lines = [];
    }
    sourceLines.set(rel, lines);
  }
  return lines[line]?.[column] ?? "";
}

/**
 * JavaScriptCore shows an async function as two frames: the function, and under it its body,
 * positioned at the body's `{` (and unnamed for a class-field arrow such as Gateway.handle).
 * After an await only the body frame is on the stack, so the body is recognised by position.
 */
function isAsyncBody(child: CallFrame, parent: CallFrame): boolean {
  return child.url !== "" && child.url === parent.url &&
    (child.functionName === parent.functionName || child.functionName === "") &&
    charAt(child.url, child.lineNumber, child.columnNumber) === "{";
}

const position = (cf: CallFrame) =>
  `${cf.functionName}\u0000${cf.url}\u0000${cf.lineNumber}\u0000${cf.columnNumber}`;

/** Every node's frame: async bodies as their function, JSC's outside-JS samples as (program). */
function nodeFrames(
  profile: CpuProfile,
): { frames: Map<number, Frame>; parent: Map<number, number> } {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  // Where a body sits under its function, learn which function the body position belongs to.
  const bodies = new Map<string, Frame>();
  for (const n of profile.nodes) {
    const up = byId.get(parent.get(n.id) ?? -1);
    if (up !== undefined && isAsyncBody(n.callFrame, up)) {
      bodies.set(position(n.callFrame), classify(up));
    }
  }
  const frames = new Map<number, Frame>();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const up = byId.get(parent.get(n.id) ?? -1);
    const outsideJs = up?.functionName === "(root)" && cf.functionName === "" && cf.url === "";
    frames.set(n.id, outsideJs ? OUTSIDE_JS : bodies.get(position(cf)) ?? classify(cf));
  }
  return { frames, parent };
}

interface Tally {
  readonly frame: Frame;
  self: number;
  total: number;
}

interface Summary {
  /** Samples in the measured window. */
  readonly samples: number;
  /** Those not `(idle)`: the base of every share. */
  readonly busy: number;
  /** Mean µs between samples in the window. */
  readonly meanIntervalUs: number;
  readonly byKind: Map<Kind, number>;
  readonly byCategory: Map<string, { kind: Kind; self: number; total: number }>;
  readonly byFunction: Map<string, Tally>;
}

/** The nodes sampled inside the window, with their timestamps' first and last. */
function windowSamples(
  profile: CpuProfile,
  window?: Window,
): { ids: number[]; first: number; last: number } {
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const ids: number[] = [];
  let t = profile.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (window !== undefined && (t < window.from || t > window.to)) continue;
    ids.push(samples[i]);
    first = Math.min(first, t);
    last = Math.max(last, t);
  }
  return { ids, first, last };
}

function summarise(profile: CpuProfile, window?: Window): Summary {
  const { frames, parent } = nodeFrames(profile);
  // Per node: the distinct functions and categories on its stack (recursion counts once).
  const stacks = new Map<number, { fns: Map<string, Frame>; cats: Map<string, Kind> }>();
  const stackOf = (id: number) => {
    let s = stacks.get(id);
    if (s === undefined) {
      s = { fns: new Map(), cats: new Map() };
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = frames.get(at)!;
        s.fns.set(f.key, f);
        s.cats.set(f.category, f.kind);
      }
      stacks.set(id, s);
    }
    return s;
  };

  const { ids, first, last } = windowSamples(profile, window);
  check(ids.length > 0, "no samples in the measured window (clock mismatch?)");
  const byKind = new Map<Kind, number>();
  const byCategory = new Map<string, { kind: Kind; self: number; total: number }>();
  const byFunction = new Map<string, Tally>();
  for (const id of ids) {
    const f = frames.get(id);
    check(f !== undefined, `sample of unknown node ${id}`);
    byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
    const { fns, cats } = stackOf(id);
    for (const [key, frame] of fns) {
      bump(byFunction, key, () => ({ frame, self: 0, total: 0 })).total++;
    }
    for (const [cat, kind] of cats) {
      bump(byCategory, cat, () => ({ kind, self: 0, total: 0 })).total++;
    }
    byFunction.get(f.key)!.self++;
    byCategory.get(f.category)!.self++;
  }
  return {
    samples: ids.length,
    busy: ids.length - (byKind.get("(idle)") ?? 0),
    meanIntervalUs: ids.length > 1 ? (last - first) / (ids.length - 1) : NaN,
    byKind,
    byCategory,
    byFunction,
  };
}

function bump<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, v = make());
  return v;
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** Functions of ours whose inclusive time is always shown: where a request enters our code. */
const ENTRY_POINTS: readonly { file: string; name: string }[] = [
  { file: "src/runtime/runtime.ts", name: "fetch" }, // Bun.serve's handler
  { file: "src/runtime/runtime.ts", name: "(anonymous)" }, // Deno.serve's handler, an arrow
  { file: "src/proxy/gateway.ts", name: "handle" },
  { file: "src/proxy/http1.ts", name: "send" },
];

const CATEGORY_FLOOR = 0.003; // category rows under 0.3 % of the samples are folded into one

/** What a run saves beside its .cpuprofile (<name>.json): enough to render it again. */
interface Run {
  readonly runtime: Runtime;
  readonly cookie: CookieCase;
  /** Absent in runs before stream loads: wrk. */
  readonly load?: Load;
  /** wrk's config (--scenario); absent in earlier runs: "main". */
  readonly scenario?: Options["scenario"];
  readonly version: string;
  /** "2026-11-21 15:06 UTC" */
  readonly when: string;
  readonly commit: string;
  readonly settings: {
    readonly warmup: number;
    readonly duration: number;
    readonly interval: number;
    /** A stream load's size. */
    readonly streamMiB?: number;
  };
  readonly cpus: { readonly proxy?: string; readonly load?: string };
  readonly measured: Measured & { readonly window?: Window };
  readonly unprofiled?: Measured;
  /** Stream loads: HAProxy's transfer the same way in the same run of profile.ts. */
  readonly reference?: Measured;
  /** Stream loads with --strace: the gateway's system calls, then HAProxy's. */
  readonly syscalls?: readonly Syscalls[];
  /** Stream loads with --perf: the gateway's perf report, then HAProxy's. */
  readonly perf?: readonly PerfReport[];
}

interface Case extends Run {
  readonly summary: Summary;
  readonly rawFile: string;
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "–";
const pct = (part: number, whole: number) => `${fmt((100 * part) / whole, 1)} %`;

/**
 * Samples of the JS thread waiting for I/O, estimated. Neither runtime marks them reliably: V8 in
 * Deno reports `(idle)` for all of Deno's event loop, Rust work included (at 100 % gateway CPU a
 * third of the samples are `(idle)`), and JavaScriptCore has one outside-JS frame, `(program)`.
 * Samples tick on wall time, and with the gateway alone on its core the core idles for
 * 100 % − gateway CPU of it: that share of the samples is taken out of the outside-JS frames,
 * `(idle)` first.
 */
function idleEstimate(c: Case): { idle: number; program: number; total: number } {
  const s = c.summary;
  const wanted = Math.round(s.samples * Math.max(0, 1 - c.measured.cpuPct / 100));
  const idle = Math.min(wanted, s.byKind.get("(idle)") ?? 0);
  const program = Math.min(wanted - idle, s.byKind.get("(program)") ?? 0);
  return { idle, program, total: idle + program };
}

/**
 * The JS thread's CPU µs per request that `samples` (of frames of `kind`) stand for: the
 * samplers tick on wall time on that thread, so its busy samples share out its CPU time.
 * A row of kind `(idle)` or `(program)` is the whole kind, and loses the idle estimate's part.
 */
function cost(c: Case, samples: number, kind?: Kind): number {
  const idle = idleEstimate(c);
  const busy = c.summary.samples - idle.total;
  const taken = kind === "(idle)" ? idle.idle : kind === "(program)" ? idle.program : 0;
  return ((samples - taken) / busy) * c.measured.mainCpuUsPerRequest;
}

/** "share of the JS thread's CPU" and "µs/request" cells for `samples`. */
function costCells(c: Case, samples: number, kind?: Kind): [string, string] {
  const us = cost(c, samples, kind);
  return [pct(us, c.measured.mainCpuUsPerRequest), fmt(us, 2)];
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const align = head.map((_, i) => (i === 0 ? "---" : "--:"));
  return [head, align, ...rows].map((r) => `| ${r.join(" | ")} |`);
}

function throughputRows(c: Case): string[][] {
  const row = (label: string, m: Measured) => [
    label,
    fmt(m.rps),
    fmt(m.cpuUsPerRequest, 1),
    fmt(m.mainCpuUsPerRequest, 1),
    `${fmt(m.cpuPct)} %`,
    m.warmupRps === undefined ? "–" : fmt(m.warmupRps),
    `${fmt(m.busyBefore)} %`,
    // What else ran on the gateway's core: its busy % beyond the gateway's own CPU.
    `${fmt(Math.max(0, (m.proxyCoreBusy ?? NaN) - m.cpuPct))} %`,
    `${fmt(m.loadCoreBusy ?? NaN)} %`,
  ];
  const rows = [row("profiled", c.measured)];
  if (c.unprofiled !== undefined) rows.push(row("not profiled (--compare)", c.unprofiled));
  return rows;
}

const KIND_LABEL: Record<Kind, string> = {
  "src/": "our code (src/)",
  dependency: "dependencies (node_modules/)",
  "runtime JS": "runtime JS (ext:, node:, internal:)",
  native: "native built-ins called from JS",
  GC: "(garbage collector)",
  "(program)": "(program): outside JS",
  "(idle)": "(idle): Deno's event loop, outside JS",
  "(root)": "(root)",
};

/** CPU of the gateway's other threads (inspector, sampler, GC helpers, I/O pools): unsampled. */
function otherThreadsRow(c: Case): string[] {
  const m = c.measured;
  return ["other threads (not sampled)", "", "", fmt(m.cpuUsPerRequest - m.mainCpuUsPerRequest, 2)];
}

function idleRow(c: Case): string[] {
  const idle = idleEstimate(c).total;
  const all = pct(idle, c.summary.samples);
  return ["waiting for I/O (estimate, taken out of the above)", fmt(idle), `(${all} of all)`, "–"];
}

function kindRows(c: Case): string[][] {
  return [...c.summary.byKind.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => [KIND_LABEL[kind], fmt(n), ...costCells(c, n, kind)])
    .concat([idleRow(c), otherThreadsRow(c)]);
}

function categoryRows(c: Case): string[][] {
  const s = c.summary;
  const rows: string[][] = [];
  let foldedUs = 0;
  let foldedCount = 0;
  const mainCpu = c.measured.mainCpuUsPerRequest;
  const sorted = [...s.byCategory.entries()].sort((a, b) => b[1].self - a[1].self);
  for (const [category, v] of sorted) {
    if (v.self === 0) continue;
    // Our files always get a row: "0.1 % in src/x.ts" is an answer too.
    const us = cost(c, v.self, v.kind);
    if (v.kind !== "src/" && us < CATEGORY_FLOOR * mainCpu) {
      // In µs, not samples: an `(idle)` row folded here is mostly the waiting taken out.
      foldedUs += us;
      foldedCount++;
      continue;
    }
    const total = v.kind === "src/" ? costCells(c, v.total)[0] : "";
    rows.push([`\`${category}\``, v.kind, ...costCells(c, v.self, v.kind), total]);
  }
  if (foldedCount > 0) {
    const label = `${foldedCount} more (each < ${fmt(CATEGORY_FLOOR * 100, 1)} %)`;
    rows.push([label, "", pct(foldedUs, mainCpu), fmt(foldedUs, 2), ""]);
  }
  return rows;
}

function functionRow(c: Case, t: Tally, rank?: number): string[] {
  const where = t.frame.location === "" ? "" : `\`${t.frame.location}\``;
  const cells = [`\`${t.frame.name}\``, where, t.frame.kind];
  cells.push(...costCells(c, t.self, t.frame.kind), costCells(c, t.total, t.frame.kind)[0]);
  return rank === undefined ? cells : [String(rank), ...cells];
}

function topFunctions(c: Case, n: number): Tally[] {
  return [...c.summary.byFunction.values()]
    .filter((t) => t.self > 0)
    .sort((a, b) => b.self - a.self)
    .slice(0, n);
}

/** Entry points first, then our other functions by inclusive time. */
function inclusiveRows(c: Case, n: number): string[][] {
  const ours = [...c.summary.byFunction.values()].filter((t) => t.frame.kind === "src/");
  const isEntry = (t: Tally) =>
    ENTRY_POINTS.some((e) => t.frame.category === e.file && t.frame.name === e.name);
  const entries = ours.filter(isEntry).sort((a, b) => b.total - a.total);
  const rest = ours.filter((t) => !isEntry(t)).sort((a, b) => b.total - a.total).slice(0, n);
  return [
    ...entries.map((t) => functionRow(c, t).map((cell, i) => (i === 0 ? `**${cell}**` : cell))),
    ...rest.map((t) => functionRow(c, t)),
  ];
}

function profilerLine(c: Case): string {
  const interval = c.settings.interval;
  return c.runtime === "bun"
    ? `\`bun --cpu-prof --cpu-prof-interval=${interval}\` (JavaScriptCore's sampler; ` +
      "the profile covers the whole process, only samples inside the measured window count)"
    : `V8 through the inspector (\`deno run --inspect\`), ${interval} µs sampling interval, ` +
      (c.measured.stream === undefined
        ? "started after the warm-up and stopped after the measured run"
        : "started just before the transfer and stopped after it");
}

/** What `--scenario` adds to the main config, for the caption. */
function scenarioText(scenario: Run["scenario"]): string {
  if (scenario === "admin") return "; with the admin listener, and so the per-request metrics";
  if (scenario === "log") return "; with the access log, to /dev/null";
  return "";
}

function intro(c: Case): string {
  const m = c.measured;
  const cookie = c.cookie === "present"
    ? "sent with every request (the route= cookie the gateway set on a first one)"
    : "not sent (every request is balanced and gets a Set-Cookie)";
  const window = m.window === undefined
    ? ""
    : `; window ${fmt(m.window.from)}–${fmt(m.window.to)} µs in its clock`;
  return [
    `${c.when} · ${c.commit} · \`make profile\` (bench/profile.ts).`,
    `The gateway on CPU ${c.cpus.proxy ?? "any"} with \`workers = 1\` (the bench's "main"`,
    `config: 3 upstreams, stickiness on${scenarioText(c.scenario)}), wrk -t1 -c64 and one nginx`,
    "worker (16-byte body) on",
    `CPU ${c.cpus.load ?? "any"}. Cookie ${cookie}. ${c.settings.warmup} s warm-up (not`,
    `profiled), ${c.settings.duration} s measured. Profiler: ${profilerLine(c)}.`,
    `Raw profile: \`${path.basename(c.rawFile)}\` (Chrome DevTools, speedscope)${window}.`,
  ].join(" ");
}

function method(c: Case): string {
  const s = c.summary;
  const m = c.measured;
  const u = c.unprofiled;
  const scale = u === undefined
    ? ""
    : ` Unprofiled, the JS thread needs ${fmt(u.mainCpuUsPerRequest, 1)} µs/request: scale by ` +
      `${fmt(u.mainCpuUsPerRequest / m.mainCpuUsPerRequest, 2)} for the bench's cost (assuming ` +
      "the profiler's cost falls evenly).";
  return [
    "CPU µs/request: the gateway's utime + stime (/proc/PID/stat) over the measured run ÷",
    "requests, for the whole process (the profiler's threads included) and for the main thread",
    `alone, the one that runs JavaScript and is sampled. ${fmt(s.samples)} samples in the window`,
    `(mean interval ${fmt(s.meanIntervalUs, 1)} µs). The samples of the thread waiting for I/O`,
    `are estimated (${fmt(idleEstimate(c).total)}: 100 % − gateway CPU of the samples, since the`,
    "gateway's core does nothing else) and taken out of the outside-JS rows, `(idle)` first;",
    `the other samples share out the JS thread's ${fmt(m.mainCpuUsPerRequest, 1)} CPU`,
    `µs/request: µs/request = share × ${fmt(m.mainCpuUsPerRequest, 1)} µs. Other threads are not`,
    `sampled: their CPU is one row.${scale}`,
  ].join(" ");
}

/** What the "per" figures count: wrk's requests, or a stream load's MiB. */
function unitOf(c: Run): "request" | "MiB" {
  return c.measured.stream === undefined ? "request" : "MiB";
}

const mib = (kib: number) => `${fmt(kib / 1024)} MiB`;

function median(list: readonly number[]): number {
  const sorted = [...list].filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)];
}

/** A stream run's row: rate, CPU per GiB (µs/MiB ÷ 1,024 = s/GiB… ×1,024 ÷ 10⁶), memory. */
function streamRow(label: string, m: Measured): string[] {
  const st = m.stream;
  const rss = st?.rss ?? [];
  return [
    label,
    fmt(m.rps),
    fmt((m.cpuUsPerRequest * 1024) / 1e6, 2),
    fmt((m.mainCpuUsPerRequest * 1024) / 1e6, 2),
    `${fmt(m.cpuPct)} %`,
    st === undefined ? "–" : mib(st.peakRssKiB),
    mib(median(rss.map((r) => r.vmRssKiB))),
    mib(median(rss.map((r) => r.anonKiB))),
    mib(Math.max(...rss.map((r) => r.anonKiB))),
    `${fmt(m.loadCoreBusy ?? NaN)} %`,
  ];
}

function streamIntro(c: Case): string {
  const m = c.measured;
  const st = m.stream!;
  const how = st.direction === "download"
    ? "the upstream nginx sends the file (sendfile, page cache) and the Bun download client " +
      "(bench/upstreams/download.ts) checks it"
    : "`curl -T` sends it and the Bun sink (bench/upstreams/sink.ts) checks it";
  const window = m.window === undefined
    ? ""
    : `; window ${fmt(m.window.from)}–${fmt(m.window.to)} µs in its clock`;
  return [
    `${c.when} · ${c.commit} · \`make profile PROFILE_ARGS="--load ${st.direction}"\``,
    `(bench/profile.ts). One ${st.direction} of ${fmt(st.bytes / (1 << 20))} MiB of random bytes`,
    `through a fresh gateway on CPU ${c.cpus.proxy ?? "any"} (\`workers = 1\`, the bench's`,
    `"stream" config): ${how} on CPU ${c.cpus.load ?? "any"}, size and CRC-32 exact. No`,
    "warm-up (as in the bench). Profiler:",
    `${profilerLine(c)}. Raw profile: \`${path.basename(c.rawFile)}\`${window}.`,
  ].join(" ");
}

function streamMethod(c: Case): string {
  const m = c.measured;
  const u = c.unprofiled;
  const scale = u === undefined
    ? ""
    : ` Unprofiled, the JS thread needs ${fmt(u.mainCpuUsPerRequest)} µs/MiB: scale by ` +
      `${fmt(u.mainCpuUsPerRequest / m.mainCpuUsPerRequest, 2)} for the bench's cost.`;
  return [
    "MiB/s is over the client's own transfer time, as in the bench. CPU s/GiB: the gateway's",
    "utime + stime (/proc/PID/stat) over the measured window ÷ GiB moved, the whole process and",
    "its main thread (the one that runs JavaScript and is sampled). µs/MiB below: a row's share",
    `of the JS thread's busy samples × its ${fmt(m.mainCpuUsPerRequest)} CPU µs/MiB (µs/MiB ≈`,
    "ms/GiB). Waiting for I/O is estimated as 100 % − gateway CPU of the samples and taken out of",
    `the outside-JS rows, as for wrk (${fmt(c.summary.samples)} samples in the window, mean`,
    `interval ${fmt(c.summary.meanIntervalUs)} µs). RSS: VmHWM at the end (the bench's peak RSS);`,
    "VmRSS and RssAnon every 50 ms of the transfer." + scale,
    c.runtime === "bun"
      ? "On Bun the samples are far apart when the thread is outside JavaScript: JavaScriptCore " +
        "records no sample for Bun's event loop (its recv, the copy of each chunk into a new " +
        "array, epoll), so the shares here are of the time in JavaScript and the built-ins it " +
        "calls, and µs/MiB overstate them by the event loop's part; the perf section splits the " +
        "whole process."
      : "",
  ].join(" ");
}

/** One trace's rows: data calls per descriptor first, then the other calls, by count. */
function syscallRows(t: Syscalls): string[][] {
  const perGiB = (calls: number) => (calls * (1 << 30)) / t.moved;
  const data = t.rows.filter((r) => DATA_CALLS.has(r.name)).sort((a, b) => b.bytes - a.bytes);
  const rest = t.rows.filter((r) => !DATA_CALLS.has(r.name)).sort((a, b) => b.calls - a.calls);
  const folded = rest.slice(8).reduce((n, r) => n + r.calls, 0);
  const rows = [...data, ...rest.slice(0, 8)].map((r) => [
    `\`${r.name}\`${r.fd === "" ? "" : ` fd ${r.fd}`}`,
    r.thread,
    fmt(perGiB(r.calls)),
    r.errors === 0 ? "" : `${fmt(perGiB(r.errors))}`,
    r.bytes === 0 ? "" : fmt(r.bytes / Math.max(1, r.calls - r.errors)),
    r.bytes === 0 ? "" : fmt(r.median),
    r.bytes === 0 ? "" : fmt(r.max),
  ]);
  if (folded > 0) {
    rows.push([`${rest.length - 8} more kinds`, "", fmt(perGiB(folded)), "", "", "", ""]);
  }
  const all = t.rows.reduce((n, r) => n + r.calls, 0);
  rows.push(["**all**", "", `**${fmt(perGiB(all))}**`, "", "", "", ""]);
  return rows;
}

function syscallSection(c: Case): string[] {
  const traces = c.syscalls ?? [];
  if (traces.length === 0) return [];
  const out = [
    "## System calls (strace)",
    "",
    "An unprofiled transfer each, `strace -f -s 0` attached from 0.5 s in. ptrace slows every " +
    "call, so only counts per GiB moved and bytes per call mean anything. Errors: failed calls " +
    "(EAGAIN: nothing to read, or the socket buffer full). main: the thread that runs " +
    "JavaScript (HAProxy's only thread).",
    "",
  ];
  for (const t of traces) {
    out.push(
      `**${t.proxy}**: ${fmt(t.seconds, 1)} s traced, ${fmt(t.moved / (1 << 20))} MiB moved.`,
      "",
      ...table(
        ["call", "thread", "calls/GiB", "errors/GiB", "mean bytes", "median bytes", "max bytes"],
        syscallRows(t),
      ),
      "",
    );
  }
  return out;
}

function perfSection(c: Case): string[] {
  const reports = c.perf ?? [];
  if (reports.length === 0) return [];
  const out = [
    "## perf (`perf record -e cpu-clock -F 4000`, every thread, an unprofiled transfer)",
    "",
    "Kernel (`[kernel.kallsyms]`) against the runtime's binary and JIT code (`[JIT]`, or perf's " +
    "`perf-PID.map`/`[unknown]`); `deno` is stripped, so its native code shows by address only.",
    "",
  ];
  for (const r of reports) {
    out.push(`**${r.proxy}**, by binary:`, "", "```", r.byDso, "```", "");
    out.push(`**${r.proxy}**, by symbol:`, "", "```", r.bySymbol, "```", "");
  }
  return out;
}

function streamMarkdown(c: Case): string {
  const st = c.measured.stream!;
  const top = topFunctions(c, 30).map((t, i) => functionRow(c, t, i + 1));
  const head = [
    "run",
    "MiB/s",
    "CPU s/GiB",
    "of which JS thread",
    "gateway CPU",
    "peak RSS (VmHWM)",
    "VmRSS median",
    "RssAnon median",
    "RssAnon max",
    "load core busy",
  ];
  const rows = [streamRow("profiled", c.measured)];
  if (c.unprofiled !== undefined) rows.push(streamRow("not profiled (--compare)", c.unprofiled));
  if (c.reference !== undefined) rows.push(streamRow("HAProxy, same run", c.reference));
  const fnHead = ["function", "where", "kind", "self", "µs/MiB", "total"];
  const rss = st.rss;
  const step = Math.max(1, Math.ceil(rss.length / 12));
  const curve = rss.filter((_, i) => i % step === 0 || i === rss.length - 1)
    .map((r) => `${fmt(r.ms)} ms ${fmt(r.vmRssKiB / 1024)}/${fmt(r.anonKiB / 1024)}`);
  return [
    `# CPU profile: the gateway on ${c.version}, one ${st.direction} of ${
      fmt(st.bytes / (1 << 20))
    } MiB`,
    "",
    streamIntro(c),
    "",
    ...table(head, rows),
    "",
    streamMethod(c),
    "",
    `VmRSS/RssAnon (MiB) through the transfer: ${curve.join(" · ")}.`,
    "",
    "## By kind (self time)",
    "",
    ...table(["kind", "samples", "share", "µs/MiB"], kindRows(c)),
    "",
    "## Self time by category",
    "",
    "Our files by path (total: samples with the file anywhere on the stack); runtime JS by " +
    "module; native code by function.",
    "",
    ...table(["category", "kind", "self", "µs/MiB", "total"], categoryRows(c)),
    "",
    "## Top 30 functions by self time",
    "",
    ...table(["#", ...fnHead], top),
    "",
    "## Inclusive time of our code",
    "",
    ...table(fnHead, inclusiveRows(c, 20)),
    "",
    ...syscallSection(c),
    ...perfSection(c),
  ].join("\n");
}

function markdown(c: Case): string {
  if (c.measured.stream !== undefined) return streamMarkdown(c);
  const top = topFunctions(c, 30).map((t, i) => functionRow(c, t, i + 1));
  const runHead = [
    "run",
    "req/s",
    "CPU µs/request",
    "of which JS thread",
    "gateway CPU",
    "warm-up req/s",
    "busiest core before",
    "others on the gateway's core",
    "load core busy",
  ];
  const fnHead = ["function", "where", "kind", "self", "µs/request", "total"];
  return [
    `# CPU profile: the gateway on ${c.version}, cookie ${c.cookie}`,
    "",
    intro(c),
    "",
    ...table(runHead, throughputRows(c)),
    "",
    method(c),
    "",
    "## By kind (self time)",
    "",
    ...table(["kind", "samples", "share", "µs/request"], kindRows(c)),
    "",
    "## Self time by category",
    "",
    "Our files by path (total: samples with the file anywhere on the stack, i.e. with what it " +
    "calls); runtime JS by module; native code by function.",
    "",
    ...table(["category", "kind", "self", "µs/request", "total"], categoryRows(c)),
    "",
    "## Top 30 functions by self time",
    "",
    ...table(["#", ...fnHead], top),
    "",
    "## Inclusive time of our code",
    "",
    "Entry points in bold, then our other functions by total. An async function counts only " +
    "while it runs, not while it awaits.",
    "",
    ...table(fnHead, inclusiveRows(c, 20)),
    "",
    "## Reading it",
    "",
    "- `(idle)` (Deno): V8 reports Deno's event loop as idle, its Rust work included (at 100 % " +
    "gateway CPU a third of the samples are `(idle)`): serving HTTP (hyper), polling sockets " +
    "(tokio), completing ops. Waiting is estimated and taken out; the rest is CPU outside " +
    "JavaScript.",
    "- `(program)`: neither JavaScript nor (Deno) the event loop: V8's own work such as compiling " +
    "(Deno); everything outside JavaScript (Bun: its event loop and HTTP server, Zig/C++, with " +
    "their system calls). JavaScriptCore reports no garbage collector frame: GC is in the frame " +
    "that triggered it.",
    "- `native: f`: a built-in called from JavaScript: a Deno op in Rust (`op_write`: the socket " +
    "write and its system call), a Bun built-in in C++/Zig.",
    "- The sampler costs time of its own: compare with an unprofiled run (`--compare`). At a 100 " +
    "µs interval V8 in Deno serves a third of its unprofiled requests/s, hence Deno's default " +
    "of 1,000 µs.",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

function versionOf(runtime: Runtime): string {
  const out = runtime === "bun" ? run([BUN, "--version"]) : run([DENO, "--version"]);
  return runtime === "bun"
    ? `Bun ${out.trim()}`
    : out.split("\n")[0].replace(/^deno /, "Deno ").replace(/ \(.*/, "");
}

function commitLine(): string {
  try {
    const head = run(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT }).trim();
    const dirty = run(["git", "status", "--porcelain", "--", "src"], { cwd: ROOT }).trim() !== "";
    return `commit ${head}${dirty ? " (src/ modified)" : ""}`;
  } catch {
    return "commit ?";
  }
}

/** The bench's upload sink (bench/upstreams/sink.ts on Bun), on the load core. */
async function startSink(): Promise<Proc> {
  const argv = [BUN, path.join(ROOT, "bench/upstreams/sink.ts")];
  const proc = start("sink", argv, path.join(TMP, "sink.log"), {
    cpu: LOAD_CPU,
    cwd: ROOT,
    env: { LISTEN: `${P.host}:${P.sink}` },
  });
  await waitPort(proc, P.host, P.sink);
  return proc;
}

async function startUpstream(): Promise<Proc> {
  const conf = path.join(TMP, "upstream.conf");
  writeFileSync(conf, upstreamNginx(TMP, TMP, P, false));
  const errors = path.join(TMP, "upstream.error.log");
  const argv = ["nginx", "-e", errors, "-p", TMP, "-c", conf, "-g", "daemon off;"];
  const proc = start("upstream-nginx", argv, path.join(TMP, "nginx.log"), { cpu: LOAD_CPU });
  for (const port of P.upstreams) await waitPort(proc, P.host, port);
  return proc;
}

/**
 * One case: the gateway profiled under `load` (wrk with `cookie`, or a transfer of `data`),
 * with `--compare` the same unprofiled; written to bench/results. Returns the .md's path.
 */
async function profileCase(
  runtime: Runtime,
  load: Load,
  cookie: CookieCase,
  data: DataFile | undefined,
): Promise<string> {
  const what = load === "wrk" ? `cookie ${cookie}` : `${load} of ${opt.streamMiB} MiB`;
  const dir = mkdtempSync(path.join(TMP, `${runtime}-${load}-${cookie}-`));
  const work = () => {
    if (load === "wrk") return wrkWork(cookie);
    check(data !== undefined, "no data file for a stream load");
    return streamWork(load, data);
  };
  log(
    load === "wrk"
      ? `${runtime}, ${what}: ${opt.warmup} s warm-up + ${opt.duration} s profiled`
      : `${runtime}, ${what}: profiled (a fresh gateway, no warm-up, as in the bench)`,
  );
  const profiled = runtime === "deno"
    ? await profileDeno(work(), dir, load)
    : await profileBun(work(), dir, load);
  let base: Measured | undefined;
  if (opt.compare) {
    log(`${runtime}, ${what}: the same without the profiler`);
    base = await unprofiled(runtime, work(), mkdtempSync(path.join(TMP, "plain-")), load);
  }
  let reference: Reference | undefined;
  let syscalls: Syscalls | undefined;
  let perf: PerfReport | undefined;
  if (load !== "wrk" && data !== undefined) {
    reference = await haproxyReference(load, data);
    const seconds = opt.strace;
    if (seconds !== undefined) {
      log(`${runtime}, ${what}: strace for ${seconds} s of an unprofiled transfer`);
      syscalls = await gatewayAttached(
        runtime,
        load,
        (proc, label, d) => straceTransfer(proc, label, load, data, seconds, d),
      );
    }
    if (opt.perf) {
      log(`${runtime}, ${what}: perf record through an unprofiled transfer`);
      perf = await gatewayAttached(
        runtime,
        load,
        (proc, label, d) => perfTransfer(proc, label, load, data, d),
      );
    }
  }
  const now = new Date().toISOString();
  const tag = load !== "wrk"
    ? load
    : opt.scenario === "main"
    ? cookie
    : `${opt.scenario}-${cookie}`;
  const name = `profile-${runtime}-${tag}-${now.replace(/[:.]/g, "-").slice(0, 19)}`;
  const { profile, ...measured } = profiled;
  const saved: Run = {
    runtime,
    cookie,
    load,
    ...(load === "wrk" && opt.scenario !== "main" ? { scenario: opt.scenario } : {}),
    version: versionOf(runtime),
    when: `${now.slice(0, 16).replace("T", " ")} UTC`,
    commit: commitLine(),
    settings: {
      warmup: load === "wrk" ? opt.warmup : 0,
      duration: opt.duration,
      interval: intervalFor(runtime),
      streamMiB: load === "wrk" ? undefined : opt.streamMiB,
    },
    cpus: { proxy: PROXY_CPU, load: LOAD_CPU },
    measured,
    unprofiled: base,
    reference: reference?.measured,
    syscalls: syscalls === undefined ? undefined : [syscalls, reference?.syscalls].filter(
      (x): x is Syscalls => x !== undefined,
    ),
    perf: perf === undefined ? undefined : [perf, reference?.perf].filter(
      (x): x is PerfReport => x !== undefined,
    ),
  };
  const base0 = path.join(RESULTS, name);
  writeFileSync(`${base0}.cpuprofile`, JSON.stringify(profile));
  writeFileSync(`${base0}.json`, JSON.stringify(saved, null, 2) + "\n");
  return render(base0, profile);
}

/**
 * Writes <base>.md from <base>.json and the profile; prints the headline and kinds. (Bun's async
 * bodies are recognised in the current sources: re-render before src/ moves on.)
 */
function render(base: string, profile?: CpuProfile): string {
  const saved = JSON.parse(readFileSync(`${base}.json`, "utf8")) as Run;
  const rawFile = `${base}.cpuprofile`;
  const p = profile ?? (JSON.parse(readFileSync(rawFile, "utf8")) as CpuProfile);
  const c: Case = { ...saved, summary: summarise(p, saved.measured.window), rawFile };
  writeFileSync(`${base}.md`, markdown(c));
  const m = c.measured;
  const u = c.unprofiled;
  const without = u === undefined
    ? ""
    : ` (unprofiled: ${fmt(u.rps)} req/s, ${fmt(u.cpuUsPerRequest, 1)} µs)`;
  const unit = unitOf(c);
  const headline = m.stream === undefined
    ? `${c.runtime}/${c.cookie}: ${fmt(m.rps)} req/s, ${fmt(m.cpuUsPerRequest, 1)} CPU ` +
      `µs/request${without}`
    : `${c.runtime}/${m.stream.direction}: ${fmt(m.rps)} MiB/s, ` +
      `${fmt((m.cpuUsPerRequest * 1024) / 1e6, 2)} CPU s/GiB, peak RSS ` +
      `${mib(m.stream.peakRssKiB)}${
        c.reference === undefined ? "" : ` (HAProxy: ${fmt(c.reference.rps)} MiB/s)`
      }`;
  console.log(
    [headline, ...table(["kind", "samples", "share", `µs/${unit}`], kindRows(c))].join("\n"),
  );
  return `${base}.md`;
}

async function main(): Promise<number> {
  if (opt.report !== undefined) {
    const file = render(opt.report.replace(/\.(json|md|cpuprofile)$/, ""));
    log(`wrote ${path.relative(ROOT, file)}`);
    return 0;
  }
  for (const tool of ["wrk", "nginx", "taskset"]) {
    check(which(tool) !== undefined, `${tool} not found (make bench-tools)`);
  }
  for (const port of [P.proxy, INSPECT_PORT, ...P.upstreams, P.sink]) {
    check(!(await portOpen(P.host, port)), `port ${port} is in use (PROFILE_PORT_BASE moves them)`);
  }
  mkdirSync(RESULTS, { recursive: true });
  const streaming = opt.loads.some((l) => l !== "wrk");
  if (streaming && opt.strace !== undefined) {
    check(which("strace") !== undefined, "strace not found (apt-get install strace)");
  }
  if (streaming) check(which("haproxy") !== undefined, "haproxy not found (make bench-tools)");
  if (streaming && opt.perf) check(which("perf") !== undefined, "perf not found (linux-perf)");
  const data = streaming ? makeDataFile(opt.streamMiB) : undefined;
  if (data !== undefined) log(`data file: ${opt.streamMiB} MiB, CRC-32 ${data.crc32.toString(16)}`);
  await startUpstream();
  if (streaming) await startSink();
  const written: string[] = [];
  for (const runtime of opt.runtimes) {
    for (const load of opt.loads) {
      for (const cookie of load === "wrk" ? opt.cookies : ["absent" as const]) {
        const file = await profileCase(runtime, load, cookie, data);
        log(`wrote ${path.relative(ROOT, file)}`);
        written.push(file);
      }
    }
  }
  log(`done:\n${written.map((f) => `  ${path.relative(ROOT, f)}`).join("\n")}`);
  return 0;
}

cleanUpOnSignals(TMP);

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(`profile: ${(error as Error).message}`);
} finally {
  await stopAll();
  rmSync(TMP, { recursive: true, force: true });
}
process.exit(code);
