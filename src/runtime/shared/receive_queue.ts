/**
 * Bytes a push-style socket (`Bun.connect`, `node:net`) has delivered and the pull-style
 * {@link ByteStream.read} has not taken yet, with backpressure: past a high-water mark the socket
 * is paused until the reader catches up.
 *
 * @module
 */

/** Bytes queued before the socket is paused (backpressure toward the upstream). 256 KiB, not the
 * 1 MiB it was: a slow reader's connection holds less (Bun: 4.5 → 3.2 MiB per slow reader in the
 * bench's streams phase) at the same 1 GiB throughput (docs/benchmarks.md). */
const HIGH_WATER = 256 << 10;

/** A read waiting for bytes: into a buffer (`read`) or as a chunk of at most `max` (`readChunk`). */
interface Waiting {
  readonly into: Uint8Array | undefined;
  readonly max: number;
  resolve(value: number | Uint8Array | null): void;
  reject(error: Error): void;
}

export class ReceiveQueue {
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #ended = false;
  #error: Error | undefined;
  /** The read waiting for bytes (one at a time): what arrives goes to it straight away. */
  #waiting: Waiting | undefined;
  /** Told of anything that arrives while the stream idles in a pool (ByteStream.watchIdle). */
  #onActivity: (() => void) | undefined;

  constructor(readonly pause: () => void, readonly resume: () => void) {}

  get error(): Error | undefined {
    return this.#error;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Calls `onActivity` once when anything arrives (at once if something already has). */
  watch(onActivity: () => void): void {
    if (this.#chunks.length > 0 || this.#ended || this.#error !== undefined) return onActivity();
    this.#onActivity = onActivity;
  }

  unwatch(): void {
    this.#onActivity = undefined;
  }

  push(chunk: Uint8Array): void {
    this.#activity();
    const waiting = this.#waiting;
    if (waiting === undefined) return this.#enqueue(chunk);
    // A read is waiting (the queue is empty then): the bytes go to it without queueing.
    this.#waiting = undefined;
    const into = waiting.into;
    if (into !== undefined) {
      const n = Math.min(chunk.length, into.length);
      into.set(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (n < chunk.length) this.#enqueue(chunk.subarray(n));
      waiting.resolve(n);
    } else if (chunk.length <= waiting.max) {
      waiting.resolve(chunk);
    } else {
      this.#enqueue(chunk.subarray(waiting.max));
      waiting.resolve(chunk.subarray(0, waiting.max));
    }
  }

  end(): void {
    this.#ended = true;
    this.#activity();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(null);
  }

  fail(error: Error): void {
    this.#error = error;
    this.#activity();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }

  /** Copies queued bytes into `into`; null once the socket ended and everything was read. */
  read(into: Uint8Array): Promise<number | null> {
    // Bytes already queued (the usual case on a busy connection): no waiting at all.
    if (this.#chunks.length > 0) return Promise.resolve(this.#copy(into));
    return this.#wait(into, into.length) as Promise<number | null>;
  }

  /** Hands over the next queued chunk, or its first `max` bytes; null as for `read`. */
  readChunk(max: number): Promise<Uint8Array | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(max));
    return this.#wait(undefined, max) as Promise<Uint8Array | null>;
  }

  /** Nothing queued: the end, the socket's error, or a read that waits for bytes. */
  #wait(into: Uint8Array | undefined, max: number): Promise<number | Uint8Array | null> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#waiting = { into, max, resolve, reject };
    });
  }

  #enqueue(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.pause();
    }
  }

  #copy(into: Uint8Array): number {
    const head = this.#chunks[0];
    const n = Math.min(head.length, into.length);
    into.set(n === head.length ? head : head.subarray(0, n));
    if (n === head.length) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#taken(n);
    return n;
  }

  #take(max: number): Uint8Array {
    const head = this.#chunks[0];
    let chunk = head;
    if (head.length <= max) this.#chunks.shift();
    else {
      chunk = head.subarray(0, max);
      this.#chunks[0] = head.subarray(max);
    }
    this.#taken(chunk.length);
    return chunk;
  }

  #taken(n: number): void {
    this.#queued -= n;
    if (this.#paused && this.#queued <= HIGH_WATER) {
      this.#paused = false;
      this.resume();
    }
  }

  #activity(): void {
    const onActivity = this.#onActivity;
    if (onActivity !== undefined) {
      this.#onActivity = undefined;
      onActivity();
    }
  }
}
