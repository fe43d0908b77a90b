/**
 * sticky-gateway: the command line.
 *
 *   sticky-gateway --config FILE [--check] [--demo]
 *   sticky-gateway --version | --help
 *
 * Exit status: 0 normal stop, 1 could not start (e.g. port in use), 2 bad config or arguments.
 *
 * @module
 */
import process from "node:process";
import pkg from "../package.json" with { type: "json" };
import { ConfigError, formatDuration, type GatewayConfig, loadConfigFile } from "./config/mod.ts";
import { startDemoUpstreams } from "./demo.ts";
import { Gateway } from "./proxy/gateway.ts";
import { FetchTransport } from "./proxy/fetch.ts";
import { Http1Transport } from "./proxy/http1.ts";
import type { Transport } from "./proxy/transport.ts";
import { currentRuntime, type Listener, type Runtime } from "./server/runtime.ts";

const USAGE = `sticky-gateway ${pkg.version}: an HTTP gateway that keeps each browser on one upstream server by cookie

Usage:
  sticky-gateway --config FILE [--check] [--demo]
  sticky-gateway --version | --help

Options:
  --config FILE   the TOML config (see config.example.toml)
  --check         validate the config, print a summary and exit (0 ok, 2 problems)
  --demo          also start demo upstream servers on the config's loopback addresses
  --version       print the version
  --help          print this help
`;

interface Options {
  readonly config?: string;
  readonly check: boolean;
  readonly demo: boolean;
}

function parseArguments(args: readonly string[]): Options | string {
  let config: string | undefined;
  let check = false;
  let demo = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--config" || arg === "-c") {
      config = args[++i];
      if (config === undefined) return "--config needs a file name";
    } else if (arg.startsWith("--config=")) config = arg.slice("--config=".length);
    else if (arg === "--check") check = true;
    else if (arg === "--demo") demo = true;
    else return `unknown argument "${arg}"`;
  }
  if (config === undefined) return "--config FILE is required";
  return { config, check, demo };
}

function summary(config: GatewayConfig): string {
  const s = config.server;
  const lines = [
    `${config.file}: ok`,
    `listen ${s.listen.text} (connect_timeout ${formatDuration(s.connectTimeoutMs)}, read_timeout ${formatDuration(s.readTimeoutMs)}, grace_period ${formatDuration(s.gracePeriodMs)}, upstream_client ${s.upstreamClient})`,
  ];
  for (const upstream of config.upstreams.values()) {
    const sticky = upstream.sticky;
    lines.push(
      `upstream ${upstream.name}: ${
        sticky === undefined ? "round robin (no sticky)" : `sticky cookie "${sticky.name}" (${sticky.mode}${sticky.noFallback ? ", no_fallback" : ""})`
      }`,
    );
    for (const server of upstream.servers) {
      const flags = [`weight=${server.weight}`, `max_fails=${server.maxFails}`, `fail_timeout=${formatDuration(server.failTimeoutMs)}`];
      if (server.backup) flags.push("backup");
      if (server.down) flags.push("down");
      const cookie = sticky === undefined ? "" : `  ${sticky.name}=${server.cookieValue}`;
      lines.push(`  ${server.address.text}  ${flags.join(" ")}${cookie}`);
    }
  }
  lines.push("routes:");
  for (const route of config.routes.list) {
    lines.push(`  ${route.host ?? "*"}${route.path} -> ${route.upstream.name}${route.noFallback ? " (no_fallback)" : ""}`);
  }
  return lines.join("\n");
}

function createTransport(config: GatewayConfig, runtime: Runtime): Transport {
  const client = config.server.upstreamClient;
  // Our HTTP/1.1 client is the default on both runtimes: byte-exact (Deno's fetch is not) and
  // faster than either runtime's fetch (docs/benchmarks.md).
  return client === "fetch" ? new FetchTransport(runtime.fetchOptions) : new Http1Transport(runtime.connect);
}

async function main(args: readonly string[]): Promise<number> {
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
  let config: GatewayConfig;
  try {
    config = loadConfigFile(options.config!);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  if (options.check) {
    process.stdout.write(`${summary(config)}\n`);
    return 0;
  }

  const runtime = currentRuntime();
  const listeners: Listener[] = [];
  if (options.demo) {
    try {
      listeners.push(...await startDemoUpstreams(config, runtime));
    } catch (error) {
      process.stderr.write(`sticky-gateway: cannot start demo upstreams: ${(error as Error).message}\n`);
      return 1;
    }
  }
  const transport = createTransport(config, runtime);
  const gateway = new Gateway(config, transport, {
    onUpstreamError: (server, code, detail) => console.error(`sticky-gateway: upstream ${server.address.text}: ${code}: ${detail}`),
  });
  let listener: Listener;
  try {
    listener = await runtime.listen(config.server.listen, gateway.handle);
  } catch (error) {
    process.stderr.write(`sticky-gateway: cannot listen on ${config.server.listen.text}: ${(error as Error).message}\n`);
    return 1;
  }
  const shown = listener.host.includes(":") ? `[${listener.host}]` : listener.host;
  console.log(`sticky-gateway ${pkg.version} (${runtime.name} ${runtime.version}) listening on http://${shown}:${listener.port}`);

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`sticky-gateway: ${signal}: finishing in-flight requests (up to ${formatDuration(config.server.gracePeriodMs)})`);
      await listener.stop(config.server.gracePeriodMs);
      await Promise.all(listeners.map((l) => l.stop(0)));
      transport.close();
      resolve(0);
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

process.exit(await main(process.argv.slice(2)));
