/**
 * Bytes a push-style socket (`Bun.connect`, `node:net`) has delivered and the pull-style
 * {@link ByteStream.read} has not taken yet, with backpressure: past a high-water mark the socket
 * is paused until the reader catches up.
 *
 * @module
 */

/** Bytes queued before the socket is paused (backpressure toward the upstream). */
const HIGH_WATER = 1 << 20;

export class ReceiveQueue {
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #ended = false;
  #error: Error | undefined;
  #wakeReader: (() => void) | undefined;
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
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.pause();
    }
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  fail(error: Error): void {
    this.#error = error;
    this.#wake();
  }

  /** Copies queued bytes into `into`; null once the socket ended and everything was read. */
  read(into: Uint8Array): Promise<number | null> {
    // Bytes already queued (the usual case on a busy connection): no async frame to wait in.
    if (this.#chunks.length > 0) return Promise.resolve(this.#copy(into));
    return this.#readLater(into);
  }

  async #readLater(into: Uint8Array): Promise<number | null> {
    if (!(await this.#arrived())) return null;
    return this.#copy(into);
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

  /** Hands over the next queued chunk, or its first `max` bytes; null as for `read`. */
  readChunk(max: number): Promise<Uint8Array | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(max));
    return this.#readChunkLater(max);
  }

  async #readChunkLater(max: number): Promise<Uint8Array | null> {
    if (!(await this.#arrived())) return null;
    return this.#take(max);
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

  /** Waits for a chunk: true when one is queued, false at the end; throws the socket's error. */
  async #arrived(): Promise<boolean> {
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return false;
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    return true;
  }

  #taken(n: number): void {
    this.#queued -= n;
    if (this.#paused && this.#queued <= HIGH_WATER) {
      this.#paused = false;
      this.resume();
    }
  }

  #wake(): void {
    const onActivity = this.#onActivity;
    if (onActivity !== undefined) {
      this.#onActivity = undefined;
      onActivity();
    }
    const wake = this.#wakeReader;
    this.#wakeReader = undefined;
    wake?.();
  }
}
