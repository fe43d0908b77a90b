/**
 * Entry point of a worker thread (`[server] workers` > 1): loads the same config file and
 * serves it on the port the main thread bound, with SO_REUSEPORT. Sticky routing needs no shared
 * state: every thread maps a cookie to the same server.
 *
 * Messages: in `{ type: "start", file, port }` and `{ type: "stop" }`;
 * out `{ type: "ready" }`, `{ type: "failed", message }` and `{ type: "stopped" }`.
 *
 * @module
 */
import { currentRuntime } from "./runtime/runtime.ts";
import { type Instance, startInstance } from "./runtime/instance.ts";
import { loadServableConfig } from "./serve.ts";

export type WorkerCommand = { type: "start"; file: string; port: number } | { type: "stop" };
export type WorkerReport = { type: "ready" } | { type: "failed"; message: string } | {
  type: "stopped";
};

declare const self: {
  onmessage: ((event: MessageEvent<WorkerCommand>) => void) | null;
  postMessage(message: WorkerReport): void;
  close(): void;
};

let instance: Instance | undefined;

self.onmessage = async (event) => {
  const command = event.data;
  if (command.type === "start") {
    try {
      // The same checks as the main thread's: the file may have changed since it started.
      const runtime = currentRuntime();
      const config = loadServableConfig(command.file, runtime);
      instance = await startInstance(config, runtime, {
        ...config.server.listen,
        port: command.port,
      });
      self.postMessage({ type: "ready" });
    } catch (error) {
      self.postMessage({ type: "failed", message: (error as Error).message });
    }
  } else {
    await instance?.stop();
    self.postMessage({ type: "stopped" });
    self.close();
  }
};
