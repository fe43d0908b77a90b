/**
 * The restart procedure under load, as an operator runs it (README, "Restarting without loss"):
 * the old gateway serves a constant load ({@link RestartLoad}); a new process starts on the same
 * config (same port, SO_REUSEPORT), is waited for until `/readyz` on its admin port answers 200;
 * then the old one gets SIGTERM and drains. Used by tests/e2e/restart.test.ts and
 * bench/restart.ts, which set `net.ipv4.tcp_migrate_req` around it ({@link setMigrateReq}).
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { adminPortOf, type RunningGateway, startGateway } from "./gateway.ts";
import { md5 } from "./http.ts";
import { type LoadOptions, type LoadReport, RestartLoad } from "./restart_load.ts";
import type { NamedUpstream } from "./upstreams.ts";

const MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req";

/**
 * The current `net.ipv4.tcp_migrate_req` ("0"/"1"), or undefined where there is none. Read by
 * `cat`: Deno wants --allow-all for /proc, and the tests run with --allow-run instead.
 */
export function migrateReq(): string | undefined {
  try {
    return execFileSync("cat", [MIGRATE_REQ], { encoding: "utf8", stdio: "pipe" }).trim();
  } catch {
    return undefined;
  }
}

/** Sets `net.ipv4.tcp_migrate_req`; false when it cannot be written (not root, no such key). */
export function setMigrateReq(value: "0" | "1"): boolean {
  try {
    execFileSync("sh", ["-c", `echo ${value} > ${MIGRATE_REQ}`], { stdio: "pipe" });
    return migrateReq() === value;
  } catch {
    return false;
  }
}

/** A TCP port free right now on 127.0.0.1 (both processes are given it in their config). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The one config both processes run: a sticky upstream over `upstreams`, an admin listener. */
export function restartConfig(
  port: number,
  upstreams: readonly NamedUpstream[],
  workers = 1,
  tls?: { readonly certFile: string; readonly keyFile: string },
  /** A fixed admin port (both processes bind it, SO_REUSEPORT); default 0, each its own. */
  adminPort = 0,
): string {
  const serverTls = tls === undefined
    ? ""
    : `tls = { cert = "${tls.certFile}", key = "${tls.keyFile}" }\n`;
  return `
[server]
listen = "127.0.0.1:${port}"
workers = ${workers}
${serverTls}grace_period = "10s"

[admin]
listen = "127.0.0.1:${adminPort}"

[log]
access = "off"

[upstreams.app]
servers = [${upstreams.map((u) => `"${u.address}"`).join(", ")}]
[upstreams.app.sticky]
`;
}

/** The timings of a handover (ms since the load started), and the load's report. */
export interface HandoverResult {
  readonly report: LoadReport;
  /** When the new process answered `/readyz` 200. */
  readonly readyAt: number;
  /** When SIGTERM went to the old process. */
  readonly signalledAt: number;
  /** How long the old process took to exit after SIGTERM. */
  readonly drainMs: number;
  /** The old process's exit status. */
  readonly oldExit: number | null;
  /** Requests per second over the whole run. */
  readonly rate: number;
  /** Keep-alive client → the backend its first answer came from (its cookie names it). */
  readonly pinned: ReadonlyMap<number, string>;
  /** The new process, still serving (the caller stops it). */
  readonly next: RunningGateway;
}

/** How long each phase of a handover lasts. */
export interface HandoverTiming {
  /** Load on the old process alone before the new one starts. */
  readonly beforeMs: number;
  /** Load on both (new one ready) before SIGTERM goes to the old one. */
  readonly overlapMs: number;
  /** Load on the new one alone after the old one exited. */
  readonly afterMs: number;
}

/** Polls `GET /readyz` on `port` until it answers 200. */
async function waitReady(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      async (response) => {
        await response.body?.cancel();
        return response.status;
      },
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`/readyz on port ${port} not 200 within ${timeoutMs} ms`);
}

/**
 * Runs one handover from `old` (serving `config`) to a new process on the same config, under
 * `load`: resolves once the load has run `afterMs` on the new process alone.
 */
export async function handover(
  old: RunningGateway,
  config: string,
  load: Omit<LoadOptions, "port">,
  timing: HandoverTiming,
): Promise<HandoverResult> {
  const started = Date.now();
  const traffic = new RestartLoad({ ...load, port: old.port }).start();
  await sleep(timing.beforeMs);
  const next = await startGateway(config);
  await waitReady(await adminPortOf(next), 10_000);
  const readyAt = Date.now() - started;
  await sleep(timing.overlapMs);
  const signalledAt = Date.now() - started;
  const oldExit = await old.stop("SIGTERM", 20_000);
  const drainMs = Date.now() - started - signalledAt;
  await sleep(timing.afterMs);
  const report = await traffic.stop();
  const rate = Math.round(report.requests / ((Date.now() - started) / 1000));
  return { report, readyAt, signalledAt, drainMs, oldExit, rate, pinned: traffic.pinned, next };
}

/** Backend name → the cookie value the gateway gives it (md5 of the address text). */
export function cookiesOf(upstreams: readonly NamedUpstream[]): Map<string, string> {
  return new Map(upstreams.map((u) => [u.name, md5(u.address)]));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
