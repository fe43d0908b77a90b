/**
 * Processes for the bench: start pinned to a CPU, wait for a port, measure (peak RSS, CPU time)
 * over the whole process tree, stop with SIGTERM. Every wait is bounded.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import process from "node:process";

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  exited: boolean;
  exitCode: number | null;
  readonly exit: Promise<void>;
}

const running = new Set<Proc>();

export interface StartOptions {
  readonly cpu?: string;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
}

/** Starts `argv` (under `taskset -c cpu` when given), stdout and stderr to `log`. */
export function start(
  name: string,
  argv: readonly string[],
  log: string,
  options: StartOptions = {},
): Proc {
  const full = options.cpu === undefined ? [...argv] : ["taskset", "-c", options.cpu, ...argv];
  const fd = openSync(log, "a");
  const child = spawn(full[0], full.slice(1), {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  let resolveExit!: () => void;
  const exit = new Promise<void>((resolve) => (resolveExit = resolve));
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    log,
    exited: false,
    exitCode: null,
    exit,
  };
  child.on("exit", (code, signal) => {
    proc.exited = true;
    proc.exitCode = code ?? (signal ? 128 : null);
    running.delete(proc);
    resolveExit();
  });
  child.on("error", () => {
    proc.exited = true;
    running.delete(proc);
    resolveExit();
  });
  running.add(proc);
  return proc;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether something accepts TCP connections on host:port (one attempt, ≤ 1 s). */
export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Waits until host:port accepts connections; throws (with the log's tail) on timeout or exit. */
export async function waitPort(
  proc: Proc,
  host: string,
  port: number,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exited) {
      throw new Error(`${proc.name} exited (${proc.exitCode}) before listening: ${tail(proc.log)}`);
    }
    if (await portOpen(host, port)) return;
    await sleep(25);
  }
  throw new Error(
    `${proc.name} not listening on ${host}:${port} after ${timeoutMs} ms: ${tail(proc.log)}`,
  );
}

export function tail(file: string, lines = 6): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-lines).join(" | ");
  } catch {
    return "(no log)";
  }
}

/** SIGTERM, then SIGKILL to the whole group after `graceMs`. */
export async function stop(proc: Proc, graceMs = 5000): Promise<void> {
  if (proc.exited) return;
  try {
    process.kill(proc.pid, "SIGTERM");
  } catch { /* gone */ }
  await Promise.race([proc.exit, sleep(graceMs)]);
  if (!proc.exited) {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch { /* gone */ }
    await Promise.race([proc.exit, sleep(2000)]);
  }
}

/** Stops everything this module started (exit path). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stop(p, 2000)));
}

/** On SIGINT/SIGTERM: kill what was started, remove `tmp`, exit 130 (a bench cut short). */
export function cleanUpOnSignals(tmp: string): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      stopAllSync();
      rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    });
  }
}

export function stopAllSync(): void {
  for (const p of running) {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** `pid` and all its descendants (from /proc). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 10_000) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Sum of VmHWM (peak resident set, KiB) over the process tree. */
export function peakRssKiB(pid: number): number {
  return statusKiB(pid, /VmHWM:\s+(\d+) kB/);
}

/**
 * Sum of RssAnon (KiB) over the process tree, now: the memory the process itself holds (heap,
 * buffers), without the file pages of its executable that VmHWM also counts (`deno` is 91 MiB,
 * `bun` 102 MiB; the pages of it a load touches show up as resident).
 */
export function anonRssKiB(pid: number): number {
  return statusKiB(pid, /RssAnon:\s+(\d+) kB/);
}

/** The resident set now (VmRSS, KiB) summed over the process tree (peakRssKiB: its high mark). */
export function vmRssKiB(pid: number): number {
  return statusKiB(pid, /VmRSS:\s+(\d+) kB/);
}

/** One /proc/PID/status field (KiB) summed over the process tree. */
export function statusKiB(pid: number, field: RegExp): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const m = field.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) total += Number(m[1]);
    } catch { /* gone */ }
  }
  return total;
}

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) ||
  100;

/** utime + stime (seconds) summed over the process tree (each /proc/PID/stat covers its threads). */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
    } catch { /* gone */ }
  }
  return ticks / CLK_TCK;
}

/** Runs a command to completion (bounded), returns stdout; throws on failure. */
export function run(
  argv: readonly string[],
  options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): string {
  const r = spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    timeout: options.timeoutMs ?? 60_000,
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `${argv.join(" ")}: exit ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`,
    );
  }
  return r.stdout;
}

/** Like run() but resolves instead of blocking the event loop (needed while servers we run in-process answer). */
export function runAsync(
  argv: readonly string[],
  options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: String(error) });
    });
  });
}

/**
 * Per-CPU [busy, total, steal] jiffies from /proc/stat ("cpu0" is index 0). Busy is work done in
 * the guest; steal is time the hypervisor ran something else while this vCPU wanted to run.
 */
export type CpuSample = [number, number, number][];

export function cpuTimes(): CpuSample {
  const out: CpuSample = [];
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2].trim().split(/\s+/).map(
      Number,
    );
    const busy = user + nice + system + irq + softirq;
    out[Number(m[1])] = [busy, busy + idle + iowait + (steal || 0), steal || 0];
  }
  return out;
}

/** Busy (or, with `which` = 2, stolen) percentage of one CPU between two cpuTimes() samples. */
export function busyPct(
  before: CpuSample,
  after: CpuSample,
  cpu: string | undefined,
  which: 0 | 2 = 0,
): number | undefined {
  if (cpu === undefined || !/^\d+$/.test(cpu)) return undefined;
  const a = before[Number(cpu)];
  const b = after[Number(cpu)];
  if (!a || !b || b[1] === a[1]) return undefined;
  return (100 * (b[which] - a[which])) / (b[1] - a[1]);
}
