/**
 * `sticky-gateway cookie --config FILE --upstream U (--server ID | --decode VALUE)`: the value a
 * client of a server carries (for pinning oneself while debugging), or what a value says.
 * Exit 0; with `--decode`, 1 when the gateway would not route by the value (it names no server,
 * does not verify, or has expired); 2 for bad arguments, a bad config or an unknown name.
 *
 * @module
 */
import process from "node:process";
import { ConfigError, loadConfigFile } from "../config/mod.ts";
import { decodeCookie, decodedText, serverCookie } from "./inspect.ts";

/** Usage of the subcommand, for `--help`. */
export const COOKIE_USAGE =
  "sticky-gateway cookie --config FILE --upstream U (--server ID | --decode VALUE)   the cookie value a client of server ID carries (a fresh token in token mode), or what VALUE says: its server, whether it verifies (key id), its times, what the gateway does with it";

/** Runs the subcommand (its arguments after `cookie`); resolves to the exit status. */
export function runCookie(args: readonly string[], nowMs = Date.now()): number {
  const options = parse(args);
  if (typeof options === "string") return fail(2, `cookie: ${options}\n${COOKIE_USAGE}`);
  let upstream;
  try {
    upstream = loadConfigFile(options.config).upstreams.get(options.upstream);
  } catch (error) {
    if (error instanceof ConfigError) return fail(2, error.message);
    throw error;
  }
  if (upstream === undefined) {
    return fail(2, `cookie: no upstream ${JSON.stringify(options.upstream)} in ${options.config}`);
  }
  if (options.server !== undefined) {
    const cookie = serverCookie(upstream, options.server, nowMs);
    if (typeof cookie === "string") return fail(2, `cookie: ${cookie}`);
    process.stdout.write(`${cookie.value}\n`);
    return 0;
  }
  const decoded = decodeCookie(upstream, options.decode!, nowMs);
  if (typeof decoded === "string") return fail(2, `cookie: ${decoded}`);
  process.stdout.write(`${decodedText(decoded)}\n`);
  const routed = ["hit", "rotated", "legacy"].includes(decoded.outcome);
  return routed ? 0 : 1;
}

interface CookieOptions {
  readonly config: string;
  readonly upstream: string;
  readonly server?: string;
  readonly decode?: string;
}

function parse(args: readonly string[]): CookieOptions | string {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].startsWith("--") && args[i].includes("=")
      ? [args[i].slice(0, args[i].indexOf("=")), args[i].slice(args[i].indexOf("=") + 1)]
      : [args[i], undefined];
    const name = flag === "-c" ? "--config" : flag;
    if (!["--config", "--upstream", "--server", "--decode"].includes(name)) {
      return `unknown argument ${JSON.stringify(args[i])}`;
    }
    const value = inline ?? args[++i];
    if (value === undefined) return `${name} needs a value`;
    values.set(name, value);
  }
  const config = values.get("--config");
  const upstream = values.get("--upstream");
  if (config === undefined) return "--config FILE is required";
  if (upstream === undefined) return "--upstream NAME is required";
  const server = values.get("--server");
  const decode = values.get("--decode");
  if ((server === undefined) === (decode === undefined)) {
    return "give one of --server ID and --decode VALUE";
  }
  return { config, upstream, server, decode };
}

function fail(status: number, message: string): number {
  process.stderr.write(`${message}\n`);
  return status;
}
