/**
 * Entry point of a worker thread (`[server] workers` > 1): loads the same config file and
 * serves it on the port the main thread bound, with SO_REUSEPORT, on the memory the main thread
 * shares with every worker (server states and health, the round robin, metrics: ops/).
 *
 * Messages: in `{ type: "start", file, port, buffers, thread }`, `{ type: "reopen" }` (SIGUSR1),
 * `{ type: "reload", file, text, attempt }`, `{ type: "reload_commit", attempt, buffers, port }`,
 * `{ type: "reload_abort", attempt }` and `{ type: "stop" }`; out `{ type: "ready" }`,
 * `{ type: "failed", message }`, `{ type: "reload_prepared", attempt }`,
 * `{ type: "reloaded", attempt }`, `{ type: "reload_failed", attempt, message }` and
 * `{ type: "stopped" }`.
 *
 * A reload posts the config text the main thread reads and checks (not the path: the file may
 * change again meanwhile); the thread parses it through the same checks (prepared), and on the
 * commit, which comes only once the main thread found it good, attaches to the new generation's
 * shared memory and swaps its gateway to it (src/reload/).
 *
 * @module
 */
import { warmReloadPath } from "./reload/warm.ts";
import { currentRuntime } from "./runtime/runtime.ts";
import { type Instance, startInstance } from "./runtime/instance.ts";
import { loadServableConfig } from "./serve.ts";
import { type SharedBuffers, ThreadOps } from "./ops/thread_ops.ts";
import { SharedState } from "./state/shared_state.ts";
import { Metrics } from "./ops/metrics/metrics.ts";
import type { GatewayConfig } from "./config/mod.ts";
import { listenerChanged } from "./reload/changes.ts";
import type { Discovered } from "./discovery/types.ts";

/** What the main thread posts to a worker. */
export type WorkerCommand =
  | {
    type: "start";
    file: string;
    port: number;
    buffers: SharedBuffers;
    thread: number;
    /** The DNS answers the main thread's config was parsed with (src/discovery/). */
    discovered?: Discovered;
  }
  | { type: "reopen" }
  | { type: "reload"; file: string; text: string; attempt: number; discovered?: Discovered }
  | { type: "reload_commit"; attempt: number; buffers: SharedBuffers; port?: number }
  | { type: "reload_abort"; attempt: number }
  | { type: "stop" };
/** What a worker posts back. */
export type WorkerReport =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "reload_prepared"; attempt: number }
  | { type: "reloaded"; attempt: number }
  | { type: "reload_failed"; attempt: number; message: string }
  | { type: "stopped" };

declare const self: {
  onmessage: ((event: MessageEvent<WorkerCommand>) => void) | null;
  postMessage(message: WorkerReport): void;
  close(): void;
};

let instance: Instance | undefined;
let ops: ThreadOps | undefined;
let thread = 0;
/** A reload parsed and waiting for its commit. */
let prepared: { attempt: number; config: GatewayConfig } | undefined;

self.onmessage = async (event) => {
  const command = event.data;
  if (command.type === "start") {
    try {
      // The same checks as the main thread's: the file may have changed since it started (then
      // attaching to the shared memory fails: another set of upstreams or servers).
      const runtime = currentRuntime();
      thread = command.thread;
      const config = loadServableConfig(command.file, runtime, undefined, command.discovered);
      ops = ThreadOps.attach(config, command.buffers, command.thread, runtime.stdioWrite);
      instance = await startInstance(config, runtime, {
        ops,
        main: false,
        address: { ...config.server.listen, port: command.port },
      });
      self.postMessage({ type: "ready" });
      // As the main thread: the first reloads run optimised code (src/reload/warm.ts).
      void warmReloadPath(() =>
        loadServableConfig(command.file, runtime, undefined, command.discovered)
      );
    } catch (error) {
      self.postMessage({ type: "failed", message: (error as Error).message });
    }
  } else if (command.type === "reopen") {
    ops?.accessLog?.reopen();
  } else if (command.type === "reload") {
    const { attempt } = command;
    prepared = undefined;
    try {
      if (instance === undefined) throw new Error("not serving");
      const config = loadServableConfig(
        command.file,
        currentRuntime(),
        command.text,
        command.discovered,
      );
      prepared = { attempt, config };
      self.postMessage({ type: "reload_prepared", attempt });
    } catch (error) {
      self.postMessage({ type: "reload_failed", attempt, message: (error as Error).message });
    }
  } else if (command.type === "reload_commit") {
    const next = prepared;
    prepared = undefined;
    const { attempt, buffers } = command;
    try {
      if (next === undefined || next.attempt !== attempt || instance === undefined) {
        throw new Error("no reload prepared");
      }
      // A listener that moves: bound on the port the main thread bound (port 0 picks one).
      if (ops !== undefined && listenerChanged(ops.config, next.config)) {
        await instance.bindListener(next.config, command.port);
      }
      const state = SharedState.attach(next.config, buffers.state);
      const metrics = buffers.metrics && Metrics.attach(next.config, buffers.metrics, thread);
      await instance.reload(next.config, state, metrics);
      self.postMessage({ type: "reloaded", attempt });
    } catch (error) {
      self.postMessage({ type: "reload_failed", attempt, message: (error as Error).message });
    }
  } else if (command.type === "reload_abort") {
    if (prepared?.attempt === command.attempt) prepared = undefined;
  } else {
    await instance?.stop();
    self.postMessage({ type: "stopped" });
    self.close();
  }
};
