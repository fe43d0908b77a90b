/**
 * Phase "streams" (issue 14, point 5): many downloads at once, and slow readers (backpressure).
 *
 * Upstream: a phase-own nginx (1 worker, sendfile, keep-alive, access log off, on the load core)
 * on three ports of the phase's range (`phaseBase + 20..22`), each answering `X-Upstream: <port>`
 * and serving two files of random bytes from the page cache: 10 MiB (`/big10`) and 64 MiB
 * (`/slow64`). Each proxy gets these three servers (the gateway: `[upstreams.app]` with the sticky
 * cookie and the access log off, as in the main table; HAProxy: `balance roundrobin`, cookie
 * insert, `nbthread 1`). Every run starts a fresh proxy and checks `GET /` (200, the 16-byte body
 * from one of the three ports) before any load.
 *
 * - **many**: `bench/clients/many_downloads.ts` (Bun, node:net, on the load core) starts 100
 *   downloads of the 10 MiB file at once, each on its own connection, and counts every download's
 *   bytes and zlib CRC-32: all 100 must be 200, `Content-Length` 10 MiB, from one of the three
 *   ports, with the file's exact bytes. MiB/s is the 1,000 MiB over the wall time from the first
 *   connect to the last byte; proxy CPU s/GiB is the proxy's utime+stime over that time per GiB;
 *   peak RSS is VmHWM of the proxy's process tree. With a warm-up (full runs), 20 downloads go
 *   through the proxy first, unmeasured.
 * - **slow**: `bench/clients/slow_readers.ts` (Deno: `Deno.Conn.read` is pull-based, so bytes stay
 *   in the kernel until the client asks for them and a reader that does not read stops the flow)
 *   keeps 2 fast downloads of the 10 MiB file going in a loop for three intervals: a warm-up
 *   (2 s, 0 in quick runs), then "none" (`max(duration, 6)` s: no slow reader), then "slow" (the
 *   same length: plus 20 readers of the 64 MiB file, each paced to 100 KiB/s by a token bucket, that
 *   close mid-body at the end). The phase samples the proxy's current RSS (VmRSS summed over its
 *   process tree) every 250 ms. A proxy that keeps reading from its upstream while the client
 *   does not read holds the difference in its memory: about 64 MiB − the ~0.6 MiB read − the
 *   ~4–8 MiB that loopback socket buffers (kernel memory, not RSS) take, i.e. ~55 MiB per slow
 *   reader, ~1.1 GiB for 20, as fast as the upstream delivers (tried by hand with a Bun node:net
 *   forwarder that writes without waiting for `drain`: +490 MiB in the first 5 s with these 20
 *   readers, still rising). A proxy that pushes back holds its per-connection buffers only. The
 *   64 MiB file (not 10 MiB) is what makes the two cases unmistakable: with 10 MiB, the kernel's
 *   buffers alone would swallow half the file. The row shows the peak RSS of each interval and
 *   the RSS at the start and end of "slow"; "extra per slow reader" = (peak with 20 slow − peak
 *   with none) / 20. Every byte the slow readers got must equal the file's prefix, and each
 *   reader must have got ≥ 80 KiB/s (the proxy kept up with the pace); the fast downloads must
 *   all be exact.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { BODY, haproxyConfig } from "../lib/configs.ts";
import { chartBar } from "../lib/phase.ts";
import type { ManyResult } from "../clients/many_downloads.ts";
import type { Phase, PhaseContext, PhaseRow, PhaseTarget, TargetLine } from "../lib/phase.ts";
import {
  cpuSeconds,
  peakRssKiB,
  portOpen,
  type Proc,
  runAsync,
  sleep,
  start,
  stop,
  tail,
  vmRssKiB,
  waitPort,
} from "../lib/procs.ts";
import { median, pairedRatio } from "../lib/report.ts";

/** Downloads at once in "many". */
const MANY = 100;
/** Downloads of the warm-up before "many" (full runs). */
const MANY_WARMUP = 20;
const FILE_MIB = 10;
/** The slow readers' file: large enough that buffering it would be unmistakable. */
const SLOW_FILE_MIB = 64;
const SLOW_READERS = 20;
const SLOW_KIBPS = 100;
/** A slow reader must get at least this share of its pace (the proxy kept up). */
const MIN_PACE = 0.8;
/** Fast downloads kept going beside the slow readers (and in the "none" interval). */
const FAST_BESIDE = 2;
const SAMPLE_MS = 250;
/**
 * The target's bound on the extra peak RSS per slow reader. The gateway by design buffers up to
 * 1 MiB per upstream connection before it pauses the upstream socket (the receive queue's
 * high-water mark, src/runtime/shared/receive_queue.ts) plus the chunk it is writing: a bound per
 * connection, not per body. 2 MiB allows that and allocator slack, and stays ~25× below the
 * ~55 MiB a slow reader of the 64 MiB file would cost a proxy that does not push back.
 */
const PER_READER_LIMIT_KIB = 2048;

/** A row of this phase: the common fields plus what "many" or "slow" measured. */
interface StreamsRow extends PhaseRow {
  target?: string;
  mode?: "many" | "slow";
  idleBefore?: number;
  // many
  downloads?: number;
  good?: number;
  mibps?: number;
  seconds?: number;
  cpuPerGiB?: number;
  peakRssKiB?: number;
  upstreams?: Record<string, number>;
  // slow
  rssNoneStartKiB?: number;
  rssNoneMaxKiB?: number;
  rssSlowStartKiB?: number;
  rssSlowMaxKiB?: number;
  rssSlowEndKiB?: number;
  /** (peak with the slow readers − peak without) / readers. */
  extraPerReaderKiB?: number;
  /** End − start of the slow interval. */
  growthKiB?: number;
  slowReaders?: number;
  slowMinKiBps?: number;
  slowMedianKiBps?: number;
  slowBytes?: number;
  fastDownloads?: { warm: number; none: number; slow: number };
  intervalSeconds?: number;
  samples?: number;
  /** The RSS samples (MiB, every SAMPLE_MS) from the start of "none" to the end of "slow". */
  rssTraceMiB?: number[];
}

interface DataFile {
  readonly file: string;
  readonly bytes: number;
  readonly crc32: number;
}

let nginx: Proc | undefined;
let dir = "";
let big: DataFile | undefined;
let slowFile: DataFile | undefined;

const upstreamPorts = (ctx: PhaseContext) => [0, 1, 2].map((i) => ctx.ports.phaseBase + 20 + i);

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** A file of random bytes (4 MiB blocks repeated, as run.ts writes its file) and its CRC-32. */
function makeFile(file: string, mib: number): DataFile {
  const crc32 = (zlib as unknown as { crc32(d: Uint8Array, v?: number): number }).crc32;
  const block = randomBytes(4 << 20);
  const bytes = mib << 20;
  const fd = openSync(file, "w", 0o644);
  let crc = 0;
  try {
    for (let written = 0; written < bytes; written += block.length) {
      const chunk = block.subarray(0, Math.min(block.length, bytes - written));
      writeSync(fd, chunk);
      crc = crc32(chunk, crc);
    }
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o644);
  return { file, bytes, crc32: crc };
}

function nginxConf(ctx: PhaseContext): string {
  const host = ctx.ports.host;
  return `# generated by bench/phases/concurrent_streams.ts: the phase's upstreams
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.error.log warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  server {
${upstreamPorts(ctx).map((port) => `    listen ${host}:${port};`).join("\n")}
    add_header X-Upstream $server_port always;
    location / { return 200 "${BODY}"; }
    location = /big10 { root ${dir}; }
    location = /slow64 { root ${dir}; }
  }
}
`;
}

function gatewayConfig(ctx: PhaseContext): string {
  const host = ctx.ports.host;
  return `# generated by bench/phases/concurrent_streams.ts
[server]
listen = "${host}:${ctx.ports.proxy}"
grace_period = "1s"
read_timeout = "300s"
${ctx.serverExtras}

[upstreams.app]
servers = [${upstreamPorts(ctx).map((port) => `"${host}:${port}"`).join(", ")}]

[upstreams.app.sticky]
name = "route"

[log]
access = "off"
`;
}

function haproxyFor(ctx: PhaseContext): string {
  return haproxyConfig({
    p: ctx.ports,
    by: "bench/phases/concurrent_streams.ts",
    servers: upstreamPorts(ctx),
  });
}

/** The phase's proxy for one run, on the proxy core, listening. */
async function startProxy(ctx: PhaseContext, t: PhaseTarget, tag: string): Promise<Proc> {
  check(!(await portOpen(ctx.ports.host, ctx.ports.proxy)), `port ${ctx.ports.proxy} is in use`);
  const gateway = t.kind === "gateway";
  const file = path.join(dir, gateway ? `${t.id}.toml` : `${t.id}.cfg`);
  writeFileSync(file, gateway ? gatewayConfig(ctx) : haproxyFor(ctx));
  const argv = gateway ? t.argv(file) : ["haproxy", "-db", "-f", file];
  const proc = start(t.id, argv, path.join(ctx.runDir, `${tag}.log`), {
    cpu: ctx.proxyCpu,
    cwd: gateway ? ctx.gatewayDir : ctx.root,
  });
  try {
    await waitPort(proc, ctx.ports.host, ctx.ports.proxy);
  } catch (error) {
    await stop(proc);
    throw error;
  }
  return proc;
}

/** `GET /` through the proxy (curl): 200, the 16-byte body, from one of the phase's ports. */
async function checkProxy(ctx: PhaseContext): Promise<void> {
  const url = `http://${ctx.ports.host}:${ctx.ports.proxy}/`;
  const r = await runAsync(["curl", "-s", "-i", "--max-time", "5", url], { timeoutMs: 8000 });
  check(r.code === 0, `curl ${url}: exit ${r.code} ${r.stderr.trim()}`);
  const split = r.stdout.indexOf("\r\n\r\n");
  const head = r.stdout.slice(0, Math.max(split, 0));
  const body = r.stdout.slice(split + 4);
  check(/^HTTP\/1\.1 200 /.test(head), `GET ${url}: ${head.split("\r\n")[0]}`);
  check(body === BODY, `GET ${url}: body ${JSON.stringify(body.slice(0, 60))}`);
  const up = /\r\nx-upstream:\s*(\d+)/i.exec(head)?.[1];
  check(
    upstreamPorts(ctx).includes(Number(up)),
    `GET ${url}: X-Upstream ${up} is not a phase upstream`,
  );
}

/** Runs a client on the load core until it exits (bounded); its `RESULT {json}` line. */
async function runClient<T>(
  ctx: PhaseContext,
  name: string,
  argv: string[],
  tag: string,
  timeoutS: number,
): Promise<T> {
  const log = path.join(ctx.runDir, `${tag}.log`);
  const proc = start(name, argv, log, { cpu: ctx.loadCpu, cwd: ctx.root });
  await Promise.race([proc.exit, sleep(timeoutS * 1000)]);
  if (!proc.exited) {
    await stop(proc);
    throw new Error(`${name} did not finish in ${timeoutS} s: ${tail(log)}`);
  }
  const line = readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("RESULT ")).pop();
  check(line !== undefined, `${name} exited ${proc.exitCode} without a result: ${tail(log)}`);
  return JSON.parse(line.slice("RESULT ".length)) as T;
}

function manyArgv(ctx: PhaseContext, count: number): string[] {
  const data = big!;
  return [
    ctx.bun,
    path.join(ctx.root, "bench/clients/many_downloads.ts"),
    ctx.ports.host,
    String(ctx.ports.proxy),
    "/big10",
    String(count),
    String(data.bytes),
    String(data.crc32),
    upstreamPorts(ctx).join(","),
    "120",
  ];
}

async function runMany(ctx: PhaseContext, proc: Proc, row: StreamsRow, tag: string) {
  if (ctx.warmup > 0) {
    const w = await runClient<ManyResult>(
      ctx,
      "many-warmup",
      manyArgv(ctx, MANY_WARMUP),
      `${tag}-warmup`,
      150,
    );
    check(
      w.good === w.count,
      `warm-up: ${w.count - w.good} downloads failed: ${w.errors.join("; ")}`,
    );
  }
  const cpu0 = cpuSeconds(proc.pid);
  const r = await runClient<ManyResult>(ctx, "many-downloads", manyArgv(ctx, MANY), tag, 150);
  const cpu = cpuSeconds(proc.pid) - cpu0;
  row.downloads = r.count;
  row.good = r.good;
  row.upstreams = r.upstreams;
  check(
    r.count === MANY && r.good === MANY,
    `${r.count - r.good} of ${r.count} downloads failed: ${r.errors.join("; ")}`,
  );
  check(r.bytes === MANY * big!.bytes, `got ${r.bytes} bytes, expected ${MANY * big!.bytes}`);
  check(!proc.exited, `the proxy exited during the downloads: ${tail(proc.log)}`);
  row.mibps = r.mibps;
  row.seconds = r.seconds;
  row.cpuPerGiB = cpu / (r.bytes / (1 << 30));
  row.peakRssKiB = peakRssKiB(proc.pid);
}

interface SlowResult {
  times: { warm: number; none: number; slow: number; end: number };
  slow: { bytes: number; kibps: number; match: boolean; error?: string }[];
  fast: { warm: number; none: number; slow: number; failed: number; mib: number };
  errors: string[];
}

/** Samples the proxy's RSS every SAMPLE_MS until stopped. */
function sampler(pid: number): { stop(): { t: number; kib: number }[] } {
  const samples: { t: number; kib: number }[] = [];
  const take = () => samples.push({ t: Date.now(), kib: vmRssKiB(pid) });
  take();
  const timer = setInterval(take, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

async function runSlow(ctx: PhaseContext, proc: Proc, row: StreamsRow, tag: string) {
  const seconds = Math.max(ctx.duration, 6);
  const warm = ctx.quick ? 0 : 2;
  row.intervalSeconds = seconds;
  const rss = sampler(proc.pid);
  let samples: { t: number; kib: number }[] = [];
  let r: SlowResult;
  try {
    r = await runClient<SlowResult>(
      ctx,
      "slow-readers",
      [
        ctx.deno,
        "run",
        "--allow-net",
        "--allow-read",
        path.join(ctx.root, "bench/clients/slow_readers.ts"),
        ctx.ports.host,
        String(ctx.ports.proxy),
        "/big10",
        big!.file,
        "/slow64",
        slowFile!.file,
        String(SLOW_READERS),
        String(FAST_BESIDE),
        String(SLOW_KIBPS),
        String(warm),
        String(seconds),
        upstreamPorts(ctx).join(","),
      ],
      tag,
      warm + 2 * seconds + 60,
    );
  } finally {
    samples = rss.stop();
  }
  row.samples = samples.length;
  check(!proc.exited, `the proxy exited during the run: ${tail(proc.log)}`);
  const { none, slow, end } = r.times;
  const within = (a: number, b: number) => samples.filter((s) => s.t >= a && s.t < b);
  const before = (t: number) => samples.filter((s) => s.t < t).pop();
  const noneSamples = within(none, slow);
  const slowSamples = within(slow, end);
  check(noneSamples.length > 0 && slowSamples.length > 0, "no RSS sample in an interval");
  row.rssNoneStartKiB = noneSamples[0].kib;
  row.rssNoneMaxKiB = Math.max(...noneSamples.map((s) => s.kib));
  row.rssSlowStartKiB = before(slow)?.kib ?? slowSamples[0].kib;
  row.rssSlowMaxKiB = Math.max(...slowSamples.map((s) => s.kib));
  row.rssSlowEndKiB = slowSamples[slowSamples.length - 1].kib;
  row.rssTraceMiB = within(none, end).map((s) => Math.round(s.kib / 1024));
  row.growthKiB = row.rssSlowEndKiB - row.rssSlowStartKiB;
  row.extraPerReaderKiB = (row.rssSlowMaxKiB - row.rssNoneMaxKiB) / SLOW_READERS;
  row.slowReaders = r.slow.length;
  row.slowMinKiBps = Math.min(...r.slow.map((s) => s.kibps));
  row.slowMedianKiBps = median(r.slow.map((s) => s.kibps));
  row.slowBytes = r.slow.reduce((sum, s) => sum + s.bytes, 0);
  row.fastDownloads = { warm: r.fast.warm, none: r.fast.none, slow: r.fast.slow };
  row.peakRssKiB = peakRssKiB(proc.pid);
  check(r.slow.length === SLOW_READERS, `${r.slow.length} slow readers ran`);
  const failed = r.slow.filter((s) => s.error !== undefined || !s.match);
  check(
    failed.length === 0,
    `${failed.length} slow readers failed or got wrong bytes: ${r.errors.join("; ")}`,
  );
  check(
    row.slowMinKiBps >= MIN_PACE * SLOW_KIBPS,
    `a slow reader got only ${row.slowMinKiBps.toFixed(0)} KiB/s (paced to ${SLOW_KIBPS})`,
  );
  check(r.fast.failed === 0, `${r.fast.failed} fast downloads failed: ${r.errors.join("; ")}`);
  check(
    r.fast.none > 0 && r.fast.slow > 0,
    `fast downloads: ${r.fast.none} without and ${r.fast.slow} with the slow readers`,
  );
}

function parse(variant: string): { target: string; mode: "many" | "slow" } {
  const [, target, mode] = variant.split("/");
  return { target, mode: mode === "slow" ? "slow" : "many" };
}

const mibText = (kib: number | undefined) =>
  kib === undefined ? "–" : `${(kib / 1024).toFixed(kib < 10240 && kib > -10240 ? 1 : 0)} MiB`;
/** KiB below 1 MiB, else MiB with one decimal. */
const sizeText = (kib: number | undefined) =>
  kib === undefined
    ? "–"
    : Math.abs(kib) < 1024
    ? `${kib.toFixed(0)} KiB`
    : `${(kib / 1024).toFixed(1)} MiB`;
const num = (n: number | undefined, d = 0) => (n === undefined ? "–" : n.toFixed(d));
const ratioText = (n: number | undefined) => (n === undefined ? "–" : `${n.toFixed(2)}×`);

function rowsOf(rows: StreamsRow[], id: string): StreamsRow[] {
  return rows.filter((r) => r.variant === id && r.ok);
}

function med(rows: StreamsRow[], id: string, value: (r: StreamsRow) => number | undefined) {
  return median(
    rowsOf(rows, id).map(value).filter((v): v is number => v !== undefined),
  );
}

/** The phase. */
export const phase: Phase = {
  id: "streams",

  variants(ctx) {
    return ctx.targets.flatMap((t) => [`streams/${t.id}/many`, `streams/${t.id}/slow`]);
  },

  async setup(ctx) {
    try {
      dir = path.join(ctx.tmp, "streams");
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      for (const port of upstreamPorts(ctx)) {
        check(!(await portOpen(ctx.ports.host, port)), `port ${port} is already in use`);
      }
      big = makeFile(path.join(dir, "big10"), FILE_MIB);
      slowFile = makeFile(path.join(dir, "slow64"), SLOW_FILE_MIB);
      const conf = path.join(dir, "nginx.conf");
      writeFileSync(conf, nginxConf(ctx));
      nginx = start(
        "streams-nginx",
        [
          "nginx",
          "-e",
          path.join(dir, "nginx.error.log"),
          "-p",
          dir,
          "-c",
          conf,
          "-g",
          "daemon off;",
        ],
        path.join(ctx.runDir, "streams-nginx.log"),
        { cpu: ctx.loadCpu },
      );
      for (const port of upstreamPorts(ctx)) await waitPort(nginx, ctx.ports.host, port);
      ctx.log(
        `streams: nginx on ${upstreamPorts(ctx).join(", ")}; ${FILE_MIB} MiB file CRC-32 ${
          big.crc32.toString(16)
        }, ${SLOW_FILE_MIB} MiB file for the slow readers`,
      );
    } catch (error) {
      if (nginx !== undefined) await stop(nginx);
      nginx = undefined;
      return { skip: (error as Error).message };
    }
  },

  async run(ctx, variant, round) {
    const { target, mode } = parse(variant);
    const row: StreamsRow = { variant, round, ok: false, target, mode };
    const t = ctx.targets.find((x) => x.id === target);
    if (t === undefined) return { ...row, error: `no target ${target}` };
    const tag = `r${round}-${variant.replaceAll("/", "-")}`;
    row.idleBefore = await ctx.awaitQuiet();
    let proc: Proc | undefined;
    try {
      check(nginx !== undefined && !nginx.exited, "the phase's nginx is not running");
      proc = await startProxy(ctx, t, tag);
      await checkProxy(ctx);
      if (mode === "many") await runMany(ctx, proc, row, `${tag}-client`);
      else await runSlow(ctx, proc, row, `${tag}-client`);
      row.ok = true;
    } catch (error) {
      row.error = (error as Error).message;
    } finally {
      if (proc !== undefined) {
        await stop(proc);
        if (!proc.exited) {
          row.ok = false;
          row.error ??= "the proxy did not stop";
        }
      }
    }
    return row;
  },

  summary(r) {
    const row = r as StreamsRow;
    if (row.mode === "many") {
      return `${num(row.mibps)} MiB/s over ${row.good}/${row.downloads} exact downloads, CPU ${
        num(row.cpuPerGiB, 2)
      } s/GiB, peak RSS ${mibText(row.peakRssKiB)}`;
    }
    return `RSS peak ${mibText(row.rssNoneMaxKiB)} without, ${
      mibText(row.rssSlowMaxKiB)
    } with ${row.slowReaders} slow readers (start ${mibText(row.rssSlowStartKiB)}, end ${
      mibText(row.rssSlowEndKiB)
    }): ${sizeText(row.extraPerReaderKiB)} extra per reader; slow readers ${
      num(row.slowMinKiBps)
    }-${
      num(row.slowMedianKiBps)
    } KiB/s; fast downloads ${row.fastDownloads?.none} without, ${row.fastDownloads?.slow} with`;
  },

  async teardown() {
    if (nginx !== undefined) await stop(nginx);
    nginx = undefined;
  },

  render(all, rc) {
    const rows = all as StreamsRow[];
    const targets = [...new Set(rows.map((r) => r.target ?? parse(r.variant).target))];
    const hasHaproxy = targets.includes("haproxy");
    const many = targets.map((t) => {
      const id = `streams/${t}/many`;
      const ok = rowsOf(rows, id);
      return [
        t,
        `${ok.length}/${rows.filter((r) => r.variant === id).length}`,
        num(med(rows, id, (r) => r.mibps)),
        hasHaproxy ? ratioText(pairedRatio(rows, id, "streams/haproxy/many", (r) => r.mibps)) : "–",
        num(med(rows, id, (r) => r.cpuPerGiB), 2),
        hasHaproxy
          ? ratioText(pairedRatio(rows, id, "streams/haproxy/many", (r) => r.cpuPerGiB))
          : "–",
        mibText(med(rows, id, (r) => r.peakRssKiB)),
      ];
    });
    const slow = targets.map((t) => {
      const id = `streams/${t}/slow`;
      const ok = rowsOf(rows, id);
      return [
        t,
        `${ok.length}/${rows.filter((r) => r.variant === id).length}`,
        mibText(med(rows, id, (r) => r.rssNoneMaxKiB)),
        mibText(med(rows, id, (r) => r.rssSlowStartKiB)),
        mibText(med(rows, id, (r) => r.rssSlowMaxKiB)),
        mibText(med(rows, id, (r) => r.rssSlowEndKiB)),
        sizeText(med(rows, id, (r) => r.extraPerReaderKiB)),
        `${num(med(rows, id, (r) => r.slowMinKiBps))}–${
          num(med(rows, id, (r) => r.slowMedianKiBps))
        }`,
      ];
    });
    const table = (head: string[], body: string[][]) =>
      [
        `| ${head.join(" | ")} |`,
        `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
        ...body.map((r) => `| ${r.join(" | ")} |`),
      ].join("\n");
    const seconds = rows.find((r) => r.intervalSeconds !== undefined)?.intervalSeconds ?? 6;
    const failures = rows.filter((r) => !r.ok).map((r) =>
      `- round ${r.round} ${r.variant}: ${r.error}`
    );
    return `### Many streams and slow readers: ${MANY} × ${FILE_MIB} MiB at once; ${SLOW_READERS} readers at ${SLOW_KIBPS} KiB/s, medians of ${rc.rounds} round${
      rc.rounds > 1 ? "s" : ""
    }

A phase-own nginx (1 worker, sendfile, on the load core) serves ${FILE_MIB} MiB and ${SLOW_FILE_MIB} MiB files of random bytes from three ports; each proxy (fresh per run, on its core) balances over them. **Many**: a Bun client (\`bench/clients/many_downloads.ts\`, raw node:net, load core) starts ${MANY} downloads of the ${FILE_MIB} MiB file at once, one connection each; all ${MANY} must be 200 from one of the three ports with the file's exact size and CRC-32. MiB/s is the ${
      MANY * FILE_MIB
    } MiB over the wall time from the first connect to the last byte; CPU s/GiB is the proxy's utime+stime per GiB moved; peak RSS is VmHWM of the proxy's process tree; × HAProxy are medians of per-round ratios. **Slow readers**: a Deno client (\`bench/clients/slow_readers.ts\`; \`Deno.Conn.read\` is pull-based, so a reader that does not read leaves the bytes in the kernel and TCP's window pushes back on the proxy) keeps ${FAST_BESIDE} fast downloads of the ${FILE_MIB} MiB file going throughout, first ${seconds} s with no slow reader ("none"), then ${seconds} s with ${SLOW_READERS} more readers of the ${SLOW_FILE_MIB} MiB file, each paced to ${SLOW_KIBPS} KiB/s by a token bucket; the bench samples the proxy's current RSS (VmRSS of its process tree) every ${SAMPLE_MS} ms. Each slow reader's bytes must equal the file's prefix and arrive at ≥ ${
      MIN_PACE * SLOW_KIBPS
    } KiB/s; every fast download must be exact. A proxy that went on reading from its upstream while its client does not read would hold the difference: ~55 MiB per slow reader here (${SLOW_FILE_MIB} MiB − the ~0.6 MiB read − the ~4–8 MiB loopback socket buffers take, which are kernel memory, not RSS), ~1.1 GiB for ${SLOW_READERS} (a Bun node:net forwarder that writes without waiting for \`drain\`, tried by hand, grew by 490 MiB in its first 5 s with these readers); one that pushes back holds its per-connection buffers only. "Extra per slow reader" is (peak RSS with the slow readers − peak RSS of "none") / ${SLOW_READERS}; "slow: start/end" is the RSS just before the slow readers connect and at the end of their interval (flat: end ≈ start). The target allows ${
      PER_READER_LIMIT_KIB / 1024
    } MiB per slow reader: the gateway buffers up to 1 MiB per upstream connection before it pauses that socket (its receive queue's high-water mark) plus the chunk being written, a bound per connection and not per body.

${table(["Target", "ok", "MiB/s", "× HAProxy", "CPU s/GiB", "× HAProxy CPU", "Peak RSS"], many)}

${
      table([
        "Target",
        "ok",
        "RSS peak, none",
        "RSS start, slow",
        `RSS peak, ${SLOW_READERS} slow`,
        "RSS end, slow",
        "Extra per slow reader",
        "Slow KiB/s (min–median)",
      ], slow)
    }
${failures.length > 0 ? `\nFailed runs:\n\n${failures.join("\n")}\n` : ""}`;
  },

  chart(all) {
    const rows = all as StreamsRow[];
    const ids = [...new Set(rows.map((r) => r.variant))].filter((id) => id.endsWith("/many"));
    return [{
      title:
        `${MANY} concurrent ${FILE_MIB} MiB downloads through the proxy (aggregate MiB/s; median, min–max)`,
      unit: "MiB per second",
      bars: ids.map((id) => {
        const target = parse(id).target;
        return chartBar(
          target,
          target === "haproxy" ? "haproxy" : "gateway",
          rows.filter((r) => r.variant === id && r.ok).map((r) => r.mibps),
          pairedRatio(rows, id, "streams/haproxy/many", (r) => r.mibps),
        );
      }),
    }];
  },

  targets(all) {
    const rows = all as StreamsRow[];
    const gateways = [...new Set(rows.map((r) => r.target ?? parse(r.variant).target))].filter(
      (t) => t.startsWith("gw-"),
    );
    const haproxy = med(rows, "streams/haproxy/slow", (r) => r.extraPerReaderKiB);
    return gateways.map((t): TargetLine => {
      const id = `streams/${t}/slow`;
      const per = med(rows, id, (r) => r.extraPerReaderKiB);
      const growth = med(rows, id, (r) => r.growthKiB);
      const failed = rows.filter((r) => r.variant.startsWith(`streams/${t}/`) && !r.ok).length;
      const many = med(rows, `streams/${t}/many`, (r) => r.mibps);
      return {
        target: `${t}: RSS flat with ${SLOW_READERS} slow readers (≤ ${
          PER_READER_LIMIT_KIB / 1024
        } MiB extra per reader; ${MANY} concurrent downloads exact)`,
        measured: per === undefined
          ? "not measured"
          : `${sizeText(per)} extra per slow reader (+${
            mibText(per * SLOW_READERS)
          } for ${SLOW_READERS}), end − start ${growth !== undefined && growth >= 0 ? "+" : ""}${
            mibText(growth)
          }${
            haproxy === undefined ? "" : `; HAProxy ${sizeText(haproxy)}`
          }; ${MANY} × ${FILE_MIB} MiB at ${num(many)} MiB/s${
            failed > 0 ? `; ${failed} failed run(s)` : ""
          }`,
        status: per === undefined || failed > 0
          ? "❌ not met"
          : per <= PER_READER_LIMIT_KIB
          ? "✅ met"
          : "❌ not met",
      };
    });
  },
};
