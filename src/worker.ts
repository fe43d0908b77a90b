/**
 * Entry point of a worker thread (`[server] workers` > 1): loads the same config file and
 * serves it on the port the main thread bound, with SO_REUSEPORT, on the memory the main thread
 * shares with every worker (server states and health, the round robin, metrics: ops/).
 *
 * Messages: in `{ type: "start", file, port, buffers, thread }`, `{ type: "reopen" }` (SIGUSR1),
 * `{ type: "reload", file, text, buffers, generation }`, `{ type: "reload_commit", generation }`,
 * `{ type: "reload_abort", generation }` and `{ type: "stop" }`; out `{ type: "ready" }`,
 * `{ type: "failed", message }`, `{ type: "reload_prepared", generation }`,
 * `{ type: "reloaded", generation }`, `{ type: "reload_failed", generation, message }` and
 * `{ type: "stopped" }`.
 *
 * A reload posts the config text the main thread validated (not the path: the file may have
 * changed again since) and the new generation's shared memory; the thread parses it through the
 * same checks and attaches to the memory (prepared), then swaps its gateway to it on the commit
 * (src/reload/).
 *
 * @module
 */
import { currentRuntime } from "./runtime/runtime.ts";
import { type Instance, startInstance } from "./runtime/instance.ts";
import { loadServableConfig } from "./serve.ts";
import { type SharedBuffers, ThreadOps } from "./ops/thread_ops.ts";
import { SharedState } from "./state/shared_state.ts";
import { Metrics } from "./ops/metrics/metrics.ts";
import type { GatewayConfig } from "./config/mod.ts";

/** What the main thread posts to a worker. */
export type WorkerCommand =
  | { type: "start"; file: string; port: number; buffers: SharedBuffers; thread: number }
  | { type: "reopen" }
  | { type: "reload"; file: string; text: string; buffers: SharedBuffers; generation: number }
  | { type: "reload_commit"; generation: number }
  | { type: "reload_abort"; generation: number }
  | { type: "stop" };
/** What a worker posts back. */
export type WorkerReport =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "reload_prepared"; generation: number }
  | { type: "reloaded"; generation: number }
  | { type: "reload_failed"; generation: number; message: string }
  | { type: "stopped" };

declare const self: {
  onmessage: ((event: MessageEvent<WorkerCommand>) => void) | null;
  postMessage(message: WorkerReport): void;
  close(): void;
};

let instance: Instance | undefined;
let ops: ThreadOps | undefined;
let thread = 0;
/** A reload prepared and waiting for its commit. */
let prepared:
  | { generation: number; config: GatewayConfig; state: SharedState; metrics: Metrics | undefined }
  | undefined;

self.onmessage = async (event) => {
  const command = event.data;
  if (command.type === "start") {
    try {
      // The same checks as the main thread's: the file may have changed since it started (then
      // attaching to the shared memory fails: another set of upstreams or servers).
      const runtime = currentRuntime();
      thread = command.thread;
      const config = loadServableConfig(command.file, runtime);
      ops = ThreadOps.attach(config, command.buffers, command.thread, runtime.stdioWrite);
      instance = await startInstance(config, runtime, {
        ops,
        main: false,
        address: { ...config.server.listen, port: command.port },
      });
      self.postMessage({ type: "ready" });
    } catch (error) {
      self.postMessage({ type: "failed", message: (error as Error).message });
    }
  } else if (command.type === "reopen") {
    ops?.accessLog?.reopen();
  } else if (command.type === "reload") {
    const { generation } = command;
    try {
      if (instance === undefined) throw new Error("not serving");
      const config = loadServableConfig(command.file, currentRuntime(), command.text);
      const state = SharedState.attach(config, command.buffers.state);
      const metrics = command.buffers.metrics &&
        Metrics.attach(config, command.buffers.metrics, thread);
      prepared = { generation, config, state, metrics };
      self.postMessage({ type: "reload_prepared", generation });
    } catch (error) {
      self.postMessage({ type: "reload_failed", generation, message: (error as Error).message });
    }
  } else if (command.type === "reload_commit") {
    const next = prepared;
    prepared = undefined;
    const { generation } = command;
    if (next === undefined || next.generation !== generation || instance === undefined) {
      self.postMessage({ type: "reload_failed", generation, message: "no reload prepared" });
      return;
    }
    try {
      await instance.reload(next.config, next.state, next.metrics);
      self.postMessage({ type: "reloaded", generation });
    } catch (error) {
      self.postMessage({ type: "reload_failed", generation, message: (error as Error).message });
    }
  } else if (command.type === "reload_abort") {
    if (prepared?.generation === command.generation) prepared = undefined;
  } else {
    await instance?.stop();
    self.postMessage({ type: "stopped" });
    self.close();
  }
};
