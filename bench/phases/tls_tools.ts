/**
 * Tools of the TLS phase (bench/phases/tls.ts): the self-signed certificate both proxies serve,
 * HAProxy's TLS config, the checks over HTTPS with curl (HTTP/1.1 and HTTP/2 by ALPN), and the two
 * load generators: `wrk` over TLS (HTTP/1.1) and `h2load` (HTTP/2), with their results parsed
 * into one shape (requests, failures, latency percentiles).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { BODY, haproxyConfig, type Ports } from "../lib/configs.ts";
import { type HttpReply, parseHttpReply } from "../lib/http_reply.ts";
import { run, runAsync } from "../lib/procs.ts";

/** The certificate files of the phase: PEM certificate and key, and both in one (HAProxy). */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly combined: string;
}

/**
 * Makes a self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost (SAN IP and DNS),
 * valid 30 days, in `dir`. Throws when openssl fails.
 */
export function makeCertificate(dir: string): CertFiles {
  const cert = path.join(dir, "tls-cert.pem");
  const key = path.join(dir, "tls-key.pem");
  const combined = path.join(dir, "tls-haproxy.pem");
  run([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "30",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ], { timeoutMs: 20_000 });
  writeFileSync(combined, readFileSync(cert, "utf8") + readFileSync(key, "utf8"));
  return { cert, key, combined };
}

/** The `[server]` line that turns the gateway's listener into HTTPS (and HTTP/2 by ALPN). */
export function gatewayTlsLine(files: CertFiles): string {
  return `tls = { cert = "${files.cert}", key = "${files.key}" }`;
}

/**
 * HAProxy as in the main table (one thread, round robin, `cookie SRV insert indirect nocache`,
 * the same three upstreams over plain HTTP/1.1) with a TLS listener offering h2 and http/1.1.
 */
export function haproxyTlsCfg(p: Ports, pem: string): string {
  return haproxyConfig({
    p,
    by: "bench/phases/tls.ts",
    servers: p.upstreams,
    bind: `ssl crt ${pem} alpn h2,http/1.1`,
  });
}

/** HTTP/1.1 over TLS (wrk) or HTTP/2 over TLS (h2load). */
export type Protocol = "h1" | "h2";

/** One answer of curl over HTTPS. */
export interface Reply extends HttpReply {
  /** curl's `%{http_version}`: "1.1" or "2". */
  readonly version: string;
}

const VERSION_MARK = "\nBENCH_HTTP_VERSION ";

/** GET `url` with curl -k over HTTP/1.1 or HTTP/2 (ALPN), with extra request headers. */
export async function curlTls(url: string, protocol: Protocol, headers: string[] = []) {
  const args = [
    "curl",
    "-sk",
    "-i",
    "--max-time",
    "5",
    protocol === "h2" ? "--http2" : "--http1.1",
    "-w",
    `${VERSION_MARK}%{http_version}`,
  ];
  for (const h of headers) args.push("-H", h);
  args.push(url);
  const r = await runAsync(args, { timeoutMs: 8000 });
  if (r.code !== 0) throw new Error(`curl ${url}: exit ${r.code} ${r.stderr.trim()}`);
  return parseCurl(r.stdout);
}

function parseCurl(stdout: string): Reply {
  const mark = stdout.lastIndexOf(VERSION_MARK);
  const version = mark < 0 ? "?" : stdout.slice(mark + VERSION_MARK.length).trim();
  return { ...parseHttpReply(mark < 0 ? stdout : stdout.slice(0, mark)), version };
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** One checked request: 200, the 16-byte body, an allowed upstream, the protocol asked for. */
async function one(
  url: string,
  protocol: Protocol,
  allowed: ReadonlySet<number>,
  headers: string[] = [],
): Promise<{ reply: Reply; upstream: number }> {
  const reply = await curlTls(url, protocol, headers);
  const what = `GET ${url} (${protocol})`;
  check(reply.status === 200, `${what}: status ${reply.status} (${reply.body.slice(0, 100)})`);
  check(
    reply.body === BODY,
    `${what}: body ${JSON.stringify(reply.body.slice(0, 60))}, expected ${JSON.stringify(BODY)}`,
  );
  const want = protocol === "h2" ? "2" : "1.1";
  check(reply.version === want, `${what}: curl got HTTP/${reply.version}, not HTTP/${want}`);
  const upstream = Number(reply.header("x-upstream"));
  check(
    allowed.has(upstream),
    `${what}: X-Upstream ${reply.header("x-upstream")} is not one of the upstreams`,
  );
  return { reply, upstream };
}

/** What {@link verifyTls} found: the cookie to send and the server it pins. */
export interface Verified {
  /** `name=value` from the Set-Cookie of a cookie-less request. */
  readonly cookie: string;
  readonly pinned: number;
}

/**
 * Checks a proxy over TLS with one protocol: 200, the exact body, X-Upstream one of the three,
 * the protocol negotiated (curl reports HTTP/2 for h2), a Set-Cookie `cookieName=` on a request
 * without cookie, 6 cookie-less requests on at least two upstreams, and 3 requests with the
 * cookie on the pinned upstream without a new Set-Cookie. Throws with what was wrong.
 */
export async function verifyTls(
  url: string,
  protocol: Protocol,
  cookieName: string,
  upstreams: readonly number[],
): Promise<Verified> {
  const allowed = new Set(upstreams);
  const first = await one(url, protocol, allowed);
  const set = first.reply.all("set-cookie").find((c) => c.startsWith(`${cookieName}=`));
  check(set !== undefined, `${protocol}: no Set-Cookie ${cookieName}= on a request without cookie`);
  const cookie = set.split(";")[0];
  const seen = new Set([first.upstream]);
  for (let i = 1; i < 6; i++) seen.add((await one(url, protocol, allowed)).upstream);
  check(seen.size >= 2, `${protocol}: 6 requests without cookie all went to ${[...seen]}`);
  for (let i = 0; i < 3; i++) {
    await checkPinned(url, protocol, cookie, first.upstream, upstreams);
  }
  return { cookie, pinned: first.upstream };
}

/** One request with `cookie`: served by `pinned`, no new Set-Cookie of the sticky cookie. */
export async function checkPinned(
  url: string,
  protocol: Protocol,
  cookie: string,
  pinned: number,
  upstreams: readonly number[],
): Promise<void> {
  const name = cookie.slice(0, cookie.indexOf("="));
  const { reply, upstream } = await one(url, protocol, new Set(upstreams), [`Cookie: ${cookie}`]);
  check(
    upstream === pinned,
    `${protocol}: with ${cookie} a request went to ${upstream}, not ${pinned}`,
  );
  check(
    !reply.all("set-cookie").some((c) => c.startsWith(`${name}=`)),
    `${protocol}: Set-Cookie sent although ${cookie} is valid`,
  );
}

/** A cookie-less request after the load: still 200 with the body from one of the upstreams. */
export async function checkServing(
  url: string,
  protocol: Protocol,
  upstreams: readonly number[],
): Promise<void> {
  await one(url, protocol, new Set(upstreams));
}

/** One load run, whichever client ran it. */
export interface LoadResult {
  /** Completed requests in the measured time. */
  readonly requests: number;
  /** Measured seconds. */
  readonly seconds: number;
  readonly rps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** Non-2xx answers and errored/failed/timed-out requests, by kind (all 0 on success). */
  readonly errors: Record<string, number>;
  /** h2load only: "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519 h2". */
  readonly tls?: string;
  /** h2load only: why the result comes from its per-request log alone. */
  readonly fromLog?: string;
}

/** How a client runs: the load CPU (taskset), 64 connections. */
export interface LoadOptions {
  readonly url: string;
  /** Measured seconds. */
  readonly seconds: number;
  /** h2load only: warm-up seconds on the same connections before the measured ones. */
  readonly warmup: number;
  /** `name=value`, sent as a Cookie header with every request; undefined: none. */
  readonly cookie?: string;
  readonly cpu?: string;
  /** h2load's per-request log (removed after reading). */
  readonly logFile: string;
  /** bench/wrk/report.lua. */
  readonly wrkScript: string;
  /** Called when the measured time starts and when it ends (the proxy's CPU is read there). */
  readonly onStart?: () => void;
  readonly onEnd?: () => void;
}

const pinned = (cpu: string | undefined, argv: string[]) =>
  cpu === undefined ? argv : ["taskset", "-c", cpu, ...argv];

/**
 * `wrk -t1 -c64 --latency` over TLS (HTTP/1.1 keep-alive) with bench/wrk/report.lua; the
 * measured time is the whole run (connections included), as in the main table.
 */
export async function wrkTls(o: LoadOptions): Promise<LoadResult> {
  const argv = [
    "wrk",
    "-t1",
    "-c64",
    `-d${o.seconds}s`,
    "--latency",
    "--timeout",
    "2s",
    "-s",
    o.wrkScript,
    o.url,
  ];
  o.onStart?.();
  const r = await runAsync(pinned(o.cpu, argv), {
    timeoutMs: (o.seconds + 20) * 1000,
    env: { BENCH_COOKIE: o.cookie ?? "" },
  });
  o.onEnd?.();
  if (r.code !== 0) throw new Error(`wrk: exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
  const line = r.stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (line === undefined) throw new Error(`wrk printed no result: ${r.stdout.slice(-300)}`);
  const w = JSON.parse(line.slice("BENCH_JSON ".length)) as Record<string, number>;
  const seconds = w.duration_us / 1e6;
  return {
    requests: w.requests,
    seconds,
    rps: w.requests / seconds,
    p50Us: w.p50_us,
    p99Us: w.p99_us,
    maxUs: w.max_us,
    errors: {
      status: w.status,
      connect: w.connect,
      read: w.read,
      write: w.write,
      timeout: w.timeout,
    },
  };
}

const MAIN_STARTED = "Main benchmark duration is started";
const MAIN_OVER = "Main benchmark duration is over";

/** Requests of {@link h2loadWarm}: 100 per connection. */
export const H2_WARM_REQUESTS = 6400;

/**
 * A warm-up by request count before the timed run: `h2load -c 64 -m 10 -n 6400` ends when every
 * request is answered, whenever its connections finish their handshakes (a timed run may not:
 * h2load 1.52 does not stop a client whose handshake completes after the end of the run; a cold
 * Bun gateway's 64 first handshakes took seconds here). Throws when a request failed.
 */
export async function h2loadWarm(o: LoadOptions): Promise<void> {
  // A gentle start first (4 connections, one stream each): a cold gateway given 640 streams at
  // once on a busy machine could take seconds to connect to its upstreams (connect_timeout).
  const gentle = ["h2load", "-c", "4", "-m", "1", "-t", "1", "-n", "400"];
  if (o.cookie !== undefined) gentle.push("-H", `cookie: ${o.cookie}`);
  await runAsync(pinned(o.cpu, [...gentle, o.url]), { timeoutMs: 60_000 });
  const argv = ["h2load", "-c", "64", "-m", "10", "-t", "1", "-n", String(H2_WARM_REQUESTS)];
  if (o.cookie !== undefined) argv.push("-H", `cookie: ${o.cookie}`);
  argv.push(o.url);
  const r = await runAsync(pinned(o.cpu, argv), { timeoutMs: 60_000 });
  const done = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(r.stdout);
  const ok2xx = / (\d+) 2xx/.exec(r.stdout);
  if (
    r.code !== 0 || done === null || Number(done[1]) !== H2_WARM_REQUESTS ||
    Number(ok2xx?.[1]) !== H2_WARM_REQUESTS
  ) {
    throw new Error(
      `h2load warm-up (${H2_WARM_REQUESTS} requests): exit ${r.code}, ${
        done === null ? "no summary" : `${done[1]} succeeded, ${ok2xx?.[1] ?? "?"} 2xx`
      }: ${summaryLines(r.stdout) || (r.stderr || r.stdout).trim().slice(-300)}`,
    );
  }
}

/** h2load's "requests:" and "status codes:" lines, joined (for an error message). */
function summaryLines(stdout: string): string {
  return stdout.split("\n").filter((l) => /^(requests|status codes):/.test(l)).join("; ");
}

/** Seconds h2load gets to exit after its measured time before it is stopped (see below). */
const H2LOAD_EXIT_S = 3;

/**
 * `h2load -c 64 -m 10 -t 1 --warm-up-time=<w> -D <s>` (HTTP/2 by ALPN, 10 streams per
 * connection): the warm-up runs on the connections the measurement then uses, so every TLS
 * handshake is done before the measured time starts (see {@link h2loadWarm}). req/s and counts
 * from its summary, p50/p99 from its per-request log (`--log-file`: every request that ended in
 * the measured time, with its status, -1 for a failed stream); onStart/onEnd at its "Main
 * benchmark duration" lines (line-buffered by stdbuf).
 *
 * h2load 1.52 does not always exit after the measured time against the Bun gateway: a few of
 * its connections go on requesting after the stop (still busy 20 s later; HAProxy and the Deno
 * gateway never showed it). It is then stopped {@link H2LOAD_EXIT_S} s after the measured time
 * and the result comes from its log alone (`fromLog`): every request that ended in the measured
 * time is there with its status (or -1 for a failed stream); what the log cannot show is a
 * stream abandoned with a lost connection, which h2load's summary would have counted as failed.
 */
export async function h2loadTls(o: LoadOptions): Promise<LoadResult> {
  const argv = ["stdbuf", "-oL", "h2load", "-c", "64", "-m", "10", "-t", "1"];
  argv.push("-D", String(o.seconds), `--warm-up-time=${o.warmup}`);
  if (o.cookie !== undefined) argv.push("-H", `cookie: ${o.cookie}`);
  argv.push(`--log-file=${o.logFile}`, o.url);
  try {
    const r = await spawnWatching(
      pinned(o.cpu, argv),
      (o.warmup + o.seconds + 15) * 1000,
      { [MAIN_STARTED]: () => o.onStart?.(), [MAIN_OVER]: () => o.onEnd?.() },
      { mark: MAIN_OVER, ms: H2LOAD_EXIT_S * 1000 },
    );
    if (r.stoppedAfter) {
      const { tls } = negotiation(r.stdout);
      const log = readH2Log(o.logFile);
      return {
        ...log,
        rps: log.requests / o.seconds,
        seconds: o.seconds,
        tls,
        errors: {},
        fromLog: `h2load did not exit ${H2LOAD_EXIT_S} s after its measured time (stopped; ` +
          `counts from its per-request log)`,
      };
    }
    if (r.code !== 0) {
      throw new Error(`h2load: ${r.why}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
    }
    const summary = parseH2load(r.stdout);
    const log = readH2Log(o.logFile);
    if (log.requests !== summary.requests) {
      throw new Error(`h2load counted ${summary.requests} requests, its log ${log.requests}`);
    }
    return { ...summary, ...log, seconds: o.seconds };
  } finally {
    rmSync(o.logFile, { force: true });
  }
}

/**
 * Runs `argv`, calling `marks[text]` once when a stdout line starts with `text`; SIGKILL after
 * `timeoutMs` in all, or `after.ms` after the line `after.mark` (then `stoppedAfter`).
 */
function spawnWatching(
  argv: string[],
  timeoutMs: number,
  marks: Record<string, () => void>,
  after: { mark: string; ms: number },
): Promise<
  { code: number | null; why: string; stdout: string; stderr: string; stoppedAfter: boolean }
> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let seen = 0;
    let why = "";
    let stoppedAfter = false;
    let afterTimer: ReturnType<typeof setTimeout> | undefined;
    const pending = new Map(Object.entries(marks));
    const onLine = (line: string) => {
      for (const [text, hook] of pending) {
        if (!line.startsWith(text)) continue;
        pending.delete(text);
        hook();
      }
      if (line.startsWith(after.mark) && afterTimer === undefined) {
        afterTimer = setTimeout(() => {
          stoppedAfter = true;
          child.kill("SIGKILL");
        }, after.ms);
      }
    };
    child.stdout!.on("data", (d) => {
      stdout += d;
      const lines = stdout.split("\n");
      for (; seen < lines.length - 1; seen++) onLine(lines[seen]);
    });
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      why = `did not finish within ${timeoutMs / 1000} s`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(afterTimer);
      resolve({ code, why: why || `exit ${code ?? signal}`, stdout, stderr, stoppedAfter });
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      clearTimeout(afterTimer);
      resolve({ code: -1, why: String(error), stdout, stderr, stoppedAfter: false });
    });
  });
}

/** The TLS version, cipher, key exchange and ALPN protocol h2load printed; throws unless h2. */
function negotiation(stdout: string): { tls: string } {
  const protocol = /Application protocol: (\S+)/.exec(stdout)?.[1];
  if (protocol !== "h2") {
    throw new Error(`h2load negotiated ${protocol ?? "no application protocol"}, not h2`);
  }
  const tls = [
    /TLS Protocol: (\S+)/.exec(stdout)?.[1],
    /Cipher: (\S+)/.exec(stdout)?.[1],
    /Server Temp Key: (\S+)/.exec(stdout)?.[1],
    protocol,
  ].filter((x) => x !== undefined).join(" ");
  return { tls };
}

function parseH2load(stdout: string) {
  const num = (re: RegExp, what: string) => {
    const m = re.exec(stdout);
    if (m === null) throw new Error(`h2load printed no ${what}: ${stdout.slice(-300)}`);
    return Number(m[1]);
  };
  const { tls } = negotiation(stdout);
  return {
    rps: num(/finished in [\d.]+\w*, ([\d.]+) req\/s/, "req/s"),
    requests: num(/requests: \d+ total, \d+ started, (\d+) done/, "request counts"),
    tls,
    errors: {
      failed: num(/ (\d+) failed,/, "failed count"),
      errored: num(/ (\d+) errored,/, "errored count"),
      timeout: num(/ (\d+) timeout/, "timeout count"),
      "3xx": num(/ (\d+) 3xx/, "3xx count"),
      "4xx": num(/ (\d+) 4xx/, "4xx count"),
      "5xx": num(/ (\d+) 5xx/, "5xx count"),
    },
  };
}

/** p50/p99/max (µs) of h2load's log; throws on a logged status other than 2xx. */
function readH2Log(
  file: string,
): { requests: number; p50Us: number; p99Us: number; maxUs: number } {
  const times: number[] = [];
  let bad = 0;
  let example = "";
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line === "") continue;
    const [, status, us] = line.split("\t");
    const code = Number(status);
    if (!(code >= 200 && code < 300)) {
      bad++;
      example ||= line;
      continue;
    }
    times.push(Number(us));
  }
  if (bad > 0) throw new Error(`h2load's log holds ${bad} requests without a 2xx (${example})`);
  if (times.length === 0) throw new Error("h2load's log holds no request");
  const sorted = Float64Array.from(times).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    requests: times.length,
    p50Us: at(0.5),
    p99Us: at(0.99),
    maxUs: sorted[sorted.length - 1],
  };
}
