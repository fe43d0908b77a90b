/**
 * Phase "ws" of `make bench` (issue 14): WebSocket echo through the gateway (Deno, Bun, binary),
 * through HAProxy (`mode http`, which tunnels the bytes after the 101) and through a byte-level
 * tunnel on each runtime's own sockets (bench/baselines/ws_tunnel.ts, no parsing after the
 * handshake), with 1 KiB and 64 KiB binary messages.
 *
 * Upstreams: three echo servers (bench/upstreams/ws_echo.ts, one Bun process, `Bun.serve` with
 * websocket handlers, no compression) on the load core, answering each message with the same
 * bytes. The gateway runs the main table's config (sticky cookie `route`, `ctx.serverExtras`)
 * with the echo servers as its three servers; HAProxy one thread, `balance roundrobin`, `cookie
 * SRV insert indirect nocache`, `timeout tunnel 300s`; the tunnel round-robins connections over
 * the three. Every proxy is pinned to the proxy core.
 *
 * Load (bench/upstreams/ws_load.ts, Bun's native WebSocket client, on the load core): first a
 * check through the proxy (a GET answered by an echo server, the sticky cookie set and pinning 3
 * GETs and 2 WebSockets to its server, a 1,000-byte binary message echoed byte for byte), then 64
 * WebSockets without a cookie (spread over the three servers as new clients would be; the spread
 * is recorded), each a closed loop: send one binary message, wait for its echo, check it (length
 * and its first 8 bytes, connection and sequence number, on every echo; the whole message on
 * every 8th), send the next. Warm-up, then the measured seconds; the proxy's CPU time (utime +
 * stime of its process tree) is sampled when the client starts and ends the measured window.
 *
 * A message is one round trip (the client's message and its echo: the proxy relays two frames);
 * MiB/s counts the payload both ways; CPU µs/message is the proxy's CPU time in the window per
 * round trip; RTT percentiles are the client's (send to echo); peak RSS is the proxy's VmHWM;
 * load CPU is the load core's busy share (client and echo servers: near 100% the load side, not
 * the proxy, may be the limit). A row fails on any error event, unexpected close, mismatched
 * echo, connection that echoed nothing, close code other than 1000 at the end, or a failed
 * check. Ratios to HAProxy are medians of per-round ratios against HAProxy's row of the same
 * message size.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gatewayToml, haproxyConfig, type Ports } from "../lib/configs.ts";
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
  anonRssKiB,
  busyPct,
  type CpuSample,
  cpuSeconds,
  cpuTimes,
  peakRssKiB,
  portOpen,
  type Proc,
  run,
  sleep,
  start,
  stop,
  tail,
  waitPort,
} from "../lib/procs.ts";
import { median, pairedRatio } from "../lib/report.ts";
import { fixed, int, mib, ms, pct, table, times } from "../lib/format.ts";

/** Message sizes measured (variant suffix → bytes). */
const SIZES: Record<string, number> = { "1k": 1024, "64k": 64 * 1024 };
const CONNECTIONS = 64;
/** The byte tunnels (bench/baselines/ws_tunnel.ts) by runtime. */
const TUNNELS = ["ws-tunnel-bun", "ws-tunnel-deno"] as const;
/** Which byte tunnel a gateway target is compared with (same runtime's sockets). */
const TUNNEL_OF: Record<string, string> = {
  "gw-deno": "ws-tunnel-deno",
  "gw-bun": "ws-tunnel-bun",
  "gw-binary": "ws-tunnel-bun",
};
const LABELS: Record<string, string> = {
  "ws-tunnel-bun": "byte tunnel (Bun sockets)",
  "ws-tunnel-deno": "byte tunnel (Deno sockets)",
};

/** A row of this phase (fields beside PhaseRow's). */
interface WsRow extends PhaseRow {
  target?: string;
  label?: string;
  size?: string;
  idleBefore?: number;
  messagesPerSec?: number;
  mibPerSec?: number;
  messages?: number;
  seconds?: number;
  p50Us?: number;
  p99Us?: number;
  maxUs?: number;
  cpuPct?: number;
  cpuUsPerMessage?: number;
  rssKiB?: number;
  /** Anonymous RSS of the proxy at the end of the measured window minus at its start. */
  anonGrowthKiB?: number;
  loadCpuPct?: number;
  spread?: Record<string, number>;
  checked?: Record<string, string>;
}

/** What ws_load.ts prints last. */
interface LoadResult {
  error?: string;
  messages: number;
  bytes: number;
  seconds: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  errors: number;
  closes: number;
  mismatches: number;
  firstProblem: string;
  spread: Record<string, number>;
  endCodes: Record<string, number>;
  check: Record<string, string>;
}

let echo: Proc | undefined;

function parseVariant(variant: string) {
  const [, target, size] = variant.split("/");
  return { target, size };
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** The echo servers' ports: phaseBase + 10..12. */
const echoPorts = (p: Ports) => [p.phaseBase + 10, p.phaseBase + 11, p.phaseBase + 12];

/** HAProxy: one thread, round robin, cookie insert, WebSockets tunnelled after the 101. */
function haproxyWsCfg(p: Ports): string {
  return haproxyConfig({
    p,
    by: "bench/phases/websocket.ts",
    servers: echoPorts(p),
    defaults: ["timeout tunnel 300s"],
  });
}

/** How to start a target: argv, env, cwd, and the sticky cookie's name ("" for none). */
function launch(ctx: PhaseContext, target: string): {
  argv: string[];
  env?: Record<string, string>;
  cwd: string;
  cookie: string;
} {
  const p = ctx.ports;
  if (target === "ws-tunnel-bun" || target === "ws-tunnel-deno") {
    const script = path.join(ctx.root, "bench/baselines/ws_tunnel.ts");
    return {
      argv: target === "ws-tunnel-bun" ? [ctx.bun, script] : [ctx.deno, "run", "-A", script],
      env: { LISTEN: `${p.host}:${p.proxy}`, UPSTREAMS: echoPorts(p).join(",") },
      cwd: ctx.root,
      cookie: "",
    };
  }
  const t: PhaseTarget | undefined = ctx.targets.find((x) => x.id === target);
  check(t !== undefined, `no target ${target} in this run`);
  if (t.kind === "haproxy") {
    const file = path.join(ctx.tmp, "ws-haproxy.cfg");
    writeFileSync(file, haproxyWsCfg(p));
    return { argv: ["haproxy", "-db", "-f", file], cwd: ctx.root, cookie: "SRV" };
  }
  const file = path.join(ctx.tmp, `ws-${t.id}.toml`);
  writeFileSync(file, gatewayToml("main", { ...p, upstreams: echoPorts(p) }, ctx.serverExtras));
  return { argv: t.argv(file), cwd: ctx.gatewayDir, cookie: "route" };
}

/** The lines of a log that are JSON objects. */
function jsonLines(file: string): Record<string, unknown>[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const out: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch { /* a partial line */ }
  }
  return out;
}

/** Waits (polling every 10 ms) until the client printed `event` or a result; false on timeout. */
async function waitEvent(client: Proc, event: string, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const lines = jsonLines(client.log);
    if (lines.some((l) => l.event === event)) return true;
    if (lines.some((l) => "error" in l || "messages" in l) || client.exited) return false;
    await sleep(10);
  }
  return false;
}

/** The proxy's and the load core's state at one edge of the measured window. */
interface Sample {
  cpu: number;
  cores: CpuSample;
  anon: number;
}

const sample = (proxy: Proc): Sample => ({
  cpu: cpuSeconds(proxy.pid),
  cores: cpuTimes(),
  anon: anonRssKiB(proxy.pid),
});

/** Runs the load client; samples the proxy at the window's edges; returns its checked result. */
async function load(ctx: PhaseContext, proxy: Proc, row: WsRow, cookie: string, tag: string) {
  const p = ctx.ports;
  const client = start(
    "ws-load",
    [ctx.bun, path.join(ctx.root, "bench/upstreams/ws_load.ts")],
    path.join(ctx.runDir, `${tag}.ws-load.log`),
    {
      cpu: ctx.loadCpu,
      cwd: ctx.root,
      env: {
        URL: `ws://${p.host}:${p.proxy}/`,
        CONNECTIONS: String(CONNECTIONS),
        SIZE: String(SIZES[row.size!]),
        WARMUP: String(ctx.warmup),
        SECONDS: String(ctx.duration),
        COOKIE: cookie,
        UPSTREAMS: echoPorts(p).join(","),
      },
    },
  );
  try {
    const deadline = Date.now() + (ctx.warmup + ctx.duration + 40) * 1000;
    check(await waitEvent(client, "measure", deadline), `load client: ${tail(client.log, 2)}`);
    const before = sample(proxy);
    check(await waitEvent(client, "end", deadline), `load client: ${tail(client.log, 2)}`);
    const after = sample(proxy);
    await Promise.race([client.exit, sleep(Math.max(0, deadline - Date.now()))]);
    const result = jsonLines(client.log).find((l) => "error" in l || "messages" in l) as
      | LoadResult
      | undefined;
    check(result !== undefined, `load client printed no result: ${tail(client.log, 2)}`);
    check(result.error === undefined, `load client: ${result.error}`);
    return { result, before, after };
  } finally {
    await stop(client);
  }
}

/** Fails the row on anything the client saw go wrong. */
function verify(r: LoadResult): void {
  const problems = [
    r.errors > 0 ? `${r.errors} errors` : "",
    r.closes > 0 ? `${r.closes} unexpected closes` : "",
    r.mismatches > 0 ? `${r.mismatches} mismatched echoes` : "",
  ].filter(Boolean);
  check(problems.length === 0, `${problems.join(", ")} (first: ${r.firstProblem})`);
  const badEnds = Object.entries(r.endCodes).filter(([code]) => code !== "1000");
  check(
    badEnds.length === 0,
    `closing with 1000 gave ${badEnds.map(([c, n]) => `${n}× ${c}`).join(", ")}`,
  );
  check(r.messages > 0, "no message echoed");
}

/** One measurement: start the proxy, check and load it, stop it. */
async function measure(ctx: PhaseContext, row: WsRow, tag: string): Promise<void> {
  const p = ctx.ports;
  check(echo !== undefined && !echo.exited, `echo servers not running: ${tail(echo?.log ?? "")}`);
  check(!(await portOpen(p.host, p.proxy)), `port ${p.proxy} is already in use`);
  const how = launch(ctx, row.target!);
  let proxy: Proc | undefined;
  try {
    proxy = start(row.target!, how.argv, path.join(ctx.runDir, `${tag}.log`), {
      cpu: ctx.proxyCpu,
      cwd: how.cwd,
      env: how.env,
    });
    await waitPort(proxy, p.host, p.proxy);
    const { result, before, after } = await load(ctx, proxy, row, how.cookie, tag);
    check(!proxy.exited, `${row.target} exited during the run: ${tail(proxy.log)}`);
    verify(result);
    const cpu = after.cpu - before.cpu;
    Object.assign(row, {
      messagesPerSec: result.messages / result.seconds,
      mibPerSec: result.bytes / result.seconds / (1024 * 1024),
      messages: result.messages,
      seconds: result.seconds,
      p50Us: result.p50Us,
      p99Us: result.p99Us,
      maxUs: result.maxUs,
      cpuPct: (100 * cpu) / result.seconds,
      cpuUsPerMessage: (cpu / result.messages) * 1e6,
      rssKiB: peakRssKiB(proxy.pid),
      anonGrowthKiB: after.anon - before.anon,
      loadCpuPct: busyPct(before.cores, after.cores, ctx.loadCpu),
      spread: result.spread,
      checked: result.check,
    });
    row.ok = true;
  } finally {
    if (proxy !== undefined) {
      await stop(proxy);
      if (!proxy.exited) {
        row.ok = false;
        row.error ??= `${row.target} did not stop`;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Report

/** Round trips per second of proxy CPU. */
const perCpu = (r: WsRow) => (r.cpuUsPerMessage ? 1e6 / r.cpuUsPerMessage : undefined);
/** Load core at least this busy: the client side may be what limits the row. */
const LOAD_BOUND = 90;

function statOf(rows: WsRow[], id: string, value: (r: WsRow) => number | undefined) {
  return median(
    rows.filter((r) => r.variant === id && r.ok).map(value).filter((v) => v !== undefined),
  );
}

const haproxyOf = (id: string) => `ws/haproxy/${parseVariant(id).size}`;

function labelOf(rows: WsRow[], target: string): string {
  return LABELS[target] ?? rows.find((r) => r.target === target && r.label)?.label ?? target;
}

function firstError(rows: WsRow[]): string {
  const e = rows.find((r) => !r.ok)?.error ?? "";
  return e.replaceAll("|", "/").replaceAll("\n", " ").slice(0, 120);
}

/** Variant ids in table order: by size, then gateways, HAProxy, tunnels as first seen. */
function orderedIds(rows: WsRow[]): string[] {
  const ids = [...new Set(rows.map((r) => r.variant))];
  const sizes = Object.keys(SIZES);
  return ids.sort((a, b) =>
    sizes.indexOf(parseVariant(a).size) - sizes.indexOf(parseVariant(b).size)
  );
}

function tableRows(rows: WsRow[]): string[][] {
  return orderedIds(rows).map((id) => {
    const v = parseVariant(id);
    const ref = haproxyOf(id);
    const all = rows.filter((r) => r.variant === id);
    const ok = all.filter((r) => r.ok).length;
    const load = statOf(rows, id, (r) => r.loadCpuPct);
    return [
      labelOf(rows, v.target),
      v.size === "1k" ? "1 KiB" : "64 KiB",
      `**${int(statOf(rows, id, (r) => r.messagesPerSec))}**`,
      times(pairedRatio(rows, id, ref, (r) => r.messagesPerSec)),
      fixed(statOf(rows, id, (r) => r.mibPerSec), 1),
      ms(statOf(rows, id, (r) => r.p50Us)),
      ms(statOf(rows, id, (r) => r.p99Us)),
      fixed(statOf(rows, id, (r) => r.cpuUsPerMessage), 1),
      times(pairedRatio(rows, id, ref, perCpu)),
      pct(statOf(rows, id, (r) => r.cpuPct)),
      `${pct(load)}${load !== undefined && load >= LOAD_BOUND ? " †" : ""}`,
      mib(statOf(rows, id, (r) => r.rssKiB)),
      `${int(statOf(rows, id, (r) => r.anonGrowthKiB))} KiB`,
      ok === all.length ? `${ok}/${all.length}` : `${ok}/${all.length} (${firstError(all)})`,
    ];
  });
}

/** "gateway (Bun) 22/21/21" …: how the 64 connections spread over the echo servers. */
function spreads(rows: WsRow[]): string {
  const seen = new Map<string, string>();
  for (const r of rows) {
    if (!r.ok || r.spread === undefined || r.target === undefined || seen.has(r.target)) continue;
    seen.set(r.target, Object.values(r.spread).join("/"));
  }
  return [...seen].map(([t, s]) => `${labelOf(rows, t)} ${s}`).join(", ");
}

function render(rows: PhaseRow[], ctx: RenderContext): string {
  const list = rows as WsRow[];
  const loadBound = list.some((r) => r.ok && (r.loadCpuPct ?? 0) >= LOAD_BOUND);
  const method =
    `${CONNECTIONS} WebSockets (Bun's native client, bench/upstreams/ws_load.ts) each echo binary ` +
    `messages of 1 KiB or 64 KiB in a closed loop (send, wait for the echo, check it, send the ` +
    `next: length and connection/sequence number on every echo, all bytes on every 8th) through ` +
    `the proxy to three echo servers (\`Bun.serve\` websocket handlers, one process, ` +
    `bench/upstreams/ws_echo.ts). The gateway runs the main table's config (sticky cookie, one ` +
    `worker) with the echo servers as its three servers and relays messages by parsing and ` +
    `re-framing them on both sides; HAProxy (one thread, \`balance roundrobin\`, \`cookie SRV ` +
    `insert indirect nocache\`, \`timeout tunnel 300s\`) tunnels the bytes after the 101; the byte ` +
    `tunnels (bench/baselines/ws_tunnel.ts: read the request head, connect to the next server, ` +
    `copy bytes both ways, no parsing after the head) show what relaying costs on each runtime's ` +
    `own sockets (\`Bun.listen\`/\`Bun.connect\`, \`Deno.listen\`/\`Deno.connect\`, the ones the ` +
    `gateway uses). Before loading, the client checks through the proxy: a GET answered by an ` +
    `echo server, the sticky cookie pinning 3 GETs and 2 WebSockets to one server, a 1,000-byte ` +
    `message echoed exactly; the 64 measured connections carry no cookie, so the proxy spreads ` +
    `them over the three servers as new clients (spread seen: ${spreads(list) || "–"}). A ` +
    `message is one round trip (the client's message and its echo: two frames relayed), MiB/s ` +
    `counts the payload both ways, RTT is the client's send-to-echo time; CPU µs/message is the ` +
    `proxy's CPU time (its process tree) over the measured window per round trip, proxy CPU its ` +
    `share of its core, peak RSS its VmHWM and RSS Δ its anonymous RSS at the window's end minus ` +
    `at its start; load CPU is the load core's busy share (client and echo servers)${
      loadBound
        ? ": † marks rows where it was ≥ ${LOAD_BOUND}%, the client side may be the limit there"
        : ""
    }. A run fails on any error, unexpected close, mismatched echo, a connection that echoed ` +
    `nothing, or a close other than 1000 at the end. × HAProxy columns are medians of per-round ` +
    `ratios against HAProxy's row of the same size (${ctx.rounds} round${
      ctx.rounds === 1 ? "" : "s"
    } of ${ctx.quick ? "1 s" : "the main table's duration, after a warm-up"}).`;
  const t = table(
    [
      "Target",
      "Message",
      "messages/s",
      "× HAProxy",
      "MiB/s",
      "p50 RTT",
      "p99 RTT",
      "CPU µs/message",
      "× HAProxy per CPU",
      "proxy CPU",
      "load CPU",
      "peak RSS",
      "RSS Δ",
      "runs ok",
    ],
    tableRows(list),
    2,
  );
  return `### WebSockets: 64 connections echoing 1 KiB and 64 KiB messages\n\n${method}\n\n${t}\n`;
}

/** For one gateway and size: its CPU per message against its runtime's byte tunnel's. */
function wallLine(list: WsRow[], target: string, size: string): TargetLine | undefined {
  const id = `ws/${target}/${size}`;
  const tunnel = TUNNEL_OF[target];
  if (tunnel === undefined) return undefined;
  const tunnelId = `ws/${tunnel}/${size}`;
  const gw = statOf(list, id, (r) => r.cpuUsPerMessage);
  const tun = statOf(list, tunnelId, (r) => r.cpuUsPerMessage);
  if (gw === undefined || tun === undefined) return undefined;
  const hap = statOf(list, haproxyOf(id), (r) => r.cpuUsPerMessage);
  const tunnelPerCpu = pairedRatio(list, tunnelId, haproxyOf(id), perCpu);
  const gwPerCpu = pairedRatio(list, id, haproxyOf(id), perCpu);
  const measured = `CPU µs/message ${fixed(gw, 1)} (gateway) vs ${fixed(tun, 1)} (${
    labelOf(list, tunnel)
  }) vs ${fixed(hap, 1)} (HAProxy): per CPU ${times(gwPerCpu)} and ${times(tunnelPerCpu)} HAProxy`;
  let status: string;
  if (tunnelPerCpu === undefined || gwPerCpu === undefined) status = "ℹ️ HAProxy row missing";
  else if (gwPerCpu >= 0.5) status = "ℹ️ no wall: the gateway reaches 0.5× HAProxy per CPU";
  else if (tunnelPerCpu >= 0.5) {
    status = `ℹ️ the WebSocket framing is the wall: a byte tunnel after the 101 would do ` +
      `${times(tunnelPerCpu)} HAProxy per CPU (${times(tun / gw)} the gateway's CPU)`;
  } else {
    status = `ℹ️ the runtime's sockets are the wall: even a byte tunnel does ` +
      `${times(tunnelPerCpu)} HAProxy per CPU`;
  }
  return {
    target: `${labelOf(list, target)}, WebSocket ${size === "1k" ? "1 KiB" : "64 KiB"}: ` +
      `framing or sockets (against the byte tunnel)`,
    measured,
    status,
  };
}

function targets(rows: PhaseRow[]): TargetLine[] {
  const list = rows as WsRow[];
  const lines: TargetLine[] = [];
  const gateways = [
    ...new Set(list.map((r) => r.target).filter((t) => t !== undefined && t in TUNNEL_OF)),
  ] as string[];
  for (const target of gateways) {
    for (const size of Object.keys(SIZES)) {
      const id = `ws/${target}/${size}`;
      if (!list.some((r) => r.variant === id)) continue;
      const ratio = pairedRatio(list, id, haproxyOf(id), (r) => r.messagesPerSec);
      const n = statOf(list, id, (r) => r.messagesPerSec);
      const h = statOf(list, haproxyOf(id), (r) => r.messagesPerSec);
      lines.push({
        target: `${labelOf(list, target)}, WebSocket ${size === "1k" ? "1 KiB" : "64 KiB"}: ` +
          `≥ 0.5× HAProxy messages/s`,
        measured: `${times(ratio)} (${int(n)} vs ${int(h)} messages/s)`,
        status: ratio === undefined
          ? "❌ not met (a run failed or HAProxy's did)"
          : ratio >= 0.5
          ? "✅ met"
          : "❌ not met",
      });
      const wall = wallLine(list, target, size);
      if (wall !== undefined) lines.push(wall);
    }
  }
  return lines;
}

/** Phase "ws": WebSocket echo (1 KiB, 64 KiB) through every proxy and the byte tunnels. */
export const phase: Phase = {
  id: "ws",
  variants(ctx) {
    const out: string[] = [];
    for (const target of [...ctx.targets.map((t) => t.id), ...TUNNELS]) {
      for (const size of Object.keys(SIZES)) out.push(`ws/${target}/${size}`);
    }
    return out;
  },
  async setup(ctx, variants) {
    if (variants.some((v) => v.startsWith("ws/haproxy/"))) {
      try {
        run(["bash", "-c", "command -v haproxy"]);
      } catch {
        return { skip: "haproxy not found (bench/install.sh installs it)" };
      }
    }
    const p = ctx.ports;
    for (const port of echoPorts(p)) {
      if (await portOpen(p.host, port)) return { skip: `port ${port} is already in use` };
    }
    const proc = start(
      "ws-echo",
      [ctx.bun, path.join(ctx.root, "bench/upstreams/ws_echo.ts")],
      path.join(ctx.runDir, "ws-echo.log"),
      { cpu: ctx.loadCpu, cwd: ctx.root, env: { HOST: p.host, PORTS: echoPorts(p).join(",") } },
    );
    echo = proc;
    try {
      for (const port of echoPorts(p)) await waitPort(proc, p.host, port);
    } catch (error) {
      await stop(proc);
      echo = undefined;
      return { skip: `echo servers did not start: ${(error as Error).message}` };
    }
    ctx.log(`phase ws: echo servers on ${echoPorts(p).join(", ")}`);
  },
  async run(ctx, variant, round) {
    const v = parseVariant(variant);
    const row: WsRow = {
      variant,
      round,
      ok: false,
      target: v.target,
      label: LABELS[v.target] ?? ctx.targets.find((t) => t.id === v.target)?.label,
      size: v.size,
    };
    try {
      check(SIZES[v.size] !== undefined, `unknown message size ${v.size}`);
      row.idleBefore = await ctx.awaitQuiet();
      await measure(ctx, row, `r${round}-${variant.replaceAll("/", "-")}`);
    } catch (error) {
      row.ok = false;
      row.error = (error as Error).message;
    }
    return row;
  },
  summary(row) {
    const r = row as WsRow;
    return `${int(r.messagesPerSec).padStart(7)} msg/s  ${fixed(r.mibPerSec, 1)} MiB/s  ` +
      `p50 ${ms(r.p50Us)}  p99 ${ms(r.p99Us)}  CPU ${fixed(r.cpuUsPerMessage, 1)} µs/msg ` +
      `(${pct(r.cpuPct)})  load ${pct(r.loadCpuPct)}  RSS ${mib(r.rssKiB)} ` +
      `Δ${int(r.anonGrowthKiB)} KiB  spread ${Object.values(r.spread ?? {}).join("/")}`;
  },
  async teardown() {
    if (echo !== undefined) await stop(echo);
    echo = undefined;
  },
  render,
  targets,
  chart(rows) {
    const list = rows as WsRow[];
    return (["1k", "64k"] as const).map((size) => ({
      title: `WebSockets, 64 connections echoing ${
        size === "1k" ? "1 KiB" : "64 KiB"
      } messages (round trips per second; median, min–max)`,
      unit: "messages per second",
      bars: orderedIds(list).filter((id) => parseVariant(id).size === size).map((id) => {
        const v = parseVariant(id);
        return chartBar(
          labelOf(list, v.target),
          v.target === "haproxy"
            ? "haproxy"
            : v.target.startsWith("ws-tunnel")
            ? "baseline"
            : "gateway",
          list.filter((r) => r.variant === id && r.ok).map((r) => r.messagesPerSec),
          pairedRatio(list, id, haproxyOf(id), (r) => r.messagesPerSec),
        );
      }),
    }));
  },
};
