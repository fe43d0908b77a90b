/**
 * Issue 9's costs in process: the same request through `Gateway.handle` (the front's request,
 * an in-memory transport answering at once with nginx's 16-byte response) with nothing reading
 * the records, with the metrics counting them, with the access log writing them to a file, and
 * with both. End to end (`make bench`, scenarios log and metrics) a run on this shared VM spreads
 * too much to tell a few per cent; here each variant runs 50,000 requests per trial, the four
 * interleaved, 7 trials, the median taken. What it leaves out: the log's file writes done after
 * the loop (they are asynchronous, ~150 a second under load) and the scrapes (~0.25 ms each).
 *
 *   bun bench/micro/ops.ts        deno run -A bench/micro/ops.ts     (make bench-micro runs both)
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type Server } from "../../src/config/mod.ts";
import { Gateway } from "../../src/proxy/gateway.ts";
import type { Transport, UpstreamResponse } from "../../src/proxy/transport.ts";
import { Metrics } from "../../src/ops/metrics/metrics.ts";
import { AccessLog } from "../../src/ops/log/access_log.ts";
import { FrontRequest } from "../../src/runtime/front/request.ts";

const REQUESTS = 50_000;
const TRIALS = 7;

const dir = mkdtempSync(join(tmpdir(), "ops-micro-"));
const config = parseConfig(`
[upstreams.app]
servers = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
[upstreams.app.sticky]
[log]
access = "${join(dir, "access.log")}"
[admin]
listen = "127.0.0.1:9"
`);
const BODY = new TextEncoder().encode("0123456789abcdef");
const transport: Transport = {
  send(_server: Server): Promise<UpstreamResponse> {
    return Promise.resolve({
      status: 200,
      statusText: "OK",
      headers: [["content-type", "text/plain"], ["content-length", "16"], [
        "connection",
        "keep-alive",
      ]],
      body: BODY.slice(),
    });
  },
  close() {},
};
const metrics = Metrics.create(config, 1);
const log = AccessLog.open(config.log)!;
const variants: [string, Gateway][] = [
  ["nothing reads records", new Gateway(config, transport)],
  ["metrics", new Gateway(config, transport, { onRequestDone: (r) => metrics.recordRequest(r) })],
  ["access log (file)", new Gateway(config, transport, { onRequestDone: (r) => log.log(r) })],
  [
    "access log + metrics",
    new Gateway(config, transport, {
      onRequestDone: (r) => {
        log.log(r);
        metrics.recordRequest(r);
      },
    }),
  ],
];
const LINES = ["host", "example.com", "user-agent", "wrk/4.2", "accept", "*/*"];
const connection = { signal: () => new AbortController().signal };
const client = { remoteAddress: "127.0.0.1", protocol: "http" as const, readsParts: true };

async function trial(gateway: Gateway): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const request = new FrontRequest(
      "GET",
      "http://example.com/",
      LINES,
      null,
      "HTTP/1.1",
      connection,
    );
    const answer = await gateway.handle(request, client);
    if (answer.status !== 200) throw new Error(`status ${answer.status}`);
  }
  return ((performance.now() - started) * 1000) / REQUESTS;
}

for (const [, gateway] of variants) await trial(gateway); // warm-up
const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
for (let t = 0; t < TRIALS; t++) {
  for (const [name, gateway] of variants) times.get(name)!.push(await trial(gateway));
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const base = median(times.get(variants[0][0])!);
const runtime = "Deno" in globalThis ? "deno" : "bun";
console.log(`ops micro (${runtime}): Gateway.handle µs per request, median of ${TRIALS} trials`);
for (const [name] of variants) {
  const m = median(times.get(name)!);
  const extra = m - base;
  console.log(`  ${name.padEnd(22)} ${m.toFixed(3)} µs  (+${extra.toFixed(3)} µs)`);
}
await log.close();
rmSync(dir, { recursive: true, force: true });
