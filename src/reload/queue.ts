/**
 * Reloads one at a time: a reload asked for while one applies waits for it and is then run once
 * for everyone who asked meanwhile (a storm of SIGHUPs or file events is one more reload, which
 * reads the file as it is by then). Never two interleaved.
 *
 * @module
 */

/**
 * Runs `task` serialized and coalesced: at most one run under way and one pending. A run waits
 * `delay()` ms before it starts (a throttle); while it waits it is still pending, so whoever asks
 * meanwhile joins it.
 *
 * @example
 * ```ts
 * import { ReloadQueue } from "./queue.ts";
 *
 * let runs = 0;
 * const queue = new ReloadQueue(async () => ++runs);
 * const answers = await Promise.all([queue.request(), queue.request(), queue.request()]);
 * // The first runs at once; the two asked while it ran share the next run.
 * if (answers.join() !== "1,2,2" || runs !== 2) throw new Error(answers.join());
 * ```
 */
export class ReloadQueue<T> {
  readonly #task: () => Promise<T>;
  readonly #delay: () => number;
  #running: Promise<T> | undefined;
  #pending: Promise<T> | undefined;

  /** `delay` is read when the previous run has ended (or at once when none runs). */
  constructor(task: () => Promise<T>, delay: () => number = () => 0) {
    this.#task = task;
    this.#delay = delay;
  }

  /** The result of a run that starts after this call: at once, or the one pending. */
  request(): Promise<T> {
    // A run pending is joined even once the run before it has ended: it starts a few
    // microtasks later, and a run started here meanwhile would run beside it.
    if (this.#pending !== undefined) return this.#pending;
    const running = this.#running;
    if (running === undefined && this.#delay() <= 0) return this.#start();
    this.#pending = (running ?? Promise.resolve()).then(noop, noop)
      .then(() => sleep(this.#delay()))
      .then(() => {
        this.#pending = undefined;
        return this.#start();
      });
    return this.#pending;
  }

  /** A run is under way (between two runs, one may still be pending: see `request`). */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  #start(): Promise<T> {
    // A task that throws at once rejects its run like one that fails later.
    const run: Promise<T> = Promise.resolve().then(this.#task).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }
}

function noop(): void {}

function sleep(ms: number): Promise<void> | void {
  if (ms > 0) return new Promise((resolve) => setTimeout(resolve, ms));
}
