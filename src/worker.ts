/**
 * Entry point of a worker thread (`[server] workers` > 1): loads the same config file and
 * serves it on the port the main thread bound, with SO_REUSEPORT, on the memory the main thread
 * shares with every worker (server states and health, the round robin, metrics: ops/).
 *
 * Messages: in `{ type: "start", file, port, buffers, thread }`, `{ type: "reopen" }` (SIGUSR1)
 * and `{ type: "stop" }`; out `{ type: "ready" }`, `{ type: "failed", message }` and
 * `{ type: "stopped" }`.
 *
 * @module
 */
import { currentRuntime } from "./runtime/runtime.ts";
import { type Instance, startInstance } from "./runtime/instance.ts";
import { loadServableConfig } from "./serve.ts";
import { type SharedBuffers, ThreadOps } from "./ops/thread_ops.ts";

export type WorkerCommand =
  | { type: "start"; file: string; port: number; buffers: SharedBuffers; thread: number }
  | { type: "reopen" }
  | { type: "stop" };
export type WorkerReport = { type: "ready" } | { type: "failed"; message: string } | {
  type: "stopped";
};

declare const self: {
  onmessage: ((event: MessageEvent<WorkerCommand>) => void) | null;
  postMessage(message: WorkerReport): void;
  close(): void;
};

let instance: Instance | undefined;
let ops: ThreadOps | undefined;

self.onmessage = async (event) => {
  const command = event.data;
  if (command.type === "start") {
    try {
      // The same checks as the main thread's: the file may have changed since it started (then
      // attaching to the shared memory fails: another set of upstreams or servers).
      const runtime = currentRuntime();
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
  } else {
    await instance?.stop();
    self.postMessage({ type: "stopped" });
    self.close();
  }
};
