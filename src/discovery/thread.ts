/**
 * DNS discovery in a thread of its own (src/discovery_worker.ts runs {@link Discovery} there):
 * this is the main thread's side. It keeps the latest answers and figures the thread posted, so
 * {@link DiscoveryThread.snapshot} and {@link DiscoveryThread.figures} answer at once, and says
 * when the answers changed. While they stay the same, the serving thread does nothing for DNS
 * but take one small message of figures per question (docs/benchmarks.md: a 200-record answer's
 * question and merge in the serving thread cost more than their own CPU).
 *
 * @module
 */
import type { DiscoveryFigure, DiscoverySettings } from "./discovery.ts";
import type { Discovered } from "./types.ts";
import { type EventFields, type EventLevel, logEvent } from "../ops/log/events.ts";

/** What the main thread posts to the discovery thread. */
export type DiscoveryCommand =
  | { type: "start"; settings: DiscoverySettings; firstTimeoutMs: number }
  | { type: "run"; serving: Discovered }
  | { type: "configure"; settings: DiscoverySettings }
  | { type: "stop" };

/** What the discovery thread posts back. */
export type DiscoveryReport =
  | { type: "first"; answers: Discovered; figures: DiscoveryFigure[] }
  | { type: "changed"; answers: Discovered; figures: DiscoveryFigure[] }
  | { type: "figures"; figures: DiscoveryFigure[] }
  | { type: "log"; level: EventLevel; event: string; fields: EventFields };

/** How long past the first resolution's own timeout a thread that never answers is waited for. */
const START_MARGIN_MS = 5000;

/** The main thread's handle on the discovery thread (see the module doc). */
export class DiscoveryThread {
  readonly #worker: Worker;
  readonly #settings: DiscoverySettings;
  readonly #onChange: () => void;
  #answers: Discovered = new Map();
  #figures: readonly DiscoveryFigure[] = [];
  /** Settled by the thread's first answers, or its failure. */
  #first?: { resolve(): void; reject(error: Error): void };
  #stopped = false;

  /**
   * Drives `worker` (a new src/discovery_worker.ts) on `settings`. Nothing is asked before
   * {@link first}; `onChange` is told of every changed answer after it.
   */
  constructor(worker: Worker, settings: DiscoverySettings, onChange: () => void) {
    this.#worker = worker;
    this.#settings = settings;
    this.#onChange = onChange;
    worker.onmessage = (event: MessageEvent<DiscoveryReport>) => this.#receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      const error = new Error(`the DNS discovery thread failed: ${event.message}`);
      if (this.#first !== undefined) this.#first.reject(error);
      else logEvent("error", "dns_thread_failed", { error: error.message });
    };
  }

  /** Resolves every name once, for at most `timeoutMs`: what start waits for. Rejects when the
   * thread fails or does not answer. */
  first(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the DNS discovery thread did not answer in ${timeoutMs} ms`)),
        timeoutMs + START_MARGIN_MS,
      );
      this.#first = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
      this.#post({ type: "start", settings: this.#settings, firstTimeoutMs: timeoutMs });
    }).finally(() => this.#first = undefined);
  }

  /** Re-resolves on the intervals from now on; `serving`: the answers the running generation
   * was parsed with (an answer that came since is a change at once). */
  run(serving: Discovered): void {
    this.#post({ type: "run", serving });
  }

  /** A new generation serves: its entries and resolver from now on. */
  configure(settings: DiscoverySettings): void {
    this.#post({ type: "configure", settings });
  }

  /** The latest answers, by query: what a generation is parsed with. */
  snapshot(): Discovered {
    return this.#answers;
  }

  /** Every name's figures, as of its last question. */
  figures(): DiscoveryFigure[] {
    return [...this.#figures];
  }

  /** Stops the questions and the thread. */
  stop(): void {
    if (this.#stopped) return;
    this.#post({ type: "stop" });
    this.#stopped = true;
    this.#worker.terminate();
  }

  #receive(report: DiscoveryReport): void {
    if (this.#stopped) return;
    if (report.type === "log") {
      logEvent(report.level, report.event, report.fields);
      return;
    }
    this.#figures = report.figures;
    if (report.type === "figures") return;
    this.#answers = report.answers;
    if (report.type === "first") this.#first?.resolve();
    else this.#onChange();
  }

  #post(command: DiscoveryCommand): void {
    if (!this.#stopped) this.#worker.postMessage(command);
  }
}
