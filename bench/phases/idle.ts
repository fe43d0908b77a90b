/**
 * Phase "idle" (issue 14, point 6): what 10,000 idle keep-alive client connections cost the proxy.
 *
 * Each run starts a fresh proxy on its core over the bench's three upstreams (the upstream nginx of
 * bench/run.ts, 16-byte body): the gateway with the main config plus `max_connections = 0` (no cap)
 * and `keepalive_timeout = "300s"`; HAProxy like the main table's, with `maxconn 10100`,
 * `no strict-limits` (its default would ask for 2 fds per connection, more than the 20,000 `ulimit
 * -n` allows, and refuse to start) and `timeout client`/`http-keep-alive` 300 s. After the usual
 * `GET /` check (200, the 16-byte body, one of the three upstreams), the proxy's current RSS
 * (VmRSS of its process tree, the last of 3 samples 250 ms apart) is taken. Then
 * `bench/clients/idle_clients.ts` (Bun, node:net, on the load core) opens 10,000 connections, 100
 * at a time, sends one `GET /` on each and checks the answer (200, the 16-byte body, no
 * `Connection: close`), and leaves them idle. After 1 s the bench reads the proxy's CPU time and
 * samples its RSS every 500 ms for 3 s; the last sample is "after" and the CPU time over those 3 s
 * is "CPU while idle". KiB per connection = (after − before) / 10,000: everything the proxy holds
 * for them (socket objects, buffers, the heap the JavaScript runtimes grew while accepting; the
 * upstream connections the 100 requests at a time opened stay pooled and count too). Then every
 * connection sends a second `GET /` on the same connection, which must be answered the same way:
 * none may have been closed by the proxy while idle.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { BODY, gatewayToml, haproxyConfig } from "../lib/configs.ts";
import { chartBar } from "../lib/phase.ts";
import type { Phase, PhaseContext, PhaseRow, PhaseTarget, TargetLine } from "../lib/phase.ts";
import {
  anonRssKiB,
  cpuSeconds,
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

/** Idle client connections held open. */
const CONNECTIONS = 10_000;
/** Connections opened (and answered) at a time. */
const BATCH = 100;
/** Seconds the idle connections are watched (RSS samples, CPU time). */
const WATCH_S = 3;
/** The target: KiB per idle client connection. */
const LIMIT_KIB = 10;
/** File descriptors the client and the proxy each need beyond the connections. */
const FD_MARGIN = 500;

/** A row of this phase. */
interface IdleRow extends PhaseRow {
  target?: string;
  idleBefore?: number;
  rssBeforeKiB?: number;
  rssAfterKiB?: number;
  /** RssAnon before and after (the process's own memory, without its executable's pages). */
  anonBeforeKiB?: number;
  anonAfterKiB?: number;
  kibPerConnection?: number;
  /** Proxy CPU (% of its core) over the idle seconds. */
  idleCpuPct?: number;
  /** Seconds the client took to open and check every connection. */
  openSeconds?: number;
  connections?: number;
  /** Connections answered on the second request at the end (still open and usable). */
  stillOpen?: number;
  closedWhileIdle?: number;
}

interface IdleReport {
  count: number;
  ok: number;
  closed: number;
  seconds: number;
  errors: string[];
}

let dir = "";

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** The soft limit on open files of this process (inherited by what it starts). */
function openFilesLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync("/proc/self/limits", "utf8"));
  return m === null || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

function haproxyFor(ctx: PhaseContext): string {
  return haproxyConfig({
    p: ctx.ports,
    by: "bench/phases/idle.ts",
    servers: ctx.ports.upstreams,
    global: [
      `maxconn ${CONNECTIONS + 100}`,
      // maxconn asks for 2 fds per connection (client + server), over the 20,000 allowed here;
      // idle keep-alive clients hold no server connection, so warn instead of refusing to start.
      "no strict-limits",
    ],
  });
}

async function startProxy(ctx: PhaseContext, t: PhaseTarget, tag: string): Promise<Proc> {
  check(!(await portOpen(ctx.ports.host, ctx.ports.proxy)), `port ${ctx.ports.proxy} is in use`);
  const gateway = t.kind === "gateway";
  const file = path.join(dir, gateway ? `${t.id}.toml` : `${t.id}.cfg`);
  writeFileSync(
    file,
    gateway
      ? gatewayToml(
        "main",
        ctx.ports,
        `${ctx.serverExtras}\nmax_connections = 0\nkeepalive_timeout = "300s"`,
      )
      : haproxyFor(ctx),
  );
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

/** `GET /` through the proxy (curl): 200, the 16-byte body, from one of the upstreams. */
async function checkProxy(ctx: PhaseContext): Promise<void> {
  const url = `http://${ctx.ports.host}:${ctx.ports.proxy}/`;
  const r = await runAsync(["curl", "-s", "-i", "--max-time", "5", url], { timeoutMs: 8000 });
  check(r.code === 0, `curl ${url}: exit ${r.code} ${r.stderr.trim()}`);
  const split = r.stdout.indexOf("\r\n\r\n");
  const head = r.stdout.slice(0, Math.max(split, 0));
  const body = r.stdout.slice(split + 4);
  check(/^HTTP\/1\.1 200 /.test(head), `GET ${url}: ${head.split("\r\n")[0]}`);
  check(body === BODY, `GET ${url}: body ${JSON.stringify(body.slice(0, 60))}`);
  const up = Number(/\r\nx-upstream:\s*(\d+)/i.exec(head)?.[1]);
  check(ctx.ports.upstreams.includes(up), `GET ${url}: X-Upstream ${up} is not an upstream`);
}

/** The last `PREFIX {json}` line of a log, waiting (bounded) while `proc` runs. */
async function awaitLine(
  proc: Proc,
  log: string,
  prefix: string,
  timeoutS: number,
): Promise<IdleReport> {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const text = existsSync(log) ? readFileSync(log, "utf8") : "";
    const line = text.split("\n").filter((l) => l.startsWith(`${prefix} `)).pop();
    if (line !== undefined) return JSON.parse(line.slice(prefix.length + 1)) as IdleReport;
    if (proc.exited) {
      throw new Error(`the client exited (${proc.exitCode}) before ${prefix}: ${tail(log)}`);
    }
    check(Date.now() < deadline, `no ${prefix} from the client in ${timeoutS} s: ${tail(log)}`);
    await sleep(100);
  }
}

/** The last of `n` RSS samples `ms` apart. */
async function settledRss(pid: number, n: number, ms: number): Promise<number> {
  let kib = vmRssKiB(pid);
  for (let i = 1; i < n; i++) {
    await sleep(ms);
    kib = vmRssKiB(pid);
  }
  return kib;
}

async function measure(ctx: PhaseContext, proxy: Proc, row: IdleRow, tag: string) {
  await sleep(500);
  row.rssBeforeKiB = await settledRss(proxy.pid, 3, 250);
  row.anonBeforeKiB = anonRssKiB(proxy.pid);
  const go = path.join(dir, `${tag}.go`);
  rmSync(go, { force: true });
  const log = path.join(ctx.runDir, `${tag}-client.log`);
  const client = start(
    "idle-clients",
    [
      ctx.bun,
      path.join(ctx.root, "bench/clients/idle_clients.ts"),
      ctx.ports.host,
      String(ctx.ports.proxy),
      String(CONNECTIONS),
      String(BATCH),
      go,
      "120",
    ],
    log,
    { cpu: ctx.loadCpu, cwd: ctx.root },
  );
  try {
    const opened = await awaitLine(client, log, "OPEN", 150);
    row.openSeconds = opened.seconds;
    row.connections = opened.ok;
    check(
      opened.ok === CONNECTIONS && opened.closed === 0,
      `${opened.ok} of ${opened.count} connections answered, ${opened.closed} closed: ${
        opened.errors.join("; ")
      }`,
    );
    await sleep(1000);
    const cpu0 = cpuSeconds(proxy.pid);
    const t0 = performance.now();
    row.rssAfterKiB = await settledRss(proxy.pid, 1 + (WATCH_S * 1000) / 500, 500);
    row.idleCpuPct = (100 * (cpuSeconds(proxy.pid) - cpu0)) / ((performance.now() - t0) / 1000);
    row.anonAfterKiB = anonRssKiB(proxy.pid);
    row.kibPerConnection = (row.rssAfterKiB - row.rssBeforeKiB) / CONNECTIONS;
    check(!proxy.exited, `the proxy exited with the connections open: ${tail(proxy.log)}`);
    writeFileSync(go, "");
    const done = await awaitLine(client, log, "DONE", 120);
    row.stillOpen = done.ok;
    row.closedWhileIdle = done.closed;
    check(
      done.closed === 0 && done.ok === CONNECTIONS,
      `at the end ${done.closed} connections had been closed by the proxy and ${done.ok} of ${CONNECTIONS} answered a second request: ${
        done.errors.join("; ")
      }`,
    );
  } finally {
    writeFileSync(go, "");
    await Promise.race([client.exit, sleep(10_000)]);
    await stop(client);
  }
}

const mibText = (kib: number | undefined) =>
  kib === undefined ? "–" : `${(kib / 1024).toFixed(1)} MiB`;
const num = (n: number | undefined, d = 0) => (n === undefined ? "–" : n.toFixed(d));

function med(rows: IdleRow[], id: string, value: (r: IdleRow) => number | undefined) {
  return median(
    rows.filter((r) => r.variant === id && r.ok).map(value).filter((v): v is number =>
      v !== undefined
    ),
  );
}

/** The phase. */
export const phase: Phase = {
  id: "idle",

  variants(ctx) {
    return ctx.targets.map((t) => `idle/${t.id}`);
  },

  async setup(ctx) {
    dir = path.join(ctx.tmp, "idle");
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      return { skip: (error as Error).message };
    }
    const limit = openFilesLimit();
    if (limit < CONNECTIONS + FD_MARGIN) {
      return {
        skip: `ulimit -n is ${limit}: the client and the proxy each need ${
          CONNECTIONS + FD_MARGIN
        } file descriptors (raise it before make bench)`,
      };
    }
    if (!(await portOpen(ctx.ports.host, ctx.ports.upstreams[0]))) {
      return { skip: `the bench's upstream is not listening on ${ctx.ports.upstreams[0]}` };
    }
  },

  async run(ctx, variant, round) {
    const target = variant.split("/")[1];
    const row: IdleRow = { variant, round, ok: false, target };
    const t = ctx.targets.find((x) => x.id === target);
    if (t === undefined) return { ...row, error: `no target ${target}` };
    const tag = `r${round}-${variant.replaceAll("/", "-")}`;
    row.idleBefore = await ctx.awaitQuiet();
    let proxy: Proc | undefined;
    try {
      proxy = await startProxy(ctx, t, tag);
      await checkProxy(ctx);
      await measure(ctx, proxy, row, tag);
      check(!proxy.exited, `the proxy exited: ${tail(proxy.log)}`);
      row.ok = true;
    } catch (error) {
      row.error = (error as Error).message;
    } finally {
      if (proxy !== undefined) {
        await stop(proxy);
        if (!proxy.exited) {
          row.ok = false;
          row.error ??= "the proxy did not stop";
        }
      }
    }
    return row;
  },

  summary(r) {
    const row = r as IdleRow;
    return `RSS ${mibText(row.rssBeforeKiB)} → ${mibText(row.rssAfterKiB)} with ${
      row.connections ?? 0
    } idle connections: ${num(row.kibPerConnection, 2)} KiB each; CPU while idle ${
      num(row.idleCpuPct, 1)
    }%; ${row.stillOpen ?? 0} still open at the end; opened in ${num(row.openSeconds, 1)} s`;
  },

  async teardown() {},

  render(all, rc) {
    const rows = all as IdleRow[];
    const targets = [...new Set(rows.map((r) => r.variant.split("/")[1]))];
    const hasHaproxy = targets.includes("haproxy");
    const body = targets.map((t) => {
      const id = `idle/${t}`;
      const runs = rows.filter((r) => r.variant === id);
      return [
        t,
        `${runs.filter((r) => r.ok).length}/${runs.length}`,
        mibText(med(rows, id, (r) => r.rssBeforeKiB)),
        mibText(med(rows, id, (r) => r.rssAfterKiB)),
        num(med(rows, id, (r) => r.kibPerConnection), 2),
        hasHaproxy
          ? `${num(pairedRatio(rows, id, "idle/haproxy", (r) => r.kibPerConnection), 1)}×`
          : "–",
        num(
          med(
            rows,
            id,
            (r) =>
              r.anonAfterKiB !== undefined && r.anonBeforeKiB !== undefined
                ? (r.anonAfterKiB - r.anonBeforeKiB) / CONNECTIONS
                : undefined,
          ),
          2,
        ),
        `${num(med(rows, id, (r) => r.idleCpuPct), 1)}%`,
        num(med(rows, id, (r) => r.openSeconds), 1),
        `${num(med(rows, id, (r) => r.stillOpen))}`,
      ];
    });
    const head = [
      "Target",
      "ok",
      "RSS before",
      `RSS with ${CONNECTIONS.toLocaleString("en-US")} idle`,
      "KiB per connection",
      "× HAProxy",
      "anon KiB per connection",
      "CPU while idle",
      "open + check (s)",
      "still open at the end",
    ];
    const table = [
      `| ${head.join(" | ")} |`,
      `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
      ...body.map((r) => `| ${r.join(" | ")} |`),
    ].join("\n");
    const failures = rows.filter((r) => !r.ok).map((r) =>
      `- round ${r.round} ${r.variant}: ${r.error}`
    );
    return `### Idle client connections: ${
      CONNECTIONS.toLocaleString("en-US")
    } keep-alive connections held open, medians of ${rc.rounds} round${rc.rounds > 1 ? "s" : ""}

A fresh proxy per run over the bench's three upstreams (the gateway with \`max_connections = 0\` and \`keepalive_timeout = "300s"\`; HAProxy with \`maxconn ${
      CONNECTIONS + 100
    }\` and 300 s client and keep-alive timeouts). A Bun client (\`bench/clients/idle_clients.ts\`, node:net, load core) opens ${
      CONNECTIONS.toLocaleString("en-US")
    } connections, ${BATCH} at a time, sends one \`GET /\` on each and checks the answer (200, the 16-byte body, no \`Connection: close\`), then leaves them idle. RSS is the proxy's current VmRSS (process tree) before the client starts and, after 1 s of idle, the last of samples taken every 500 ms for ${WATCH_S} s; KiB per connection is the difference over ${
      CONNECTIONS.toLocaleString("en-US")
    }, so it holds everything the connections cost (sockets, buffers, the heap a JavaScript runtime grew while accepting them, the pooled upstream connections the ${BATCH} concurrent first requests opened). "anon" is the same from RssAnon (without the executable's pages). CPU while idle is the proxy's utime+stime over the ${WATCH_S} s, as % of its core. At the end every connection sends a second \`GET /\` on the same connection: "still open" counts those answered exactly (none may have been closed by the proxy).

${table}
${failures.length > 0 ? `\nFailed runs:\n\n${failures.join("\n")}\n` : ""}`;
  },

  chart(all) {
    const rows = all as IdleRow[];
    const ids = [...new Set(rows.map((r) => r.variant))];
    return [{
      title: `Memory per idle client connection, ${
        CONNECTIONS.toLocaleString("en-US")
      } held open (KiB; median, min–max; shorter is better)`,
      unit: "KiB per connection",
      bars: ids.map((id) => {
        const target = id.split("/")[1];
        return chartBar(
          target,
          target === "haproxy" ? "haproxy" : "gateway",
          rows.filter((r) => r.variant === id && r.ok).map((r) => r.kibPerConnection),
          pairedRatio(rows, id, "idle/haproxy", (r) => r.kibPerConnection),
        );
      }),
    }];
  },

  targets(all) {
    const rows = all as IdleRow[];
    const gateways = [...new Set(rows.map((r) => r.variant.split("/")[1]))].filter((t) =>
      t.startsWith("gw-")
    );
    const haproxy = med(rows, "idle/haproxy", (r) => r.kibPerConnection);
    return gateways.map((t): TargetLine => {
      const id = `idle/${t}`;
      const per = med(rows, id, (r) => r.kibPerConnection);
      const failed = rows.filter((r) => r.variant === id && !r.ok).length;
      return {
        target: `${t}: idle client connections ≤ ${LIMIT_KIB} KiB each (${
          CONNECTIONS.toLocaleString("en-US")
        } held open)`,
        measured: per === undefined
          ? "not measured"
          : `${num(per, 1)} KiB per connection (RSS +${
            mibText(med(rows, id, (r) => r.rssAfterKiB! - r.rssBeforeKiB!))
          }), CPU while idle ${num(med(rows, id, (r) => r.idleCpuPct), 1)}%${
            haproxy === undefined ? "" : `; HAProxy ${num(haproxy, 1)} KiB`
          }${failed > 0 ? `; ${failed} failed run(s)` : ""}`,
        status: per !== undefined && failed === 0 && per <= LIMIT_KIB ? "✅ met" : "❌ not met",
      };
    });
  },
};
