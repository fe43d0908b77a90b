/**
 * The gateway under test as a real process: from source on Deno or Bun, or the compiled binary,
 * as `GATEWAY` says (default `deno`, so one file can be run quickly by hand):
 *
 *   GATEWAY=deno   GATEWAY_DENO=<deno>     deno run … src/main.ts --config F   (from the repo root)
 *   GATEWAY=bun    GATEWAY_BUN=<bun>       bun src/main.ts --config F
 *   GATEWAY=binary GATEWAY_BINARY=<path>   <path> --config F
 *
 * Every process started here is remembered; `stopAllGateways()` (called from after hooks) kills
 * whatever is still running, so a failing test never leaves a gateway behind.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export type GatewayKind = "deno" | "bun" | "binary";
export type StopSignal = "SIGTERM" | "SIGINT" | "SIGKILL";

/** The repository root (tests/support/../..). */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

function gatewayKind(): GatewayKind {
  const value = process.env.GATEWAY ?? "deno";
  if (value !== "deno" && value !== "bun" && value !== "binary") {
    throw new Error(`GATEWAY=${value}: expected deno, bun or binary`);
  }
  return value;
}

/** How the gateway runs in this test run. */
export const GATEWAY: GatewayKind = gatewayKind();
/** The JavaScript runtime the gateway process runs on (the binary is Bun). */
export const GATEWAY_RUNTIME: "deno" | "bun" = GATEWAY === "deno" ? "deno" : "bun";

/** What the Makefile's `deno run` passes (DENO_GATEWAY); the unstable flags come from deno.json. */
const DENO_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--v8-flags=--max-semi-space-size=4",
];

/** The command that runs the gateway with `args`. */
export function gatewayCommand(args: readonly string[]): { command: string; args: string[] } {
  switch (GATEWAY) {
    case "deno":
      return {
        command: process.env.GATEWAY_DENO ?? "deno",
        args: ["run", ...DENO_PERMISSIONS, "src/main.ts", ...args],
      };
    case "bun":
      return { command: process.env.GATEWAY_BUN ?? "bun", args: ["src/main.ts", ...args] };
    case "binary":
      return {
        command: process.env.GATEWAY_BINARY ?? join(ROOT, "dist", "sticky-gateway"),
        args: [...args],
      };
  }
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Writes `text` to a fresh temp file and returns its path. */
export function writeTempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-e2e-"));
  tempDirs.add(dir);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Rejects after `ms` unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Exit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface RunningGateway {
  /** `http://127.0.0.1:PORT` (`https://` when the config has `[server] tls`) */
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  readonly configFile: string;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /**
   * Sends `signal` and waits (at most `timeoutMs`, then SIGKILL and reject) for the exit.
   * Resolves to the exit code (null if a signal ended it).
   */
  stop(signal?: StopSignal, timeoutMs?: number): Promise<number | null>;
}

function track(
  child: ChildProcess,
): { exited: Promise<Exit>; out: () => string; err: () => string } {
  live.add(child);
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    out += chunk;
  });
  child.stderr?.on("data", (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once("error", (error: Error) => {
      err += `spawn error: ${error.message}\n`;
      live.delete(child);
      resolve({ code: null, signal: "spawn-error" });
    });
    child.once("exit", (code: number | null, signal: string | null) => {
      live.delete(child);
      // Let the last output arrive before reporting (the streams close after "exit").
      setTimeout(() => resolve({ code, signal }), 20);
    });
  });
  return { exited, out: () => out, err: () => err };
}

/**
 * The config with `listen = "127.0.0.1:0"` added unless it sets `listen` itself, and
 * `workers = 1` unless it sets `workers`: tests that count requests per connection or time
 * their order want one thread (the round robin is one sequence for all workers, but which
 * thread takes a connection is the kernel's choice).
 */
export function withEphemeralListen(configToml: string): string {
  const lines: string[] = [];
  // Only [server]'s keys count ([admin] has a listen of its own).
  const server = /^\s*\[server\]\s*$([\s\S]*?)(?=^\s*\[|(?![\s\S]))/m.exec(configToml)?.[1] ?? "";
  if (!/^\s*listen\s*=/m.test(server)) lines.push(`listen = "127.0.0.1:0"`);
  if (!/^\s*workers\s*=/m.test(server)) lines.push("workers = 1");
  if (lines.length === 0) return configToml;
  if (/^\s*\[server\]\s*$/m.test(configToml)) {
    return configToml.replace(/^\s*\[server\]\s*$/m, (header) => `${header}\n${lines.join("\n")}`);
  }
  return `[server]\n${lines.join("\n")}\n\n${configToml}`;
}

const LISTENING = /listening on https?:\/\/(?:\[[^\]]+\]|[^:/\s]+):(\d+)/;
const ADMIN = /admin on http:\/\/(?:\[[^\]]+\]|[^:/\s]+):(\d+)/;

/**
 * The port of a gateway's admin listener, as it printed it once listening (configs in tests say
 * `[admin] listen = "127.0.0.1:0"`: a port picked before start could be taken meanwhile).
 */
export async function adminPortOf(gateway: RunningGateway, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = ADMIN.exec(gateway.stdout());
    if (found !== null) return Number(found[1]);
    if (Date.now() > deadline) throw new Error(`no admin line within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Starts the gateway on `configToml` (a `listen` on an ephemeral loopback port is added) and
 * resolves once it prints its listening line.
 */
export async function startGateway(
  configToml: string,
  extraArgs: readonly string[] = [],
  startTimeoutMs = 20_000,
): Promise<RunningGateway> {
  const configFile = writeTempFile("gateway.toml", withEphemeralListen(configToml));
  const { command, args } = gatewayCommand(["--config", configFile, ...extraArgs]);
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const { exited, out, err } = track(child);
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      const check = () => {
        const match = LISTENING.exec(out());
        if (match !== null) resolve(Number(match[1]));
      };
      child.stdout?.on("data", check);
      check();
      exited.then((exit) =>
        reject(
          new Error(
            `gateway exited (${exit.code ?? exit.signal}) before listening:\n${err()}${out()}`,
          ),
        )
      );
    }),
    startTimeoutMs,
    `gateway start (${command} ${args.join(" ")})`,
  ).catch((error: Error) => {
    child.kill("SIGKILL");
    throw error;
  });
  const stop = async (
    signal: StopSignal = "SIGTERM",
    timeoutMs = 10_000,
  ): Promise<number | null> => {
    // process.kill, not child.kill: after child.kill(), Deno's node:child_process reports the
    // signal sent instead of the exit status the process chose (Deno 2.9.6).
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, signal);
      } catch {
        // already gone
      }
    }
    try {
      return (await withTimeout(exited, timeoutMs, `gateway exit after ${signal}`)).code;
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    }
  };
  return {
    url: `${/listening on https:/.test(out()) ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    process: child,
    configFile,
    stdout: out,
    stderr: err,
    exited,
    stop,
  };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the gateway once with `args` (e.g. `--check`, a bad config) and collects its output. */
export async function runGateway(args: readonly string[], timeoutMs = 20_000): Promise<RunResult> {
  const { command, args: fullArgs } = gatewayCommand(args);
  const child = spawn(command, fullArgs, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const { exited, out, err } = track(child);
  try {
    const exit = await withTimeout(exited, timeoutMs, `${command} ${fullArgs.join(" ")}`);
    return { code: exit.code, stdout: out(), stderr: err() };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
}

/** Kills every gateway process still running and removes the temp configs. */
export async function stopAllGateways(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    waits.push(
      new Promise((resolve) => {
        child.once("exit", resolve);
        setTimeout(resolve, 3000);
      }),
    );
    child.kill("SIGKILL");
  }
  await Promise.all(waits);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
