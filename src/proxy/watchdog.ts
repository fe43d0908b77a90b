/**
 * Watching upstream exchanges for a client that went away and for `read_timeout`, with one
 * interval timer for all of them instead of a timer and an abort listener per request.
 *
 * Why: most exchanges end within a millisecond, and what a per-request watch costs is paid by
 * every one of them: a timer, an abort listener and, on Deno, the client's `AbortSignal` itself
 * (the runtime makes it on first read and watches the connection for it: ~15-25 MiB more peak
 * RSS under the bench's load, docs/benchmarks.md). So the client's signal is read only once an
 * exchange has lasted a tick (50 ms), or beside a new upstream connection, which costs far more:
 * a client that leaves a slow exchange is noticed within a tick, a fast exchange never looks.
 * Both runtimes report a client that left before the signal was first read (Bun at once, Deno a
 * moment later).
 *
 * @module
 */

/** What has the client's abort signal: the client's `Request`, read lazily. */
export interface ClientSide {
  readonly signal: AbortSignal;
}

/** How often the watchdog looks; also the resolution of `read_timeout`. */
export const TICK_MS = 50;

/** One exchange under watch, from the request's start until its response body is done. */
export class Watch {
  /** The client went away (its signal aborted). */
  clientGone = false;
  /** `read_timeout` passed while waiting. */
  timedOut = false;
  readonly #startedAt = Date.now();
  #lastProgress = this.#startedAt;
  /** `read_timeout` while the upstream is being waited for; 0 while not. */
  #waitingMs = 0;
  #signal: AbortSignal | undefined;
  /** The abort listener, made when the client is first watched (most exchanges never are). */
  #onClientGone: (() => void) | undefined;

  constructor(
    readonly watchdog: Watchdog,
    readonly client: ClientSide | undefined,
    /** Cuts the exchange (closes the upstream connection). */
    readonly onStop: () => void,
  ) {}

  /** The upstream is being waited for (the response head): `read_timeout` applies from now. */
  waitFor(readTimeoutMs: number): void {
    this.#lastProgress = Date.now();
    this.#waitingMs = readTimeoutMs;
  }

  /** The wait is over (the head arrived or the exchange failed). */
  waited(): void {
    this.#waitingMs = 0;
  }

  /** A piece of request body moved: the wait starts again (a long upload is not cut). */
  touch(): void {
    this.#lastProgress = Date.now();
  }

  /** Watches the client from now on (the watchdog does so once an exchange lasts a tick). */
  watchClient(): void {
    if (this.#signal !== undefined || this.client === undefined) return;
    this.#signal = this.client.signal;
    const onClientGone = this.#onClientGone = () => {
      this.clientGone = true;
      this.onStop();
    };
    if (this.#signal.aborted) return onClientGone();
    this.#signal.addEventListener("abort", onClientGone, { once: true });
  }

  /** Called by the watchdog each tick. */
  check(now: number): void {
    if (this.#signal === undefined && now - this.#startedAt >= TICK_MS) this.watchClient();
    if (this.clientGone) return;
    if (this.#waitingMs > 0 && now - this.#lastProgress >= this.#waitingMs) {
      this.#waitingMs = 0;
      this.timedOut = true;
      this.onStop();
    }
  }

  /** Where this watch sits in its watchdog's list; -1 once it is not watched. */
  slot = -1;

  /** The exchange is over: no longer watched. */
  end(): void {
    if (this.#onClientGone !== undefined) {
      this.#signal?.removeEventListener("abort", this.#onClientGone);
    }
    this.watchdog.delete(this);
  }
}

/**
 * The one timer of a transport: ticks while exchanges are under watch, stops when none are. The
 * watched exchanges are a list in which each knows its slot: taking one out moves the last into
 * its place (no hashing per exchange, as a Set's add and delete cost).
 */
export class Watchdog {
  readonly #watched: Watch[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Starts watching an exchange; `onStop` cuts it (client gone or timed out). */
  watch(client: ClientSide | undefined, onStop: () => void): Watch {
    const watch = new Watch(this, client, onStop);
    watch.slot = this.#watched.length;
    this.#watched.push(watch);
    this.#timer ??= setInterval(this.#tick, TICK_MS);
    return watch;
  }

  delete(watch: Watch): void {
    const slot = watch.slot;
    if (slot < 0) return;
    watch.slot = -1;
    const list = this.#watched;
    const last = list.pop()!;
    if (last !== watch) {
      list[slot] = last;
      last.slot = slot;
    }
  }

  /** Exchanges under watch, for tests. */
  get size(): number {
    return this.#watched.length;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick = (): void => {
    // Stopped at the first tick with nothing to watch, not at every exchange's end: under load
    // the set empties and fills again constantly, and one interval is cheaper than many.
    const list = this.#watched;
    if (list.length === 0) return this.stop();
    const now = Date.now();
    // From the end: a watch that a check ends moves the last (already checked) into its slot,
    // and one added meanwhile waits for the next tick. A watch checked twice is harmless.
    for (let i = list.length - 1; i >= 0; i--) list[i]?.check(now);
  };
}
