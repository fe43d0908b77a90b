/**
 * Phase "tls" of `make bench` (issue 14): HTTPS with HTTP/1.1 and HTTP/2 through the gateway
 * (Deno, Bun, binary) and through HAProxy, serving the same self-signed ECDSA P-256 certificate
 * (SAN 127.0.0.1 and localhost, made with openssl in the run's temp directory), cookie absent and
 * present, over the main table's three upstreams (16-byte body, plain HTTP behind the proxy).
 *
 * The gateway gets the main config plus `[server] tls = { cert, key }` (HTTPS, h2 by ALPN);
 * HAProxy the main table's config (one thread, round robin, `cookie SRV insert indirect nocache`)
 * with `bind … ssl crt <pem> alpn h2,http/1.1`. Before loading, curl -k checks each proxy over
 * the protocol measured: 200, the exact body, X-Upstream one of the three, curl reports HTTP/2 for
 * h2 (both negotiate it by ALPN), a Set-Cookie on a cookie-less request, 6 requests balanced, and
 * 3 requests with that cookie pinned to one upstream; after the load, one more request per case.
 *
 * HTTP/1.1: `wrk -t1 -c64 --latency` over TLS (keep-alive), after a wrk warm-up run of the
 * warm-up seconds, as the main table. HTTP/2: `h2load -c 64 -m 10 -t 1` (64 connections, 10
 * concurrent streams each): first a warm-up of 6,400 requests by count, then `--warm-up-time=<w>
 * -D <s>` (w ≥ 1 s, on the connections then measured, so every TLS handshake is done before the
 * measured time); req/s from its summary, p50/p99 from its per-request log (tls_tools.ts says
 * what happens when h2load does not exit). Clients on the load core, the proxy on its own;
 * proxy CPU µs/req is the proxy's CPU time (utime + stime of its process tree) over the measured
 * time divided by the requests completed (for h2 read at h2load's "Main benchmark duration"
 * lines), peak RSS its VmHWM. A row fails on any non-2xx answer or errored request. Ratios to
 * HAProxy are medians of per-round ratios against HAProxy's row of the same protocol and cookie
 * case.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { gatewayToml } from "../lib/configs.ts";
import { chartBar } from "../lib/phase.ts";
import type {
  Phase,
  PhaseContext,
  PhaseRow,
  PhaseTarget,
  RenderContext,
  TargetLine,
} from "../lib/phase.ts";
import {
  cpuSeconds,
  peakRssKiB,
  portOpen,
  type Proc,
  run,
  start,
  stop,
  tail,
  waitPort,
} from "../lib/procs.ts";
import { median, pairedRatio } from "../lib/report.ts";
import { fixed, int, mib, table, times } from "../lib/format.ts";
import {
  type CertFiles,
  checkPinned,
  checkServing,
  gatewayTlsLine,
  h2loadTls,
  h2loadWarm,
  haproxyTlsCfg,
  type LoadOptions,
  type LoadResult,
  makeCertificate,
  type Protocol,
  verifyTls,
  wrkTls,
} from "./tls_tools.ts";

const PROTOCOLS: readonly Protocol[] = ["h1", "h2"];
/** h2load's timed warm-up (s) even in --quick: every handshake done before the measured time. */
const H2_MIN_WARMUP = 1;
const COOKIES = ["absent", "present"] as const;
type Cookie = (typeof COOKIES)[number];

/** A row of this phase (fields beside PhaseRow's). */
interface TlsRow extends PhaseRow {
  target?: string;
  label?: string;
  protocol?: Protocol;
  cookie?: Cookie;
  idleBefore?: number;
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  requests?: number;
  seconds?: number;
  cpuPct?: number;
  cpuUsPerReq?: number;
  rssKiB?: number;
  tls?: string;
  errors?: Record<string, number>;
  /** h2load did not exit after the run: the numbers come from its per-request log. */
  fromLog?: string;
}

let cert: CertFiles | undefined;

function parseVariant(variant: string) {
  const [, target, protocol, cookie] = variant.split("/");
  return { target, protocol: protocol as Protocol, cookie: cookie as Cookie };
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** Writes the proxy's config and starts it on the proxy CPU; waits for its port. */
async function startProxy(ctx: PhaseContext, t: PhaseTarget, tag: string): Promise<Proc> {
  const p = ctx.ports;
  check(!(await portOpen(p.host, p.proxy)), `port ${p.proxy} is already in use`);
  const files = cert!;
  let argv: string[];
  if (t.kind === "haproxy") {
    const file = path.join(ctx.tmp, "tls-haproxy.cfg");
    writeFileSync(file, haproxyTlsCfg(p, files.combined));
    argv = ["haproxy", "-db", "-f", file];
  } else {
    const file = path.join(ctx.tmp, `tls-${t.id}.toml`);
    writeFileSync(file, gatewayToml("main", p, `${ctx.serverExtras}\n${gatewayTlsLine(files)}`));
    argv = t.argv(file);
  }
  const proc = start(t.id, argv, path.join(ctx.runDir, `${tag}.log`), {
    cpu: ctx.proxyCpu,
    cwd: t.kind === "gateway" ? ctx.gatewayDir : ctx.root,
  });
  await waitPort(proc, p.host, p.proxy);
  return proc;
}

/** The load of one protocol; throws when a request failed or was not answered 2xx. */
async function load(protocol: Protocol, o: LoadOptions): Promise<LoadResult> {
  const r = protocol === "h2" ? await h2loadTls(o) : await wrkTls(o);
  check(r.requests > 0, "no request completed");
  const errors = Object.entries(r.errors).filter(([, n]) => n > 0);
  check(
    errors.length === 0,
    `${protocol === "h2" ? "h2load" : "wrk"}: ${errors.map(([k, n]) => `${n} ${k}`).join(", ")}`,
  );
  return r;
}

/** One measurement: start, verify, warm up, measure, verify again, stop. */
async function measure(ctx: PhaseContext, row: TlsRow, t: PhaseTarget, tag: string) {
  const p = ctx.ports;
  const url = `https://${p.host}:${p.proxy}/`;
  const protocol = row.protocol!;
  let proc: Proc | undefined;
  try {
    proc = await startProxy(ctx, t, tag);
    const running = proc;
    const name = t.kind === "haproxy" ? "SRV" : "route";
    const verified = await verifyTls(url, protocol, name, p.upstreams);
    let cpu0: number | undefined;
    let cpu1: number | undefined;
    const options: LoadOptions = {
      url,
      seconds: ctx.duration,
      warmup: Math.max(ctx.warmup, H2_MIN_WARMUP),
      cookie: row.cookie === "present" ? verified.cookie : undefined,
      cpu: ctx.loadCpu,
      logFile: path.join(ctx.tmp, `${tag}.h2load.log`),
      wrkScript: path.join(ctx.root, "bench/wrk/report.lua"),
    };
    if (protocol === "h2") await h2loadWarm(options);
    else if (ctx.warmup > 0) await load(protocol, { ...options, seconds: ctx.warmup });
    const r = await load(protocol, {
      ...options,
      onStart: () => (cpu0 = cpuSeconds(running.pid)),
      onEnd: () => (cpu1 = cpuSeconds(running.pid)),
    });
    check(
      cpu0 !== undefined && cpu1 !== undefined,
      "the measured time was not seen to start and end",
    );
    const cpu = cpu1 - cpu0;
    check(!proc.exited, `${t.id} exited during the run: ${tail(proc.log)}`);
    Object.assign(row, {
      rps: r.rps,
      p50Ms: r.p50Us / 1000,
      p99Ms: r.p99Us / 1000,
      maxMs: r.maxUs / 1000,
      requests: r.requests,
      seconds: r.seconds,
      cpuPct: (100 * cpu) / r.seconds,
      cpuUsPerReq: (cpu / r.requests) * 1e6,
      rssKiB: peakRssKiB(proc.pid),
      tls: r.tls,
      errors: r.errors,
      fromLog: r.fromLog,
    });
    if (row.cookie === "present") {
      await checkPinned(url, protocol, verified.cookie, verified.pinned, p.upstreams);
    } else {
      await checkServing(url, protocol, p.upstreams);
    }
    row.ok = true;
  } finally {
    if (proc !== undefined) {
      await stop(proc);
      if (!proc.exited) {
        row.ok = false;
        row.error ??= `${t.id} did not stop`;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const protocolText = (p: Protocol) => (p === "h2" ? "HTTP/2" : "HTTPS/1.1");

function statOf(rows: TlsRow[], id: string, value: (r: TlsRow) => number | undefined) {
  return median(
    rows.filter((r) => r.variant === id && r.ok).map(value).filter((v) => v !== undefined),
  );
}

/** The HAProxy row this variant is compared with (same protocol and cookie case). */
const haproxyOf = (id: string) => {
  const v = parseVariant(id);
  return `tls/haproxy/${v.protocol}/${v.cookie}`;
};

const perCpu = (r: TlsRow) => (r.cpuUsPerReq ? 1e6 / r.cpuUsPerReq : undefined);

function tableRows(rows: TlsRow[]): string[][] {
  const ids = [...new Set(rows.map((r) => r.variant))];
  return ids.map((id) => {
    const v = parseVariant(id);
    const label = rows.find((r) => r.variant === id && r.label)?.label ?? v.target;
    const ref = haproxyOf(id);
    const all = rows.filter((r) => r.variant === id);
    const ok = all.filter((r) => r.ok).length;
    return [
      label,
      protocolText(v.protocol),
      `cookie ${v.cookie}`,
      `**${int(statOf(rows, id, (r) => r.rps))}**`,
      times(pairedRatio(rows, id, ref, (r) => r.rps)),
      `${fixed(statOf(rows, id, (r) => r.p50Ms))} ms`,
      `${fixed(statOf(rows, id, (r) => r.p99Ms))} ms`,
      times(pairedRatio(rows, id, ref, (r) => r.p99Ms)),
      fixed(statOf(rows, id, (r) => r.cpuUsPerReq), 1),
      times(pairedRatio(rows, id, ref, perCpu)),
      mib(statOf(rows, id, (r) => r.rssKiB)),
      (ok === all.length ? `${ok}/${all.length}` : `${ok}/${all.length} (${firstError(all)})`) +
      (all.some((r) => r.ok && r.fromLog) ? " †" : ""),
    ];
  });
}

/** A sentence on runs whose h2load had to be stopped after its measured time. */
function fromLogNote(rows: TlsRow[]): string {
  const ids = [...new Set(rows.filter((r) => r.ok && r.fromLog).map((r) => r.variant))];
  if (ids.length === 0) return "";
  return ` In ${ids.join(", ")} h2load did not exit after its measured time (some of its ` +
    "connections went on requesting after the stop) and was stopped 3 s later; those runs' " +
    "numbers come from its per-request log, which holds every request that ended in the " +
    "measured time with its status (marked †).";
}

function firstError(rows: TlsRow[]): string {
  const e = rows.find((r) => !r.ok)?.error ?? "";
  return e.replaceAll("|", "/").replaceAll("\n", " ").slice(0, 120);
}

/** "gateway (Bun): TLSv1.3 TLS_AES_256_GCM_SHA384 X25519 h2; …" as h2load reported it. */
function negotiated(rows: TlsRow[]): string {
  const byTarget = new Map<string, Set<string>>();
  for (const r of rows) {
    if (!r.ok || r.tls === undefined || r.tls === "") continue;
    const set = byTarget.get(r.label ?? r.target ?? "?") ?? new Set();
    set.add(r.tls);
    byTarget.set(r.label ?? r.target ?? "?", set);
  }
  if (byTarget.size === 0) return "";
  const all = new Set([...byTarget.values()].flatMap((s) => [...s]));
  if (all.size === 1) return ` Every h2 connection negotiated ${[...all][0]} (h2load's report).`;
  return ` Negotiated (h2load's report): ${
    [...byTarget].map(([t, s]) => `${t}: ${[...s].join(", ")}`).join("; ")
  }.`;
}

function render(rows: PhaseRow[], ctx: RenderContext): string {
  const list = rows as TlsRow[];
  const method = "Both proxies serve one self-signed ECDSA P-256 certificate (made with openssl " +
    "for 127.0.0.1 and localhost): the gateway with `[server] tls = { cert, key }` (HTTP/2 by " +
    "ALPN), HAProxy (one thread, `cookie SRV insert indirect nocache`) with `bind … ssl crt … " +
    "alpn h2,http/1.1`, both over the main table's three upstreams (16-byte body, plain HTTP " +
    "keep-alive behind the proxy), each with its default TLS settings. HTTPS/1.1: `wrk -t1 -c64` " +
    "over TLS with keep-alive after a warm-up run, as the main table. HTTP/2: `h2load -c 64 -m 10 " +
    "-t 1` (64 connections, 10 concurrent streams each) after a warm-up of 6,400 requests and " +
    "with its own `--warm-up-time` (≥ 1 s) on the measured connections, so no TLS handshake " +
    "falls in the measured time; p50/p99 from its per-request log. Cookie present: every request " +
    "carries the cookie the proxy set (`route` / `SRV`). Before each run curl checks over the " +
    "same protocol: 200, the exact body, the upstream, HTTP/2 negotiated by ALPN, the Set-Cookie " +
    "and 3 requests pinned by it (one more request after the run); a run fails on any non-2xx or " +
    "errored request. Clients on the load core, the proxy on its own; CPU µs/req is the proxy's " +
    "CPU time over the measured time per request, peak RSS its VmHWM; × HAProxy columns are " +
    "medians of per-round ratios against HAProxy's row of the same protocol and cookie case " +
    `(${ctx.rounds} round${ctx.rounds === 1 ? "" : "s"}${ctx.quick ? " of 1 s" : ""}). ` +
    "On Deno, HTTP/2 goes through a loopback bridge since the fifth session " +
    "(src/runtime/deno/h2_bridge.ts: each h2 connection is passed, decrypted, to a `Deno.serve` " +
    "on a loopback port, so a restart loses nothing), known to cost about a quarter of the h2 " +
    'rate; on Bun, HTTPS is `node:http2`\'s `createSecureServer` (README, "TLS and HTTP/2").' +
    negotiated(list) + fromLogNote(list);
  const t = table(
    [
      "Target",
      "Protocol",
      "Cookie",
      "req/s",
      "× HAProxy",
      "p50",
      "p99",
      "p99 × HAProxy",
      "CPU µs/req",
      "× HAProxy per CPU",
      "peak RSS",
      "runs ok",
    ],
    tableRows(list),
    3,
  );
  return `### TLS and HTTP/2: HTTPS/1.1 and h2 through the gateway and HAProxy\n\n${method}\n\n${t}\n`;
}

function targets(rows: PhaseRow[], ctx: RenderContext): TargetLine[] {
  const list = rows as TlsRow[];
  const lines: TargetLine[] = [];
  const gateways = [...new Set(list.filter((r) => r.target !== "haproxy").map((r) => r.target))];
  for (const target of gateways) {
    if (target === undefined) continue;
    const label = list.find((r) => r.target === target && r.label)?.label ?? target;
    for (const protocol of PROTOCOLS) {
      const ids = COOKIES.map((c) => `tls/${target}/${protocol}/${c}`);
      if (!ids.some((id) => list.some((r) => r.variant === id))) continue;
      const tls = ids.map((id) => pairedRatio(list, id, haproxyOf(id), (r) => r.rps));
      const plain = COOKIES.map((c) => ctx.plainRatio(target, c));
      const measured = `${protocolText(protocol)} ${times(tls[0])} / ${times(tls[1])} HAProxy ` +
        `(cookie absent / present); plain HTTP ${
          plain.some((x) => x === undefined)
            ? "ratio not measured in this run"
            : `${times(plain[0])} / ${times(plain[1])}`
        }`;
      let status: string;
      if (tls.some((x) => x === undefined)) status = "❌ not met (a run failed or HAProxy's did)";
      else if (plain.some((x) => x === undefined)) status = "ℹ️ plain ratio not measured";
      else status = tls.every((x, i) => x! >= plain[i]!) ? "✅ met" : "❌ not met";
      lines.push({
        target: `${label}, ${protocolText(protocol)}: ≥ the plain-HTTP ratio to HAProxy`,
        measured,
        status,
      });
    }
  }
  return lines;
}

/** Phase "tls": HTTPS/1.1 (wrk) and HTTP/2 (h2load) through every proxy, cookie absent/present. */
export const phase: Phase = {
  id: "tls",
  variants(ctx) {
    const out: string[] = [];
    for (const t of ctx.targets) {
      for (const protocol of PROTOCOLS) {
        for (const cookie of COOKIES) out.push(`tls/${t.id}/${protocol}/${cookie}`);
      }
    }
    return out;
  },
  async setup(ctx) {
    for (const tool of ["openssl", "h2load", "wrk", "curl", "haproxy"]) {
      try {
        run(["bash", "-c", `command -v ${tool}`]);
      } catch {
        return { skip: `${tool} not found (bench/install.sh installs it)` };
      }
    }
    cert = makeCertificate(ctx.tmp);
    ctx.log(`phase tls: self-signed ECDSA P-256 certificate in ${cert.cert}`);
  },
  async run(ctx, variant, round) {
    const v = parseVariant(variant);
    const t = ctx.targets.find((x) => x.id === v.target);
    const row: TlsRow = {
      variant,
      round,
      ok: false,
      target: v.target,
      label: t?.label,
      protocol: v.protocol,
      cookie: v.cookie,
    };
    try {
      check(t !== undefined, `no target ${v.target} in this run`);
      check(cert !== undefined, "no certificate (setup did not run)");
      row.idleBefore = await ctx.awaitQuiet();
      await measure(ctx, row, t, `r${round}-${variant.replaceAll("/", "-")}`);
    } catch (error) {
      row.ok = false;
      row.error = (error as Error).message;
    }
    return row;
  },
  summary(row) {
    const r = row as TlsRow;
    return `${int(r.rps).padStart(7)} req/s  p50 ${fixed(r.p50Ms)} ms  p99 ${fixed(r.p99Ms)} ms  ` +
      `CPU ${fixed(r.cpuUsPerReq, 1)} µs/req  RSS ${mib(r.rssKiB)}${r.tls ? `  ${r.tls}` : ""}` +
      (r.fromLog ? `  (${r.fromLog})` : "");
  },
  async teardown() {
    cert = undefined;
  },
  render,
  targets,
  chart(rows) {
    const list = rows as TlsRow[];
    const ids = [...new Set(list.map((r) => r.variant))];
    return (["h1", "h2"] as const).map((protocol) => ({
      title: `${protocolText(protocol)} through one proxy core (${
        protocol === "h1" ? "wrk -t1 -c64" : "h2load -c64 -m10"
      }, 16-byte responses; median, min–max)`,
      unit: "requests per second",
      bars: ids.filter((id) => parseVariant(id).protocol === protocol).map((id) => {
        const v = parseVariant(id);
        const label = list.find((r) => r.variant === id && r.label)?.label ?? v.target;
        return chartBar(
          `${label} · cookie ${v.cookie}`,
          v.target === "haproxy" ? "haproxy" : "gateway",
          list.filter((r) => r.variant === id && r.ok).map((r) => r.rps),
          pairedRatio(list, id, haproxyOf(id), (r) => r.rps),
        );
      }),
    }));
  },
};
