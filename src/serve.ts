/**
 * The process lifecycle: the one validation both `--check` and start go through, then serving
 * (demo upstreams, the main thread's instance, worker threads), signals and the graceful stop.
 *
 * @module
 */
import { warmReloadPath } from "./reload/warm.ts";
import process from "node:process";
import pkg from "../package.json" with { type: "json" };
import {
  ConfigError,
  formatDuration,
  type GatewayConfig,
  loadConfigFile,
  parseConfig,
} from "./config/mod.ts";
import { startDemoUpstreams } from "./demo.ts";
import { unsupportedFetchTls } from "./proxy/fetch.ts";
import type { Listener, Runtime } from "./runtime/runtime.ts";
import { type Instance, startInstance } from "./runtime/instance.ts";
import type { WorkerCommand, WorkerReport } from "./worker.ts";
import { type SharedBuffers, ThreadOps } from "./ops/thread_ops.ts";
import { reopenLogsOnSignal } from "./ops/main_ops.ts";
import { flushEvents, logEvent } from "./ops/log/events.ts";
import { Reloader } from "./reload/reloader.ts";
import { watchConfig } from "./reload/watch.ts";
import type { Discovered } from "./discovery/types.ts";
import { discoverAtStart } from "./discovery/start.ts";
import { discoverySettings } from "./discovery/discovery.ts";

/**
 * Every check a config gets before it serves: the file → a valid snapshot, then what this
 * runtime can honour (the TLS keys its `fetch` lacks under `upstream_client = "fetch"`). Used by
 * `--check`, by start, by each worker thread and by every reload, so `--check` fails exactly where
 * start or a reload would. `text`: the file's text as read already (a reload posts the text it
 * validated to the workers: the file may have changed since). Throws {@link ConfigError}.
 */
export function loadServableConfig(
  file: string,
  runtime: Runtime,
  text?: string,
  discovered?: Discovered,
): GatewayConfig {
  const config = text === undefined
    ? loadConfigFile(file, discovered)
    : parseConfig(text, file, discovered);
  if (config.server.upstreamClient === "fetch") {
    const problems = unsupportedFetchTls(config, runtime.fetchOptions);
    if (problems.length > 0) throw new ConfigError(config.file, problems);
  }
  return config;
}

/** How to serve, from the command line. */
export interface ServeOptions {
  /** The config file, which worker threads load again. */
  readonly file: string;
  /** Also start demo upstreams on the config's loopback addresses. */
  readonly demo: boolean;
  /** Reload when the config file changes (`--watch`). */
  readonly watch?: boolean;
}

/**
 * Serves `config` until SIGTERM/SIGINT, then stops gracefully. Resolves to the exit status:
 * 0 after a normal stop, 1 when it cannot start, 2 for a config the runtime refuses.
 */
export async function serve(
  config: GatewayConfig,
  runtime: Runtime,
  options: ServeOptions,
): Promise<number> {
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
  // SIGHUP reloads (its default action would end the process): until serving, it is ignored.
  const reloading: { reloader?: Reloader } = {};
  process.on("SIGHUP", () => {
    if (!stopping) void reloading.reloader?.reload("SIGHUP");
  });

  // DNS discovery (src/discovery/): the first answers before anything listens; the config is
  // parsed again with them. A change later is a reload of the same text with new answers.
  let discovered;
  try {
    discovered = await discoverAtStart(
      config,
      options.file,
      (text, answers) => loadServableConfig(options.file, runtime, text, answers),
      // A second entry point beside worker.ts (Makefile): resolved next to this file.
      () => new Worker(new URL("./discovery_worker.ts", import.meta.url).href, { type: "module" }),
      () => void reloading.reloader?.rediscover(),
    );
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    process.stderr.write(
      `sticky-gateway: cannot start DNS discovery: ${(error as Error).message}\n`,
    );
    return 1;
  }
  if (discovered !== undefined) config = discovered.config;
  const discovery = discovered?.discovery;

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
  let instance: Instance | undefined;
  let workers: Worker[] = [];
  let ops: ThreadOps;
  try {
    // The memory all threads share (server states, round robin, metrics), made for all of them.
    ops = ThreadOps.create(config, config.server.workers, runtime.stdioWrite);
  } catch (error) {
    // The config check found the log's directory; the file itself may still be refused.
    process.stderr.write(
      `sticky-gateway: cannot open the access log ${config.log.file}: ${
        (error as Error).message
      }\n`,
    );
    return 1;
  }
  const reloader = new Reloader({
    file: options.file,
    runtime,
    load: loadServableConfig,
    ops,
    instance: () => instance,
    workers: () => workers,
    ...(discovery === undefined ? {} : {
      discovered: () => discovery.snapshot(),
      text: discovered!.text,
      onReloaded: (next: GatewayConfig) => discovery.configure(discoverySettings(next)),
    }),
  });
  const control = discovery === undefined
    ? reloader.control
    : { ...reloader.control, discovery: () => discovery.figures() };
  try {
    instance = await startInstance(config, runtime, { ops, main: true, control });
  } catch (error) {
    // The config was validated whole before (loadServableConfig): what fails here is a socket.
    const message = (error as Error).message;
    process.stderr.write(
      message.startsWith("cannot listen")
        ? `sticky-gateway: ${message}\n`
        : `sticky-gateway: cannot listen on ${config.server.listen.text}: ${message}\n`,
    );
    return 1;
  }
  reopenLogsOnSignal(ops, () => workers);
  const { host, port } = instance.listener;
  try {
    workers = await startWorkers(
      options.file,
      port,
      config.server.workers - 1,
      ops.buffers,
      discovered?.answers,
    );
  } catch (error) {
    process.stderr.write(
      `sticky-gateway: cannot start worker threads: ${(error as Error).message}\n`,
    );
    return 1;
  }
  // Reloads and the watch are on before the listening line says the gateway is ready: a change
  // made right after it is seen.
  reloading.reloader = reloader;
  discovery?.run(discovered!.answers);
  const watch = options.watch === true
    ? watchConfig(options.file, () => void reloader.reload("watch"))
    : undefined;
  const shown = host.includes(":") ? `[${host}]` : host;
  console.log(
    `sticky-gateway ${pkg.version} (${runtime.name} ${runtime.version}, ${config.server.workers} worker${
      config.server.workers > 1 ? "s" : ""
    }) listening on ${config.server.tls === undefined ? "http" : "https"}://${shown}:${port}`,
  );
  if (instance.admin !== undefined) {
    const admin = instance.admin;
    const adminHost = admin.host.includes(":") ? `[${admin.host}]` : admin.host;
    console.log(
      `sticky-gateway: admin on http://${adminHost}:${admin.port} (status page /status, metrics /metrics)`,
    );
  }
  logEvent("info", "started", {
    version: pkg.version,
    runtime: runtime.name,
    workers: config.server.workers,
    listen: `${shown}:${port}`,
    admin: instance.admin && `${instance.admin.host}:${instance.admin.port}`,
  });

  // The first reloads run optimised code (src/reload/warm.ts).
  void warmReloadPath(() =>
    loadServableConfig(options.file, runtime, undefined, discovery?.snapshot())
  );

  shutdown.serving = async (signal) => {
    watch?.close();
    discovery?.stop();
    const grace = ops.config.server.gracePeriodMs;
    console.log(
      `sticky-gateway: ${signal}: finishing in-flight requests (up to ${formatDuration(grace)})`,
    );
    await Promise.all([instance.stop(), stopWorkers(workers, grace)]);
    await Promise.all(demoListeners.map((l) => l.stop(0)));
    await flushEvents();
  };
  return await stopped;
}

/** Starts `count` worker threads serving the config on `port`; resolves once all listen. */
async function startWorkers(
  file: string,
  port: number,
  count: number,
  buffers: SharedBuffers,
  discovered?: Discovered,
): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    workers.push(worker);
    const report = await new Promise<WorkerReport>((resolve) => {
      worker.onmessage = (event: MessageEvent<WorkerReport>) => resolve(event.data);
      worker.onerror = (event) => resolve({ type: "failed", message: String(event.message) });
      worker.postMessage(
        { type: "start", file, port, buffers, thread: i + 1, discovered } satisfies WorkerCommand,
      );
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
      // Only its "stopped": a reload's answer may still come in meanwhile.
      worker.onmessage = (event: MessageEvent<WorkerReport>) => {
        if (event.data.type !== "stopped") return;
        clearTimeout(timer);
        resolve();
      };
      worker.postMessage({ type: "stop" } satisfies WorkerCommand);
    }).then(() => worker.terminate())
  ));
}
