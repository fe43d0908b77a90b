/**
 * The HTTP/1.1 front's sockets on Deno: `Deno.listen` (with SO_REUSEPORT for worker threads)
 * and its connections as {@link FrontSocket}s. Part of the runtime seam, so `any` stands for
 * Deno's untyped globals.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { FrontAcceptor, FrontListen, FrontSocket } from "../front/socket.ts";
import { readFreshChunk, writeAll } from "./conn_io.ts";

/** {@link FrontListen} on `Deno.listen`. */
export function denoFrontListen(Deno: any): FrontListen {
  return (host, port, reusePort, onSocket) => {
    const listener = Deno.listen({ hostname: host, port, reusePort, transport: "tcp" });
    const accepting = acceptLoop(Deno, listener, onSocket);
    const acceptor: FrontAcceptor = {
      host: listener.addr.hostname,
      port: listener.addr.port,
      close() {
        try {
          listener.close();
        } catch {
          // closed already
        }
        // The loop ends at its next accept, after handing over one that completed meanwhile.
        return accepting;
      },
    };
    return Promise.resolve(acceptor);
  };
}

async function acceptLoop(
  Deno: any,
  listener: any,
  onSocket: (socket: FrontSocket) => void,
): Promise<void> {
  for (;;) {
    let conn: any;
    try {
      conn = await listener.accept();
    } catch (error) {
      // Closed (stop), or a transient failure such as EMFILE: wait a little and go on.
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    try {
      conn.setNoDelay(true);
    } catch {
      // gone already
    }
    onSocket(new DenoFrontSocket(conn));
  }
}

/** A Deno connection (TCP, or TLS after its handshake) as the front's {@link FrontSocket}. */
export class DenoFrontSocket implements FrontSocket {
  readonly remoteAddress: string;
  #closed = false;
  #scratch: Uint8Array | undefined;

  constructor(readonly conn: any) {
    this.remoteAddress = conn.remoteAddr.hostname;
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.conn.read(into);
  }

  readChunk(max: number): Promise<Uint8Array | null> {
    return readFreshChunk(this.conn, max);
  }

  /** Into this socket's own small array, made on first use: a waiting read holds it (an idle
   * keep-alive connection then costs it, not the front's 4 KiB buffer). */
  async readScratch(max: number): Promise<Uint8Array | null> {
    if (this.#scratch === undefined || this.#scratch.length < max) {
      this.#scratch = new Uint8Array(max);
    }
    const n = await this.conn.read(
      this.#scratch.length === max ? this.#scratch : this.#scratch.subarray(0, max),
    );
    return n === null ? null : this.#scratch.subarray(0, n);
  }

  write(data: Uint8Array): Promise<void> {
    return writeAll(this.conn, data);
  }

  closeWrite(): void {
    // FIN (over TLS close_notify first); reading goes on (the front's lingering close).
    this.conn.closeWrite().catch(() => {});
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}
