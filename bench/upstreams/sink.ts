/**
 * Upload sink for the streaming bench: reads the whole request body as it streams in and answers
 * `{"bytes":N,"crc32":C}` (zlib's CRC-32), so the driver can check that every byte went through.
 *
 *   LISTEN=127.0.0.1:28110 bun bench/upstreams/sink.ts
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import process from "node:process";
import zlib from "node:zlib";

const [host, port] = (process.env.LISTEN ?? "127.0.0.1:28110").split(":");
const crc32 = (zlib as any).crc32 as (data: Uint8Array, value?: number) => number;

async function handler(request: Request): Promise<Response> {
  let bytes = 0;
  let crc = 0;
  if (request.body !== null) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      crc = crc32(value, crc);
    }
  }
  return new Response(JSON.stringify({ bytes, crc32: crc }), {
    headers: { "content-type": "application/json" },
  });
}

const g = globalThis as any;
if (g.Bun !== undefined) {
  g.Bun.serve({
    hostname: host,
    port: Number(port),
    idleTimeout: 0,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: handler,
  });
} else {
  g.Deno.serve({ hostname: host, port: Number(port), onListen() {} }, handler);
}
console.log(`sink on ${host}:${port}`);
process.on("SIGTERM", () => process.exit(0));
