/**
 * What the HTTP/1.1 front needs from a runtime: an accepted TCP connection as a
 * byte stream and a listening socket. `src/runtime/deno/front_socket.ts` and
 * `src/runtime/bun/front_socket.ts` adapt `Deno.listen` and `Bun.listen` to it; nothing else in
 * the front knows the runtime.
 *
 * @module
 */
import type { ByteStream } from "../contracts.ts";
/** An accepted client connection (read, readChunk and write as in {@link ByteStream}). */
export interface FrontSocket {
  /** Reads into `into`; resolves to the count, or null at end of stream. */
  read(into: Uint8Array): Promise<number | null>;
  /** The next bytes received, up to `max`, as a chunk the caller keeps; null at the end. */
  readChunk(max: number): Promise<Uint8Array | null>;
  /**
   * The next bytes received, up to `max`, as a view the caller must be done with before its next
   * read on this socket (no array allocated per read: the front copies a head's first bytes out
   * at once); null at the end.
   */
  readScratch(max: number): Promise<Uint8Array | null>;
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  close(): void;
  /** The client's IP address. */
  readonly remoteAddress: string;
  /** Sends FIN and keeps reading (a lingering close: the client reads the answer, no RST). */
  closeWrite(): void;
}

/** A listening socket; accepted connections go to the callback given when it was opened. */
export interface FrontAcceptor {
  readonly host: string;
  readonly port: number;
  /** Stops accepting (connections already accepted stay); resolves once no more connections
   * will be handed over (an accept that completed as it closed has been). */
  close(): Promise<void>;
}

/** Opens a listening socket that hands every accepted connection to `onSocket`. */
export type FrontListen = (
  host: string,
  port: number,
  reusePort: boolean,
  onSocket: (socket: FrontSocket) => void,
) => Promise<FrontAcceptor>;

/** The connection as the {@link ByteStream} a WebSocket speaks over once its 101 is written
 * (with `closeWrite`, which front/websocket.ts uses to end a protocol error with FIN). */
export function socketStream(socket: FrontSocket): ByteStream & { closeWrite(): void } {
  return {
    read: (into) => socket.read(into),
    readChunk: (max) => socket.readChunk(max),
    write: (data) => socket.write(data),
    closeWrite: () => socket.closeWrite(),
    close: () => socket.close(),
    watchIdle() {
      throw new Error("a client connection is never pooled");
    },
    unwatchIdle() {},
  };
}
