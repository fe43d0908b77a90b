/**
 * Download client for the streaming bench: GETs a URL, reads the body as it arrives, and prints
 * `{"status":S,"bytes":N,"crc32":C,"seconds":T}` (zlib's CRC-32). On this machine it reads ~1 GiB/s from nginx
 * directly, faster than `curl | cksum` (the pipe copy costs a third of a core).
 *
 *   bun bench/upstreams/download.ts http://127.0.0.1:28080/big
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import process from "node:process";
import zlib from "node:zlib";

const crc32 = (zlib as any).crc32 as (data: Uint8Array, value?: number) => number;
const t0 = performance.now();
const response = await fetch(process.argv[2], { decompress: false } as RequestInit);
let bytes = 0;
let crc = 0;
if (response.body !== null) {
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
    crc = crc32(value, crc);
  }
}
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ status: response.status, bytes, crc32: crc, seconds }));
