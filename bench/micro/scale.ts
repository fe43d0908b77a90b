/**
 * Issue 4, "the request cost does not grow with the config", settled in process: the same
 * request through the gateway's code with 3 servers / 1 route (the baseline) against 1,000 live
 * servers, 1,000 servers of which 997 are `down`, and 500 routes, timed in ns per request.
 * End to end (`make bench`) a run spreads ±20-40% on a shared VM, which cannot decide "≤ 5%".
 *
 *   bun bench/micro/scale.ts [--quick] [--trials N] [--ms N] [--json FILE]
 *   deno run -A bench/micro/scale.ts [same options]
 *
 * Two measurements per (config, cookie present/absent) case:
 *
 * - **decision**: what `Gateway.handle` (src/proxy/gateway.ts) decides before it calls the
 *   transport, with the same functions in the same order: matchRoute, findCookie, resolveSticky,
 *   Balancer.pick when not pinned, renderSetCookie when a cookie must be set;
 * - **handle**: the whole `Gateway.handle(request, client)` with a real `Request` (browser
 *   headers) and an in-memory transport that answers at once with nginx's 16-byte response, so
 *   only the gateway's own work is timed.
 *
 * Configs come from the real loader (`parseConfig`) and the same TOML as the end-to-end bench
 * (bench/lib/configs.ts); every config gets the same request (`/svc499/item`). Time is the
 * process's CPU time per request (the wall clock also counts other processes on the core).
 * After a warm-up, each trial times every case once (default: 21 trials of ~60 ms per case),
 * the four configs of one (kind, cookie) group back to back, the order rotated every trial;
 * each ratio to the baseline is taken within one trial, then the median over trials.
 * Wrong results (a pinned request on another server, a cookie-less one not rotating, a missing
 * Set-Cookie) fail the run (exit 1) instead of being timed. Pin it to a core for stable numbers
 * (`taskset -c 1`; bench/run.ts does). Exit status: 0, 1 on a failed check, 2 on bad arguments.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import { gatewayToml, LIVE_AT, ports, requestPath, SCALE_ROUTES } from "../lib/configs.ts";
import {
  MICRO_COOKIES,
  MICRO_SCENARIOS,
  microCaption,
  type MicroCookie,
  type MicroKind,
  type MicroResult,
  type MicroRow,
  type MicroScenario,
  type MicroStat,
  microTable,
} from "./result.ts";
import { parseConfig } from "../../src/config/load.ts";
import { matchRoute } from "../../src/config/routes.ts";
import type { GatewayConfig, Route, Server, Upstream } from "../../src/config/types.ts";
import { findCookie } from "../../src/cookie/read.ts";
import { cookieValue } from "../../src/cookie/value.ts";
import { renderSetCookie } from "../../src/cookie/set_cookie.ts";
import { resolveSticky } from "../../src/sticky/resolve.ts";
import { type Balancer, createBalancers } from "../../src/balancer/balancer.ts";
import { Gateway } from "../../src/proxy/gateway.ts";
import type { ClientInfo, HeaderPair } from "../../src/proxy/headers.ts";
import type { Transport, UpstreamRequest, UpstreamResponse } from "../../src/proxy/transport.ts";
import { toResponse } from "../../src/runtime/shared/answer.ts";

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  readonly quick: boolean;
  readonly trials: number;
  /** Target length of one case in one trial. */
  readonly trialMs: number;
  /** Warm-up over all cases together, before the iteration counts are fixed. */
  readonly warmupMs: number;
  readonly json?: string;
}

const USAGE =
  "usage: bun bench/micro/scale.ts [--quick] [--trials N] [--ms N] [--json FILE]\n       deno run -A bench/micro/scale.ts [same options]";

function parseOptions(argv: readonly string[]): Options {
  const quick = argv.includes("--quick");
  // Many short trials rather than a few long ones: a ratio compares batches closer in time, and
  // the median of 21 shrugs off a GC or another process landing in one of them.
  let trials = quick ? 3 : 21;
  let trialMs = quick ? 2 : 60;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => argv[++i] ?? usage(`${a} needs a value`);
    if (a === "--quick") continue;
    else if (a === "--trials") trials = positiveInteger(a, value());
    else if (a === "--ms") trialMs = positiveInteger(a, value());
    else if (a === "--json") json = value();
    else usage(`unknown argument ${a}`);
  }
  // Long enough for both JITs to reach their top tier on every case (JSC's FTL takes the longest).
  const warmupMs = quick ? 40 : 3000;
  return { quick, trials, trialMs, warmupMs, json };
}

function positiveInteger(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) usage(`${name} must be a positive integer`);
  return n;
}

function usage(message: string): never {
  console.error(`micro: ${message}\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// The request and the configs

/** Failed check: the run stops and exits 1 rather than timing a broken path. */
class CheckError extends Error {}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new CheckError(message);
}

const P = ports(28000);
/** As wrk and browsers send it: the gateway's listen address. */
const HOST = `${P.host}:${P.proxy}`;
const BODY = new TextEncoder().encode("0123456789abcdef");
const CLIENT: ClientInfo = { remoteAddress: "127.0.0.1", protocol: "http" };
/**
 * The one request path, for every config: the 500-route config matches it with its last route
 * (`/svc499/`), the others with `/`. (The end-to-end bench sends `/` to the others; one path
 * here keeps the URL's length out of the comparison, so only the config differs.)
 */
const PATH = requestPath("routes500");

/** A browser's navigation request as the runtime hands it over (names in lower case). */
function browserHeaders(cookie: string | undefined): HeaderPair[] {
  const headers: HeaderPair[] = [
    ["host", HOST],
    ["connection", "keep-alive"],
    [
      "user-agent",
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ],
    [
      "accept",
      "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    ],
    ["accept-encoding", "gzip, deflate, br, zstd"],
    ["accept-language", "en-US,en;q=0.9,de;q=0.8"],
    ["upgrade-insecure-requests", "1"],
    ["sec-fetch-dest", "document"],
    ["sec-fetch-mode", "navigate"],
    ["sec-fetch-site", "none"],
  ];
  if (cookie !== undefined) headers.push(["cookie", cookie]);
  return headers;
}

/** The cookie header of a returning browser: the sticky cookie among others. */
function cookieHeader(value: string): string {
  return `_ga=GA1.1.1234567890.1700000000; route=${value}; theme=dark`;
}

/** What an upstream nginx answers (lower-case names, as src/proxy/http1.ts delivers them). */
const NGINX_HEADERS: HeaderPair[] = [
  ["server", "nginx/1.22.1"],
  ["date", "Mon, 06 Jan 2025 12:00:00 GMT"],
  ["content-type", "text/plain"],
  ["content-length", "16"],
  ["connection", "keep-alive"],
];

/** One config loaded, with what its requests must come out as. */
interface Scene {
  readonly scenario: MicroScenario;
  readonly config: GatewayConfig;
  readonly upstream: Upstream;
  /** The route the request must match. */
  readonly route: Route;
  readonly path: string;
  /** The server the sticky cookie names: the last live one, so that a scan of the list from
   * the front would show. */
  readonly pinned: Server;
  /** Servers a cookie-less request may be balanced to. */
  readonly live: ReadonlySet<Server>;
}

function loadScene(scenario: MicroScenario): Scene {
  const config = parseConfig(gatewayToml(scenario, P, ""), `<${scenario}>`);
  const upstream = config.upstreams.get("app");
  check(upstream !== undefined, `${scenario}: no upstream "app"`);
  const path = PATH;
  const routePath = scenario === "routes500" ? PATH.slice(0, PATH.indexOf("/", 1) + 1) : "/";
  const route = config.routes.list.find((r) => r.path === routePath);
  check(route !== undefined, `${scenario}: no route ${routePath}`);
  const live = upstream.servers.filter((s) => !s.down);
  checkShape(scenario, config, upstream, live);
  const pinned = live[live.length - 1];
  // The cookie value computed here from the address text, not taken on trust from the loader.
  check(
    pinned.cookieValue === cookieValue("md5", pinned.address.text, pinned.index) &&
      upstream.sticky?.serverByValue.get(pinned.cookieValue) === pinned,
    `${scenario}: cookie value of ${pinned.address.text} is not its md5`,
  );
  return { scenario, config, upstream, route, path, pinned, live: new Set(live) };
}

/** The config really is the scenario (1,000 servers, 997 down, 500 routes…). */
function checkShape(
  scenario: MicroScenario,
  config: GatewayConfig,
  upstream: Upstream,
  live: readonly Server[],
): void {
  const servers = scenario === "servers1000" || scenario === "servers1000down" ? 1000 : 3;
  const liveCount = scenario === "servers1000" ? 1000 : 3;
  const routes = scenario === "routes500" ? SCALE_ROUTES : 1;
  check(upstream.servers.length === servers, `${scenario}: ${upstream.servers.length} servers`);
  check(live.length === liveCount, `${scenario}: ${live.length} live servers`);
  check(config.routes.list.length === routes, `${scenario}: ${config.routes.list.length} routes`);
  if (scenario === "servers1000down") {
    check(
      live.every((s, i) => s.index === LIVE_AT[i]),
      `${scenario}: live servers at ${live.map((s) => s.index)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

interface Case {
  readonly kind: MicroKind;
  readonly scenario: MicroScenario;
  readonly cookie: MicroCookie;
  /** Runs `n` requests; returns the time per request. Throws (CheckError) on a wrong result. */
  run(n: number): Promise<Sample>;
}

const label = (c: Case) => `${c.kind} ${c.scenario} cookie ${c.cookie}`;

/** The decision's output, reused: no allocation per request beyond what the gateway makes. */
interface Decision {
  route: Route | undefined;
  server: Server | undefined;
  setCookie: string | undefined;
}

/** The Host header's name part, lower case: gateway.ts's `hostname`, which it does not export. */
function hostname(host: string | null): string {
  if (host === null) return "";
  const end = host.startsWith("[") ? host.indexOf("]") + 1 : host.indexOf(":");
  return (end <= 0 ? host : host.slice(0, end)).toLowerCase();
}

/**
 * Gateway.handle up to the transport call, step for step (keep in sync with
 * src/proxy/gateway.ts): route, sticky decision, pick, and the Set-Cookie it will send.
 */
function decide(
  config: GatewayConfig,
  balancers: ReadonlyMap<Upstream, Balancer>,
  host: string,
  path: string,
  cookie: string | null,
  out: Decision,
): void {
  const route = matchRoute(config.routes, hostname(host), path);
  out.route = route;
  if (route === undefined) return;
  const upstream = route.upstream;
  const balancer = balancers.get(upstream)!;
  const sticky = upstream.sticky;
  const noFallback = route.noFallback || (sticky?.noFallback ?? false);
  const now = Date.now();
  let pinned: Server | undefined;
  if (sticky !== undefined) {
    const decision = resolveSticky(
      sticky,
      findCookie(cookie, sticky.lowerName),
      noFallback,
      balancer,
      now,
    );
    if (decision.kind === "refuse") {
      out.server = undefined;
      return;
    }
    if (decision.kind === "pinned") pinned = decision.server;
  }
  const server = pinned ?? balancer.pick(now, undefined);
  out.server = server;
  const template = sticky !== undefined && server !== pinned ? server?.setCookie : undefined;
  out.setCookie = template && renderSetCookie(template, now);
}

/** The Set-Cookie the module sends for a server (Path=/, session cookie). */
const expectedSetCookie = (server: Server) => `route=${server.cookieValue}; Path=/`;

class DecisionCase implements Case {
  readonly kind = "decision";
  readonly scenario: MicroScenario;
  readonly #scene: Scene;
  readonly #balancers: ReadonlyMap<Upstream, Balancer>;
  readonly #cookie: string | null;
  readonly #out: Decision = { route: undefined, server: undefined, setCookie: undefined };
  #previous: Server | undefined;

  constructor(scene: Scene, readonly cookie: MicroCookie) {
    this.scenario = scene.scenario;
    this.#scene = scene;
    this.#balancers = createBalancers(scene.config);
    this.#cookie = cookie === "present" ? cookieHeader(scene.pinned.cookieValue) : null;
    this.#checkRotation();
  }

  /** One full cycle of picks (equal weights) covers every live server exactly once. */
  #checkRotation(): void {
    const scene = this.#scene;
    const seen = new Set<Server>();
    for (let i = 0; i < scene.live.size; i++) {
      const server = this.#once();
      check(scene.live.has(server), `${label(this)}: picked ${server.address.text}`);
      seen.add(server);
    }
    const expected = this.cookie === "present" ? 1 : scene.live.size;
    check(seen.size === expected, `${label(this)}: ${seen.size} servers in one cycle`);
  }

  /** One decision, checked: the right route; the cookie's server and no Set-Cookie when the
   * cookie is present; otherwise a server other than the last one and its Set-Cookie. */
  #once(): Server {
    const out = this.#out;
    decide(this.#scene.config, this.#balancers, HOST, this.#scene.path, this.#cookie, out);
    const server = out.server;
    check(out.route === this.#scene.route, `${label(this)}: wrong route`);
    check(server !== undefined, `${label(this)}: no server`);
    if (this.cookie === "present") {
      check(server === this.#scene.pinned, `${label(this)}: not on the cookie's server`);
      check(out.setCookie === undefined, `${label(this)}: Set-Cookie although pinned`);
    } else {
      check(server !== this.#previous, `${label(this)}: the same server twice: no rotation`);
      check(out.setCookie === expectedSetCookie(server), `${label(this)}: Set-Cookie wrong`);
    }
    this.#previous = server;
    return server;
  }

  run(n: number): Promise<Sample> {
    const { config, path, route, pinned } = this.#scene;
    const balancers = this.#balancers;
    const cookie = this.#cookie;
    const out = this.#out;
    const present = this.cookie === "present";
    let previous = this.#previous;
    // Cheap pointer checks in the loop (the same for every config); strings are compared below.
    let wrong = 0;
    const clock = startClock();
    for (let i = 0; i < n; i++) {
      decide(config, balancers, HOST, path, cookie, out);
      if (
        out.route !== route ||
        (present ? out.server !== pinned : out.server === previous || out.setCookie === undefined)
      ) wrong++;
      previous = out.server;
    }
    const sample = perOp(clock, n);
    this.#previous = previous;
    check(wrong === 0, `${label(this)}: ${wrong} of ${n} decisions wrong`);
    this.#once(); // the last Set-Cookie, in full
    return Promise.resolve(sample);
  }
}

/**
 * The upstream as a function: a fixed nginx 200 with 16 fresh bytes, answered at once. Checks
 * every call: the cookie's server when pinned, otherwise never the same server twice running.
 */
class FixedTransport implements Transport {
  last: Server | undefined;
  lastRequest: UpstreamRequest | undefined;
  wrong = 0;

  constructor(readonly pinned: Server | undefined) {}

  send(server: Server, request: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.pinned !== undefined ? server !== this.pinned : server === this.last) this.wrong++;
    this.last = server;
    this.lastRequest = request;
    return Promise.resolve({
      status: 200,
      statusText: "OK",
      headers: NGINX_HEADERS,
      body: new Uint8Array(BODY),
    });
  }

  close(): void {}
}

class HandleCase implements Case {
  readonly kind = "handle";
  readonly scenario: MicroScenario;
  readonly #scene: Scene;
  readonly #gateway: Gateway;
  readonly #transport: FixedTransport;
  /** One Request, reused: building it is the server's work, the same for every config, and
   * nothing in handle() consumes it (GET, no body). */
  readonly #request: Request;

  constructor(scene: Scene, readonly cookie: MicroCookie) {
    this.scenario = scene.scenario;
    this.#scene = scene;
    const present = cookie === "present";
    this.#transport = new FixedTransport(present ? scene.pinned : undefined);
    this.#gateway = new Gateway(scene.config, this.#transport);
    const headers = browserHeaders(present ? cookieHeader(scene.pinned.cookieValue) : undefined);
    this.#request = new Request(`http://${HOST}${scene.path}`, { headers });
  }

  /** Before timing: one full cycle, every response checked in full. */
  async prepare(): Promise<this> {
    const seen = new Set<Server>();
    for (let i = 0; i < this.#scene.live.size; i++) seen.add(await this.#once());
    const expected = this.cookie === "present" ? 1 : this.#scene.live.size;
    check(seen.size === expected, `${label(this)}: ${seen.size} servers in one cycle`);
    return this;
  }

  /** One request, checked: status, body, Set-Cookie for the server that answered, the upstream
   * request's target and forwarding headers. */
  async #once(): Promise<Server> {
    const transport = this.#transport;
    const response = toResponse(await this.#gateway.handle(this.#request, CLIENT));
    const server = transport.last;
    check(response.status === 200, `${label(this)}: status ${response.status}`);
    check(server !== undefined && this.#scene.live.has(server), `${label(this)}: server`);
    check(transport.wrong === 0, `${label(this)}: wrong server (pinning or rotation)`);
    check((await response.text()) === "0123456789abcdef", `${label(this)}: body`);
    const setCookie = response.headers.get("set-cookie");
    if (this.cookie === "present") {
      check(setCookie === null, `${label(this)}: Set-Cookie although pinned`);
    } else {
      check(setCookie === expectedSetCookie(server), `${label(this)}: Set-Cookie ${setCookie}`);
    }
    const sent = transport.lastRequest!;
    const header = (name: string) => sent.headers.find((h) => h[0] === name)?.[1];
    check(sent.target === this.#scene.path, `${label(this)}: target ${sent.target}`);
    check(
      header("host") === HOST && header("x-forwarded-for") === "127.0.0.1",
      `${label(this)}: Host / X-Forwarded-For upstream`,
    );
    check(header("connection") === undefined, `${label(this)}: hop-by-hop header forwarded`);
    return server;
  }

  async run(n: number): Promise<Sample> {
    const gateway = this.#gateway;
    const request = this.#request;
    let wrong = 0;
    const clock = startClock();
    for (let i = 0; i < n; i++) {
      const response = toResponse(await gateway.handle(request, CLIENT));
      if (response.status !== 200) wrong++;
    }
    const sample = perOp(clock, n);
    check(wrong === 0, `${label(this)}: ${wrong} of ${n} responses not 200`);
    await this.#once(); // transport.wrong covers every request of the loop too
    return sample;
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/**
 * Time per request. CPU time decides: on a shared machine the wall clock also counts the time
 * another process had the core (measured here: half of it at times), CPU time does not. It is
 * the whole process's (GC and JIT threads included, as they are for the gateway serving), in µs.
 */
interface Sample {
  readonly cpuNs: number;
  readonly wallNs: number;
}

interface Clock {
  readonly cpuUs: number;
  readonly wallMs: number;
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

function startClock(): Clock {
  return { cpuUs: cpuMicros(), wallMs: performance.now() };
}

function perOp(clock: Clock, n: number): Sample {
  const wallNs = ((performance.now() - clock.wallMs) * 1e6) / n;
  return { cpuNs: ((cpuMicros() - clock.cpuUs) * 1e3) / n, wallNs };
}

/** `list` rotated left by `by`: every case takes every position across trials. */
function rotate<T>(list: readonly T[], by: number): T[] {
  return list.map((_, i) => list[(i + by) % list.length]);
}

function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * Runs every case for about `warmupMs` in all (in rotation, batches growing), then fixes each
 * case's iteration count from its last batch so a trial of it takes about `trialMs`.
 */
async function warmUp(cases: readonly Case[], opt: Options): Promise<Map<Case, number>> {
  const rounds = 3;
  const sliceMs = opt.warmupMs / rounds / cases.length;
  const batch = new Map<Case, number>(cases.map((c) => [c, 8]));
  const nsPerOp = new Map<Case, number>();
  for (let round = 0; round < rounds; round++) {
    for (const c of rotate(cases, round)) {
      let n = batch.get(c)!;
      let spentMs = 0;
      while (spentMs < sliceMs) {
        const { cpuNs } = await c.run(n);
        nsPerOp.set(c, cpuNs);
        spentMs += (cpuNs * n) / 1e6;
        if ((cpuNs * n) / 1e6 < sliceMs / 4) n *= 2;
      }
      batch.set(c, n);
    }
  }
  // One count per (kind, cookie) group: the configs compared do the same number of requests.
  const iterations = new Map<Case, number>();
  for (const group of groups(cases)) {
    const ns = median(group.map((c) => nsPerOp.get(c)!));
    const n = Math.max(1, Math.round((opt.trialMs * 1e6) / Math.max(1, ns)));
    for (const c of group) iterations.set(c, n);
  }
  return iterations;
}

/** The cases compared with each other: same kind, same cookie; the baseline first. */
function groups(cases: readonly Case[]): Case[][] {
  return [...Map.groupBy(cases, (c) => `${c.kind} ${c.cookie}`).values()];
}

/**
 * Every case in every trial. A trial runs the four configs of one (kind, cookie) group back to
 * back, so that each ratio to the baseline compares batches a few hundred ms apart (another
 * process on the core changes the cache and GC picture over seconds); the order rotates within
 * the groups and over the groups from trial to trial.
 */
async function measure(
  cases: readonly Case[],
  iterations: ReadonlyMap<Case, number>,
  trials: number,
): Promise<Map<Case, Sample[]>> {
  const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
  for (let trial = 0; trial < trials; trial++) {
    for (const group of rotate(groups(cases), trial)) {
      for (const c of rotate(group, trial)) {
        const n = iterations.get(c)!;
        collectGarbage();
        // Untimed: the first requests after a switch of case pay for the switch (caches, the
        // previous case's garbage), whichever case comes first.
        await c.run(Math.ceil(n / 10));
        samples.get(c)!.push(await c.run(n));
      }
    }
  }
  return samples;
}

/**
 * Bun: a full GC before each timed batch, so no batch pays for another's garbage (without it the
 * first batch after a switch of case ran up to 1.5× slower). Not on Deno even with
 * `--v8-flags=--expose-gc`: there a forced GC made every batch slower and noisier (it resets
 * V8's heap sizing), and the untimed settling batch is enough.
 */
function collectGarbage(): void {
  BUN?.gc(true);
}

const BUN = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun;

function stat(
  samples: readonly Sample[],
  baseline: readonly Sample[],
  iterations: number,
): MicroStat {
  const trialsNs = samples.map((s) => s.cpuNs);
  const ratios = samples.map((s, i) => s.cpuNs / baseline[i].cpuNs);
  return {
    iterations,
    trialsNs,
    medianNs: median(trialsNs),
    minNs: Math.min(...trialsNs),
    maxNs: Math.max(...trialsNs),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    wallMedianNs: median(samples.map((s) => s.wallNs)),
  };
}

/** CPU time over wall time of all timed batches: below 1, other processes had the core too. */
function coreShare(samples: ReadonlyMap<Case, Sample[]>, iterations: ReadonlyMap<Case, number>) {
  let cpu = 0;
  let wall = 0;
  for (const [c, list] of samples) {
    for (const s of list) {
      cpu += s.cpuNs * iterations.get(c)!;
      wall += s.wallNs * iterations.get(c)!;
    }
  }
  return wall > 0 ? cpu / wall : 1;
}

function rows(
  cases: readonly Case[],
  times: ReadonlyMap<Case, Sample[]>,
  iterations: ReadonlyMap<Case, number>,
): MicroRow[] {
  const find = (kind: MicroKind, scenario: MicroScenario, cookie: MicroCookie) =>
    cases.find((c) => c.kind === kind && c.scenario === scenario && c.cookie === cookie)!;
  const one = (kind: MicroKind, scenario: MicroScenario, cookie: MicroCookie) => {
    const c = find(kind, scenario, cookie);
    return stat(times.get(c)!, times.get(find(kind, "main", cookie))!, iterations.get(c)!);
  };
  return MICRO_SCENARIOS.flatMap((scenario) =>
    MICRO_COOKIES.map((cookie) => ({
      scenario,
      cookie,
      decision: one("decision", scenario, cookie),
      handle: one("handle", scenario, cookie),
    }))
  );
}

function runtime(): { runtime: "bun" | "deno"; version: string } {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun !== undefined) return { runtime: "bun", version: versions.bun };
  if (versions.deno !== undefined) return { runtime: "deno", version: versions.deno };
  throw new Error("runs on Bun or Deno");
}

const CHECKS = [
  "configs from parseConfig with the end-to-end bench's TOML: 3 / 1,000 / 1,000 (997 down) servers, 1 / 500 routes",
  "the cookie names the last live server; its value is recomputed as md5 of the address text",
  "the same request path /svc499/item for every config; it matches / (1 route) or /svc499/ (the last of 500 routes)",
  "cookie present: every request on the cookie's server, no Set-Cookie",
  "cookie absent: a cycle of picks covers every live server once, never the same server twice running, Set-Cookie for the chosen server",
  "Gateway.handle: 200, the 16-byte body, X-Forwarded-For / Host upstream, no hop-by-hop header",
];

async function main(): Promise<number> {
  const opt = parseOptions(process.argv.slice(2));
  const rt = runtime();
  const t0 = performance.now();
  const cases: Case[] = [];
  for (const scenario of MICRO_SCENARIOS) {
    const scene = loadScene(scenario);
    for (const cookie of MICRO_COOKIES) {
      cases.push(new DecisionCase(scene, cookie));
      cases.push(await new HandleCase(scene, cookie).prepare());
    }
  }
  const iterations = await warmUp(cases, opt);
  const times = await measure(cases, iterations, opt.trials);
  const result: MicroResult = {
    ...rt,
    quick: opt.quick,
    trials: opt.trials,
    trialMs: opt.trialMs,
    warmupMs: opt.warmupMs,
    coreShare: coreShare(times, iterations),
    fullGc: BUN !== undefined,
    checks: CHECKS,
    rows: rows(cases, times, iterations),
  };
  console.log(`${microCaption(result)}\n`);
  console.log(microTable([result]));
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (opt.json !== undefined) writeFileSync(opt.json, JSON.stringify(result, null, 2) + "\n");
  return 0;
}

try {
  process.exit(await main());
} catch (error) {
  const message = error instanceof CheckError ? `check failed: ${error.message}` : String(error);
  console.error(`micro: ${message}`);
  if (!(error instanceof CheckError)) console.error((error as Error).stack);
  process.exit(1);
}
