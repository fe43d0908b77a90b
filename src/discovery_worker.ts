/**
 * Entry point of the DNS discovery thread (src/discovery/thread.ts starts it when the config has
 * `dns` server entries): runs {@link Discovery} here, so questions, answers and their merge
 * allocate and run outside the serving thread's heap and event loop. It posts the answers when
 * they change, the figures after each question and each new set of entries, and its log events,
 * which the main thread writes.
 *
 * A second entry point beside src/worker.ts: both compilers are told of it (Makefile).
 *
 * @module
 */
import { Discovery } from "./discovery/discovery.ts";
import type { DiscoveryCommand, DiscoveryReport } from "./discovery/thread.ts";

declare const self: {
  onmessage: ((event: MessageEvent<DiscoveryCommand>) => void) | null;
  postMessage(message: DiscoveryReport): void;
};

let discovery: Discovery | undefined;

function post(message: DiscoveryReport): void {
  self.postMessage(message);
}

self.onmessage = async (event) => {
  const command = event.data;
  if (command.type === "start") {
    const started = new Discovery(command.settings, {
      onChange: () => {
        // The answers of first() are posted with "first"; changes after it, on their own.
        if (discovery !== undefined) {
          post({ type: "changed", answers: started.snapshot(), figures: started.figures() });
        }
      },
      onResolved: () => post({ type: "figures", figures: started.figures() }),
      log: (level, event, fields = {}) => post({ type: "log", level, event, fields }),
    });
    await started.first(command.firstTimeoutMs);
    discovery = started;
    post({ type: "first", answers: started.snapshot(), figures: started.figures() });
  } else if (command.type === "run") discovery?.run(command.serving);
  else if (command.type === "configure" && discovery !== undefined) {
    discovery.configure(command.settings);
    // A name no entry asks any more leaves the figures now, not at another name's next question
    // (there may be none).
    post({ type: "figures", figures: discovery.figures() });
  } else if (command.type === "stop") discovery?.stop();
};
