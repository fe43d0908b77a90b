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
import {
  ConfigError,
  formatDuration,
  type GatewayConfig,
  loadConfigFile,
  type UpstreamTls,
} from "./config/mod.ts";
import { formatSize } from "./config/size.ts";
import { startDemoUpstreams } from "./demo.ts";
import { currentRuntime, type Listener } from "./runtime/runtime.ts";
import { type Instance, startInstance } from "./runtime/instance.ts";
import type { WorkerCommand, WorkerReport } from "./worker.ts";

const USAGE =
  `sticky-gateway ${pkg.version}: an HTTP gateway that keeps each browser on one upstream server by cookie

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

function describeUpstreamTls(tls: UpstreamTls): string {
  const verify = tls.insecure
    ? "certificate NOT verified (insecure)"
    : `certificate verified against ${tls.caFile ?? "the runtime's root CAs"}`;
  return `https: ${verify}${tls.sni === undefined ? "" : `, sni ${tls.sni}`}`;
}

function summary(config: GatewayConfig): string {
  const s = config.server;
  const lines = [
    `${config.file}: ok`,
    `listen ${s.listen.text} (workers ${s.workers}, connect_timeout ${
      formatDuration(s.connectTimeoutMs)
    }, read_timeout ${formatDuration(s.readTimeoutMs)}, grace_period ${
      formatDuration(s.gracePeriodMs)
    }, upstream_client ${s.upstreamClient})`,
    `limits: idle_timeout ${
      s.idleTimeoutMs === 0 ? "0 (none)" : formatDuration(s.idleTimeoutMs)
    }, client_max_body_size ${
      s.clientMaxBodySize === 0 ? "0 (none)" : formatSize(s.clientMaxBodySize)
    }, client_max_header_size ${formatSize(s.clientMaxHeaderSize)}`,
  ];
  if (s.tls !== undefined) {
    lines.push(
      `tls cert ${s.tls.certFile}, key ${s.tls.keyFile} (HTTPS; HTTP/2 where the runtime offers it)`,
    );
  }
  for (const upstream of config.upstreams.values()) {
    const sticky = upstream.sticky;
    lines.push(
      `upstream ${upstream.name}: ${
        sticky === undefined
          ? "round robin (no sticky)"
          : `sticky cookie "${sticky.name}" (${sticky.mode}${
            sticky.noFallback ? ", no_fallback" : ""
          })`
      }`,
    );
    if (upstream.tls !== undefined) lines.push(`  ${describeUpstreamTls(upstream.tls)}`);
    for (const server of upstream.servers) {
      const flags = [
        `weight=${server.weight}`,
        `max_fails=${server.maxFails}`,
        `fail_timeout=${formatDuration(server.failTimeoutMs)}`,
      ];
      if (server.backup) flags.push("backup");
      if (server.down) flags.push("down");
      const cookie = sticky === undefined ? "" : `  ${sticky.name}=${server.cookieValue}`;
      lines.push(`  ${server.address.text}  ${flags.join(" ")}${cookie}`);
    }
  }
  lines.push("routes:");
  for (const route of config.routes.list) {
    lines.push(
      `  ${route.host ?? "*"}${route.path} -> ${route.upstream.name}${
        route.noFallback ? " (no_fallback)" : ""
      }`,
    );
  }
  return lines.join("\n");
}

/** Starts `count` worker threads serving the config on `port`; resolves once all listen. */
async function startWorkers(file: string, port: number, count: number): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    workers.push(worker);
    const report = await new Promise<WorkerReport>((resolve) => {
      worker.onmessage = (event: MessageEvent<WorkerReport>) => resolve(event.data);
      worker.onerror = (event) => resolve({ type: "failed", message: String(event.message) });
      worker.postMessage({ type: "start", file, port } satisfies WorkerCommand);
    });
    if (report.type === "failed") throw new Error(`worker ${i + 1}: ${report.message}`);
  }
  return workers;
}

/** Asks each worker to finish its in-flight requests and waits (bounded) before terminating it. */
async function stopWorkers(workers: readonly Worker[], graceMs: number): Promise<void> {
  await Promise.all(workers.map((worker) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs + 1000);
      worker.onmessage = () => {
        clearTimeout(timer);
        resolve();
      };
      worker.postMessage({ type: "stop" } satisfies WorkerCommand);
    }).then(() => worker.terminate())
  ));
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

  // Signal handlers go in before anything listens: a SIGTERM that arrives while starting (or right
  // after the "listening" line, before a lazily installed handler would be) still exits 0.
  const shutdown: { serving?: (signal: string) => Promise<void> } = {};
  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      if (shutdown.serving === undefined) process.exit(0);
      await shutdown.serving(signal);
      resolve(0);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });

  const runtime = currentRuntime();
  const demoListeners: Listener[] = [];
  if (options.demo) {
    try {
      demoListeners.push(...await startDemoUpstreams(config, runtime));
    } catch (error) {
      process.stderr.write(
        `sticky-gateway: cannot start demo upstreams: ${(error as Error).message}\n`,
      );
      return 1;
    }
  }
  let instance: Instance;
  let workers: Worker[];
  try {
    instance = await startInstance(config, runtime);
  } catch (error) {
    // A config this runtime cannot honour (e.g. a TLS option its fetch lacks): exit 2 as well.
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    process.stderr.write(
      `sticky-gateway: cannot listen on ${config.server.listen.text}: ${
        (error as Error).message
      }\n`,
    );
    return 1;
  }
  const { host, port } = instance.listener;
  try {
    workers = await startWorkers(options.config!, port, config.server.workers - 1);
  } catch (error) {
    process.stderr.write(
      `sticky-gateway: cannot start worker threads: ${(error as Error).message}\n`,
    );
    return 1;
  }
  const shown = host.includes(":") ? `[${host}]` : host;
  console.log(
    `sticky-gateway ${pkg.version} (${runtime.name} ${runtime.version}, ${config.server.workers} worker${
      config.server.workers > 1 ? "s" : ""
    }) listening on ${config.server.tls === undefined ? "http" : "https"}://${shown}:${port}`,
  );

  shutdown.serving = async (signal) => {
    console.log(
      `sticky-gateway: ${signal}: finishing in-flight requests (up to ${
        formatDuration(config.server.gracePeriodMs)
      })`,
    );
    await Promise.all([instance.stop(), stopWorkers(workers, config.server.gracePeriodMs)]);
    await Promise.all(demoListeners.map((l) => l.stop(0)));
  };
  return await stopped;
}

process.exit(await main(process.argv.slice(2)));
