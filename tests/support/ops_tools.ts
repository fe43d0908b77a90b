/**
 * Operations tools the tests use: `promtool` (checks a metrics exposition) and `prometheus` (a
 * real server scraping the gateway), both from Debian's `prometheus` package. Found on PATH, or
 * installed with apt-get when missing (as bench/install.sh does: root, or sudo; `apt-get update`
 * once per process).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";

/** The absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  for (const dir of ["/usr/bin", "/usr/sbin", "/bin"]) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

let installing: Promise<void> | undefined;

/** Runs a command; resolves with its exit code and output (never rejects but for a spawn error). */
export function run(
  command: string,
  args: readonly string[],
  input?: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8");
    child.stderr?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => stdout += chunk);
    child.stderr?.on("data", (chunk: string) => stderr += chunk);
    child.once("error", reject);
    child.once("close", (code: number | null) => resolve({ code, stdout, stderr }));
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Installs Debian's `prometheus` package (promtool and prometheus) when either is missing. */
async function installPrometheus(): Promise<void> {
  if (which("promtool") !== undefined && which("prometheus") !== undefined) return;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const prefix: string[] = [];
  if (!root) {
    if (which("sudo") === undefined) {
      throw new Error(
        "promtool/prometheus missing: install Debian's prometheus package (apt-get install prometheus) or run as root",
      );
    }
    prefix.push("sudo", "-n");
  }
  const apt = async (args: string[]) => {
    const [command, ...rest] = [...prefix, "apt-get", ...args];
    const result = await run(command, rest, undefined, { DEBIAN_FRONTEND: "noninteractive" });
    if (result.code !== 0) {
      throw new Error(`apt-get ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    }
  };
  process.stderr.write("tests: installing Debian's prometheus package (promtool) with apt-get\n");
  await apt(["update", "-qq"]);
  await apt(["install", "-y", "-qq", "--no-install-recommends", "prometheus"]);
  // The package starts its own service where systemd runs: the tests start their own server.
  if (which("systemctl") !== undefined) {
    spawnSync("systemctl", ["disable", "--now", "prometheus"], { stdio: "ignore" });
  }
}

/** The path of a tool from the prometheus package, installing the package if needed. */
async function prometheusTool(name: "promtool" | "prometheus"): Promise<string> {
  if (which(name) === undefined) {
    installing ??= installPrometheus();
    await installing;
  }
  const path = which(name);
  if (path === undefined) throw new Error(`${name} not found after installing prometheus`);
  return path;
}

/** The path of `promtool`. */
export function promtool(): Promise<string> {
  return prometheusTool("promtool");
}

/** The path of the `prometheus` server. */
export function prometheus(): Promise<string> {
  return prometheusTool("prometheus");
}

/**
 * `promtool check metrics` on an exposition: resolves with its complaints ("" when none). It
 * reads the text on stdin and exits non-zero on a parse error or a lint problem.
 */
export async function checkMetrics(text: string): Promise<{ ok: boolean; output: string }> {
  const result = await run(await promtool(), ["check", "metrics"], text);
  return { ok: result.code === 0, output: `${result.stdout}${result.stderr}`.trim() };
}
