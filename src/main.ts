/**
 * sticky-gateway: the command line.
 *
 *   sticky-gateway --config FILE [--check] [--demo] [--watch]
 *   sticky-gateway import NGINX_CONF [-o FILE]
 *   sticky-gateway healthcheck --config FILE [--ready]
 *   sticky-gateway cookie --config FILE --upstream U (--server ID | --decode VALUE)
 *   sticky-gateway --version | --help
 *
 * Exit status: 0 normal stop, 1 could not start (e.g. port in use), 2 bad config or arguments.
 *
 * @module
 */
import process from "node:process";
import pkg from "../package.json" with { type: "json" };
import { ConfigError, type GatewayConfig } from "./config/mod.ts";
import { checkSummary } from "./config/summary.ts";
import { currentRuntime } from "./runtime/runtime.ts";
import { loadServableConfig, serve } from "./serve.ts";
import { IMPORT_USAGE, runImport } from "./import/cli.ts";
import { HEALTHCHECK_USAGE, runHealthcheck } from "./ops/admin/probe_cli.ts";
import { COOKIE_USAGE, runCookie } from "./sticky/cookie_cli.ts";

const USAGE =
  `sticky-gateway ${pkg.version}: an HTTP gateway that keeps each browser on one upstream server by cookie

Usage:
  sticky-gateway --config FILE [--check] [--demo] [--watch]
  sticky-gateway import NGINX_CONF [-o FILE]
  sticky-gateway healthcheck --config FILE [--ready]
  sticky-gateway cookie --config FILE --upstream U (--server ID | --decode VALUE)
  sticky-gateway --version | --help

Options:
  --config FILE   the TOML config (see config.example.toml)
  --check         validate the config, print a summary and exit (0 ok, 2 problems)
  --demo          also start demo upstream servers on the config's loopback addresses
  --watch         reload the config when its file changes (as SIGHUP and POST /api/v1/reload do)
  --version       print the version
  --help          print this help

Commands:
  ${IMPORT_USAGE}
                  (TOML on stdout or in FILE, written whole or not at all; warnings on stderr;
                  exit 0, or 2 when the nginx config cannot be read or parsed)
  ${HEALTHCHECK_USAGE}
  ${COOKIE_USAGE}
`;

interface Options {
  readonly config: string;
  readonly check: boolean;
  readonly demo: boolean;
  readonly watch: boolean;
}

function parseArguments(args: readonly string[]): Options | string {
  let config: string | undefined;
  let check = false;
  let demo = false;
  let watch = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--config" || arg === "-c") {
      config = args[++i];
      if (config === undefined) return "--config needs a file name";
    } else if (arg.startsWith("--config=")) config = arg.slice("--config=".length);
    else if (arg === "--check") check = true;
    else if (arg === "--demo") demo = true;
    else if (arg === "--watch") watch = true;
    else return `unknown argument "${arg}"`;
  }
  if (config === undefined) return "--config FILE is required";
  return { config, check, demo, watch };
}

async function main(args: readonly string[]): Promise<number> {
  if (args[0] === "import") return runImport(args.slice(1));
  if (args[0] === "healthcheck") return await runHealthcheck(args.slice(1));
  if (args[0] === "cookie") return runCookie(args.slice(1));
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.includes("--version")) {
    process.stdout.write(`sticky-gateway ${pkg.version}\n`);
    return 0;
  }
  const options = parseArguments(args);
  if (typeof options === "string") {
    process.stderr.write(`sticky-gateway: ${options}\n\n${USAGE}`);
    return 2;
  }
  const runtime = currentRuntime();
  let config: GatewayConfig;
  try {
    config = loadServableConfig(options.config, runtime);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  if (options.check) {
    process.stdout.write(`${checkSummary(config)}\n`);
    return 0;
  }
  return await serve(config, runtime, {
    file: options.config,
    demo: options.demo,
    watch: options.watch,
  });
}

process.exit(await main(process.argv.slice(2)));
