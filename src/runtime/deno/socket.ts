/**
 * A {@link ByteStream} over `Deno.connect`: the HTTP/1.1 client's plain socket on Deno. Part of
 * the runtime seam, so `any` stands for Deno's untyped globals.
 *
 * `Deno.Conn` is pull-style: nothing tells of bytes or an end that arrive while nobody reads. So
 * watching an idle connection (ByteStream.watchIdle) starts a read, into a buffer the stream
 * keeps; what it returns is told to the watcher and kept for the next `read`, so nothing is lost.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import { readFreshChunk, writeAll } from "./conn_io.ts";
import { type ByteStream, ConnectFailure } from "../contracts.ts";
import { toConnectFailure } from "../shared/node_socket.ts";

/** Size of the read started while a connection idles (a response head fits, usually). */
const IDLE_READ_SIZE = 16 * 1024;

/** Connects to `host:port` (no delay) and wraps the connection; rejects with a ConnectFailure. */
export async function connectDenoSocket(
  Deno: any,
  host: string,
  port: number,
): Promise<ByteStream> {
  let conn: any;
  try {
    conn = await Deno.connect({ hostname: host, port });
  } catch (error) {
    throw denoConnectFailure(Deno, error);
  }
  conn.setNoDelay(true);
  return new DenoByteStream(conn);
}

/** Deno's error classes first (they are what Deno documents), then the `code` it also sets. */
function denoConnectFailure(Deno: any, error: unknown): ConnectFailure {
  const errors = Deno.errors;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof errors.ConnectionRefused) {
    return new ConnectFailure("refused", message, { cause: error });
  }
  if (error instanceof errors.TimedOut) {
    return new ConnectFailure("timeout", message, { cause: error });
  }
  if (error instanceof errors.NetworkUnreachable || error instanceof errors.AddrNotAvailable) {
    return new ConnectFailure("unreachable", message, { cause: error });
  }
  return toConnectFailure(error);
}

class DenoByteStream implements ByteStream {
  readonly #conn: any;
  /** The read started while idle, until a `read` takes its result (`#idleCount`/`#idleError`). */
  #pending: Promise<void> | undefined;
  #idleCount: number | null = null;
  #idleError: unknown;
  #idleBuffer: Uint8Array | undefined;
  /** Bytes of `#idleBuffer` a read returned and nobody took yet: `#idleStart..#idleEnd`. */
  #idleStart = 0;
  #idleEnd = 0;
  #onActivity: (() => void) | undefined;
  // Made once per stream: watching costs no closure per request.
  readonly #idleRead = (n: number | null): void => {
    this.#idleCount = n;
    this.#activity();
  };
  readonly #idleFailed = (error: unknown): void => {
    this.#idleError = error ?? new Error("read failed");
    this.#activity();
  };

  constructor(conn: any) {
    this.#conn = conn;
  }

  /** Not async: the usual read passes straight through (an async wrapper costs a promise and a
   * microtask per read). */
  read(into: Uint8Array): Promise<number | null> {
    if (this.#pending === undefined && this.#idleStart === this.#idleEnd) {
      return this.#conn.read(into);
    }
    return this.#readKept(into);
  }

  async #readKept(into: Uint8Array): Promise<number | null> {
    if (!(await this.#takeKept())) return null;
    const n = Math.min(into.length, this.#idleEnd - this.#idleStart);
    into.set(this.#idleBuffer!.subarray(this.#idleStart, this.#idleStart + n));
    this.#idleStart += n;
    return n;
  }

  async readChunk(max: number): Promise<Uint8Array | null> {
    if (this.#pending === undefined && this.#idleStart === this.#idleEnd) {
      return await readFreshChunk(this.#conn, max);
    }
    if (!(await this.#takeKept())) return null;
    const n = Math.min(max, this.#idleEnd - this.#idleStart);
    const chunk = this.#idleBuffer!.slice(this.#idleStart, this.#idleStart + n);
    this.#idleStart += n;
    return chunk;
  }

  /** Waits for the idle read: false at end of stream, else bytes are kept (throws its error). */
  async #takeKept(): Promise<boolean> {
    const pending = this.#pending;
    if (pending !== undefined) {
      await pending;
      this.#pending = undefined;
      const error = this.#idleError;
      if (error !== undefined) {
        this.#idleError = undefined;
        throw error;
      }
      if (this.#idleCount === null) return false;
      this.#idleStart = 0;
      this.#idleEnd = this.#idleCount;
    }
    return true;
  }

  write(data: Uint8Array): Promise<void> {
    return writeAll(this.#conn, data);
  }

  watchIdle(onActivity: () => void): void {
    if (this.#idleStart !== this.#idleEnd) return onActivity();
    this.#onActivity = onActivity;
    if (this.#pending !== undefined) return;
    const into = this.#idleBuffer ??= new Uint8Array(IDLE_READ_SIZE);
    this.#pending = (this.#conn.read(into) as Promise<number | null>).then(
      this.#idleRead,
      this.#idleFailed,
    );
  }

  unwatchIdle(): void {
    this.#onActivity = undefined;
  }

  #activity(): void {
    const onActivity = this.#onActivity;
    this.#onActivity = undefined;
    onActivity?.();
  }

  close(): void {
    this.#onActivity = undefined;
    this.#conn.close();
  }
}
