/**
 * A buffered log writer that never blocks the event loop and never fails its caller.
 *
 * Lines are queued and written in batches (after `flushIntervalMs`, or at once past
 * `flushBytes`) with `node:fs` `write` on a non-blocking file descriptor: a pipe or terminal that
 * is not read fast enough answers EAGAIN instead of stalling the process (Deno runs `fs.write`
 * on the calling thread, so a blocking descriptor would stall it), and the batch is tried again a
 * little later. While more than `maxPendingBytes` wait, new lines are dropped and counted: a slow
 * or failing destination costs lines, never requests or unbounded memory.
 *
 * stdout and stderr get a descriptor of their own, opened from `/proc/self/fd/N` with O_NONBLOCK
 * (a new open file description of the same pipe or terminal, so the flag does not change what
 * `console.log` uses); when that cannot be done (a socket, e.g. journald, no /proc, or Deno's
 * permissions) or when the descriptor is a regular file, the process's own descriptor is used as
 * it is: through the runtime's {@link StdioWrite} when given (off the event loop), else `fs.write`.
 *
 * Writes to a non-blocking pipe are cut at line boundaries into pieces of at most PIPE_BUF (4096)
 * bytes: a piece that size is written whole or not at all (so EAGAIN never leaves half a line
 * whose length the runtime did not report: Deno's does not), and the lines of several writers
 * (worker threads) sharing the pipe never interleave. Writes to a regular file, and blocking
 * writes through {@link StdioWrite} (which report what they wrote), are up to 64 KiB: a tenth of
 * the calls (each costs several µs there); lines of two threads can then interleave only while
 * the reader lags so far that the pipe is full.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, write as fsWrite, writeSync } from "node:fs";
import { clearTimeout, setTimeout } from "node:timers";

/**
 * Writes to the process's stdout (1) or stderr (2) without blocking the event loop; resolves to
 * the bytes written. The runtime seam provides it where the writer cannot make a non-blocking
 * descriptor of its own: Deno opens no `/proc/self/fd/N` without `--allow-all`, and its `node:fs`
 * writes run on the calling thread, so there `Deno.stdout.write` (done off the event loop) is the
 * way. Without it, the process's descriptor is written with `node:fs` `write`.
 */
export type StdioWrite = (fd: 1 | 2, bytes: Uint8Array) => Promise<number>;

/** Where a writer writes: the process's stdout or stderr, or a file (created, appended to). */
export type LogDestination = "stdout" | "stderr" | { readonly file: string };

/** Tuning of an {@link AccessLogWriter}; the defaults suit an access log. */
export interface LogWriterOptions {
  /** Queued lines are written at the latest this long after the first of them (default 100). */
  readonly flushIntervalMs?: number;
  /** Queued lines are written at once when they pass this many bytes (default 32 KiB). */
  readonly flushBytes?: number;
  /** Lines are dropped while this many bytes wait (queued or being written; default 1 MiB). */
  readonly maxPendingBytes?: number;
  /** How long to wait before trying again after EAGAIN (default 20 ms). */
  readonly retryMs?: number;
  /** Called with the number of lines lost (dropped, or failed to write). */
  readonly onDrop?: (lines: number) => void;
  /** Called once when writing starts failing (not for EAGAIN), again only after a success. */
  readonly onError?: (error: Error) => void;
  /** For stdout/stderr when no non-blocking descriptor can be opened (see {@link StdioWrite}). */
  readonly stdio?: StdioWrite;
}

/** At most this much in one write() to a pipe: written whole or not at all (POSIX PIPE_BUF). */
const PIPE_PIECE = 4096;
const FILE_PIECE = 64 * 1024;

/** A piece of encoded lines waiting to be written. */
interface Piece {
  readonly bytes: Uint8Array;
  /** Lines that end in this piece (what is lost if it fails). */
  readonly lines: number;
  /** Bytes already written. */
  offset: number;
}

interface Descriptor {
  readonly fd: number;
  /** Ours to close (not the process's fd 1 or 2). */
  readonly owned: boolean;
  /** A regular file: bigger pieces; no EAGAIN. */
  readonly regular: boolean;
  /** The process's stdout or stderr as it is (may block): written through `stdio` if given. */
  readonly stdio?: 1 | 2;
}

/**
 * The non-blocking buffered writer of the access log (and of `logEvent`'s lines).
 *
 * @example
 * ```ts
 * import { mkdtempSync, readFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { AccessLogWriter } from "./writer.ts";
 *
 * const file = join(mkdtempSync(join(tmpdir(), "log-")), "access.log");
 * const log = new AccessLogWriter({ file });
 * log.write("one");
 * log.write("two");
 * await log.close();
 * if (readFileSync(file, "utf8") !== "one\ntwo\n") throw new Error("written");
 * ```
 */
export class AccessLogWriter {
  readonly #destination: LogDestination;
  readonly #flushIntervalMs: number;
  readonly #flushBytes: number;
  readonly #maxPendingBytes: number;
  readonly #retryMs: number;
  readonly #onDrop: ((lines: number) => void) | undefined;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #stdio: StdioWrite | undefined;

  #descriptor: Descriptor;
  /** A descriptor replaced by reopen() while a write on it was in flight: closed after it. */
  #retired: Descriptor | undefined;
  #queue: string[] = [];
  #queuedBytes = 0;
  #pieces: Piece[] = [];
  #pieceBytes = 0;
  #writing = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Waiting to try a piece again after EAGAIN. */
  #retry: ReturnType<typeof setTimeout> | undefined;
  #failing = false;
  #closed = false;
  #idle: (() => void)[] = [];
  #dropped = 0;
  #written = 0;

  /** Opens the destination; throws (at start, not per line) when a file cannot be opened. */
  constructor(destination: LogDestination, options: LogWriterOptions = {}) {
    this.#destination = destination;
    this.#flushIntervalMs = options.flushIntervalMs ?? 100;
    this.#flushBytes = options.flushBytes ?? 32 * 1024;
    this.#maxPendingBytes = options.maxPendingBytes ?? 1024 * 1024;
    this.#retryMs = options.retryMs ?? 20;
    this.#onDrop = options.onDrop;
    this.#onError = options.onError;
    this.#stdio = options.stdio;
    this.#descriptor = openDestination(destination);
  }

  /** Lines dropped or failed so far (the buffer was full, or the destination failed). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Lines written so far. */
  get written(): number {
    return this.#written;
  }

  /** Bytes waiting (queued or being written); about, counting a character as a byte. */
  get pendingBytes(): number {
    return this.#queuedBytes + this.#pieceBytes;
  }

  /** Queues one line (without its newline); never throws, never waits. */
  write(line: string): void {
    if (this.#closed) return;
    const size = line.length + 1;
    if (this.#queuedBytes + this.#pieceBytes + size > this.#maxPendingBytes) {
      this.#drop(1);
      return;
    }
    this.#queue.push(line);
    this.#queuedBytes += size;
    if (this.#queuedBytes >= this.#flushBytes) this.#flush();
    else if (this.#timer === undefined && !this.#busy()) {
      this.#timer = setTimeout(this.#onTimer, this.#flushIntervalMs);
      this.#timer.unref();
    }
  }

  /**
   * Writes the line at once when nothing waits and the descriptor cannot block (what `logEvent`
   * wants: a line before an exit is not lost); otherwise queues it as {@link write} does.
   */
  writeNow(line: string): void {
    const descriptor = this.#descriptor;
    if (
      this.#closed || this.#busy() || this.#queue.length > 0 || !nonBlocking(descriptor)
    ) {
      this.write(line);
      return;
    }
    const pieces = cut([line], this.#pieceLimit(descriptor));
    while (pieces.length > 0) {
      const piece = pieces[0];
      try {
        piece.offset += writeSync(descriptor.fd, piece.bytes, piece.offset);
      } catch {
        break; // EAGAIN or a failure: the asynchronous path retries or reports it
      }
      if (piece.offset < piece.bytes.length) break;
      pieces.shift();
      this.#written += piece.lines;
    }
    if (pieces.length === 0) return;
    for (const piece of pieces) this.#pieceBytes += piece.bytes.length - piece.offset;
    this.#pieces.push(...pieces);
    this.#pump();
  }

  /**
   * Opens the file again (after logrotate moved it: SIGUSR1) and writes what follows there;
   * stdout and stderr are left as they are. On failure the old file is kept and `onError` told.
   */
  reopen(): void {
    if (this.#closed || typeof this.#destination === "string") return;
    let next: Descriptor;
    try {
      next = openDestination(this.#destination);
    } catch (error) {
      this.#onError?.(error as Error);
      return;
    }
    const old = this.#descriptor;
    this.#descriptor = next;
    if (this.#writing) this.#retired = old;
    else closeDescriptor(old);
  }

  /**
   * Writes everything queued, then closes the file. Resolves when done, or after `timeoutMs`
   * (what is still waiting then is counted as dropped): a stuck pipe does not hold up an exit.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    if (this.#busy()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idle.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#retry);
    this.#timer = this.#retry = undefined;
    const lost = this.#pieces.reduce((sum, piece) => sum + piece.lines, 0) + this.#queue.length;
    this.#pieces = [];
    this.#queue = [];
    this.#pieceBytes = this.#queuedBytes = 0;
    if (lost > 0) this.#drop(lost);
    // A write still in flight closes its descriptor when it returns (see #afterWrite).
    if (this.#writing) this.#retired = this.#descriptor;
    else closeDescriptor(this.#descriptor);
  }

  /** Resolves when everything queued so far has been written (or dropped). For tests. */
  flushed(): Promise<void> {
    this.#flush();
    if (!this.#busy()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** The largest write for the descriptor (see the module doc). */
  #pieceLimit(descriptor: Descriptor): number {
    const blockingStdio = descriptor.stdio !== undefined && this.#stdio !== undefined;
    return descriptor.regular || blockingStdio ? FILE_PIECE : PIPE_PIECE;
  }

  /** A write is in flight, waits for a retry, or pieces wait. */
  #busy(): boolean {
    return this.#writing || this.#retry !== undefined || this.#pieces.length > 0;
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#flush();
  };

  #drop(lines: number): void {
    this.#dropped += lines;
    this.#onDrop?.(lines);
  }

  /** Moves the queued lines into pieces and starts writing them. */
  #flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length > 0) {
      const pieces = cut(this.#queue, this.#pieceLimit(this.#descriptor));
      for (const piece of pieces) {
        this.#pieces.push(piece);
        this.#pieceBytes += piece.bytes.length;
      }
      this.#queue = [];
      this.#queuedBytes = 0;
    }
    this.#pump();
  }

  #pump(): void {
    if (this.#writing || this.#retry !== undefined) return;
    const descriptor = this.#descriptor;
    if (descriptor.owned && !descriptor.regular) {
      this.#pumpNow(descriptor.fd);
      return;
    }
    const piece = this.#pieces[0];
    if (piece === undefined) {
      this.#wakeIdle();
      return;
    }
    this.#writing = true;
    if (descriptor.stdio !== undefined && this.#stdio !== undefined) {
      const bytes = piece.bytes.subarray(piece.offset);
      this.#stdio(descriptor.stdio, bytes).then(
        (count) => this.#afterWrite(piece, null, count),
        (error: Error) => this.#afterWrite(piece, error, 0),
      );
      return;
    }
    fsWrite(
      descriptor.fd,
      piece.bytes,
      piece.offset,
      piece.bytes.length - piece.offset,
      null,
      (error: Error | null, count: number) => this.#afterWrite(piece, error, count),
    );
  }

  /**
   * Writes the pieces with writeSync on a pipe or terminal we opened with O_NONBLOCK: each call
   * returns at once (EAGAIN when the reader is behind), and costs a syscall, not the callback
   * and promise of an asynchronous write (several µs each: most of the log's cost on a pipe).
   */
  #pumpNow(fd: number): void {
    for (let piece = this.#pieces[0]; piece !== undefined; piece = this.#pieces[0]) {
      let error: Error | null = null;
      let count = 0;
      try {
        count = writeSync(fd, piece.bytes, piece.offset, piece.bytes.length - piece.offset);
      } catch (thrown) {
        error = thrown as Error;
      }
      if (!this.#settle(piece, error, count)) return;
    }
    // Lines queued while a retry waited set no timer (the writer was busy): write them now.
    if (this.#queue.length > 0) this.#flush();
    else this.#wakeIdle();
  }

  #afterWrite(piece: Piece, error: Error | null, count: number): void {
    this.#writing = false;
    if (this.#retired !== undefined) {
      closeDescriptor(this.#retired);
      this.#retired = undefined;
    }
    if (this.#closed) return;
    if (!this.#settle(piece, error, count)) return;
    if (this.#pieces.length === 0 && this.#queue.length > 0) this.#flush();
    else this.#pump();
  }

  /**
   * Accounts for one write of the first piece; false when it is to be tried again later (EAGAIN:
   * the reader is slow; nothing of it was written, see the module doc).
   */
  #settle(piece: Piece, error: Error | null, count: number): boolean {
    if (
      (error !== null && (error as { code?: string }).code === "EAGAIN") ||
      (error === null && count <= 0)
    ) {
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        this.#pump();
      }, this.#retryMs);
      this.#retry.unref();
      return false;
    }
    if (error !== null) {
      this.#pieces.shift();
      this.#pieceBytes -= piece.bytes.length - piece.offset;
      this.#drop(piece.lines);
      if (!this.#failing) this.#onError?.(error);
      this.#failing = true;
      return true;
    }
    this.#failing = false;
    piece.offset += count;
    this.#pieceBytes -= count;
    if (piece.offset >= piece.bytes.length) {
      this.#pieces.shift();
      this.#written += piece.lines;
    }
    return true;
  }

  #wakeIdle(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

const encoder = new TextEncoder();

/**
 * The lines, each followed by a newline, encoded and cut into pieces of at most `limit` bytes at
 * line boundaries (a longer line alone, in `limit`-byte parts).
 */
function cut(lines: readonly string[], limit: number): Piece[] {
  const pieces: Piece[] = [];
  let text = "";
  let count = 0;
  const push = () => {
    if (count === 0) return;
    const bytes = encoder.encode(text);
    if (bytes.length <= limit) pieces.push({ bytes, lines: count, offset: 0 });
    else {
      for (let start = 0; start < bytes.length; start += limit) {
        const end = Math.min(bytes.length, start + limit);
        pieces.push({
          bytes: bytes.subarray(start, end),
          lines: end === bytes.length ? count : 0,
          offset: 0,
        });
      }
    }
    text = "";
    count = 0;
  };
  for (const line of lines) {
    // Characters, not bytes: a piece of non-ASCII text may come out longer and is cut above.
    if (count > 0 && text.length + line.length + 1 > limit) push();
    text += `${line}\n`;
    count++;
  }
  push();
  return pieces;
}

const PROCESS_FD = { stdout: 1, stderr: 2 } as const;

function openDestination(destination: LogDestination): Descriptor {
  if (typeof destination !== "string") {
    const fd = openSync(
      destination.file,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK,
      0o640,
    );
    return { fd, owned: true, regular: isRegular(fd) };
  }
  const fd = PROCESS_FD[destination];
  if (isRegular(fd)) return { fd, owned: false, regular: true };
  try {
    const own = openSync(
      `/proc/self/fd/${fd}`,
      constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK,
    );
    return { fd: own, owned: true, regular: false };
  } catch {
    // A socket (journald), no /proc, or Deno's permissions: the process's descriptor, which may
    // block (written through `stdio` when the runtime gives one).
    return { fd, owned: false, regular: false, stdio: fd };
  }
}

function isRegular(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

/** Whether a write on it returns at once (a regular file, or one we opened with O_NONBLOCK). */
function nonBlocking(descriptor: Descriptor): boolean {
  return descriptor.regular || descriptor.owned;
}

function closeDescriptor(descriptor: Descriptor): void {
  if (!descriptor.owned) return;
  try {
    closeSync(descriptor.fd);
  } catch {
    // already closed
  }
}
