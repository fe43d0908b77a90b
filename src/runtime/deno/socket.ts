/**
 * A {@link ByteStream} over `Deno.connect`: the HTTP/1.1 client's plain socket on Deno. Part of
 * the runtime seam, so `any` stands for Deno's untyped globals.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { ByteStream } from "../contracts.ts";

/** Connects to `host:port` (no delay) and wraps the connection. */
export async function connectDenoSocket(
  Deno: any,
  host: string,
  port: number,
): Promise<ByteStream> {
  const conn = await Deno.connect({ hostname: host, port });
  conn.setNoDelay(true);
  return {
    read: (into) => conn.read(into),
    async readChunk(max) {
      // Deno reads into memory the caller provides: a fresh array per chunk, since the
      // chunk is handed on (to the response body) and cannot be reused.
      const chunk = new Uint8Array(max);
      const n = await conn.read(chunk);
      return n === null ? null : chunk.subarray(0, n);
    },
    async write(data) {
      for (let offset = 0; offset < data.length;) {
        offset += await conn.write(data.subarray(offset));
      }
    },
    close: () => conn.close(),
  };
}
