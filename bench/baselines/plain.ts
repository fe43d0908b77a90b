/**
 * Baseline for the bench: the plainest reverse proxy a runtime offers, `Deno.serve` or
 * `Bun.serve` + `fetch`, round robin over the upstreams, no stickiness, no header filtering.
 * The gateway's target is ≥ 0.90× of this on the same runtime.
 *
 *   LISTEN=127.0.0.1:28080 UPSTREAMS=127.0.0.1:28101,127.0.0.1:28102 SINK=127.0.0.1:28110 \
 *     deno run -A bench/baselines/plain.ts        # or: bun bench/baselines/plain.ts
 *
 * Paths under /upload go to SINK (the streaming bench's byte counter).
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import process from "node:process";

const [host, port] = (process.env.LISTEN ?? "127.0.0.1:28080").split(":");
const upstreams = (process.env.UPSTREAMS ?? "127.0.0.1:28101").split(",").map((a) => `http://${a}`);
const sink = `http://${process.env.SINK ?? upstreams[0].slice(7)}`;
let next = 0;

function handler(request: Request): Promise<Response> {
  const url = request.url;
  const target = url.slice(url.indexOf("/", url.indexOf("//") + 2));
  const base = target.startsWith("/upload") ? sink : upstreams[next++ % upstreams.length];
  return fetch(base + target, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: "manual",
    // Bun: pass bytes through as they are (Deno's fetch has no such option).
    decompress: false,
    duplex: "half",
  } as RequestInit);
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
console.log(`plain proxy (${g.Bun ? "bun" : "deno"}) on ${host}:${port} -> ${upstreams.join(" ")}`);
process.on("SIGTERM", () => process.exit(0));
