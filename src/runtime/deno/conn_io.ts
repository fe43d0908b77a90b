/**
 * Reading and writing a `Deno.Conn`, the same for the upstream client's sockets (socket.ts) and
 * the front's (front_socket.ts). Part of the runtime seam, so `any` stands for Deno's conn.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any

/** The next bytes, up to `max`, in a fresh array (it is handed on, so it cannot be reused). */
export async function readFreshChunk(conn: any, max: number): Promise<Uint8Array | null> {
  const chunk = new Uint8Array(max);
  const n = await conn.read(chunk);
  return n === null ? null : chunk.subarray(0, n);
}

/** Writes all of `data` (Deno's write may take part of it). */
export async function writeAll(conn: any, data: Uint8Array): Promise<void> {
  let offset = await conn.write(data);
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}
