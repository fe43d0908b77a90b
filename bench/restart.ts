/**
 * Measures the restart procedure (README, "Restarting without loss") under constant load: for
 * `net.ipv4.tcp_migrate_req` = 0 and = 1 (set here when writable, then restored), ROUNDS
 * handovers each, counting requests refused, reset and unanswered while a new process takes over
 * the port from the old one. Results: /work/notes/restart-measured.md.
 *
 *   GATEWAY=deno GATEWAY_DENO=.tools/node_modules/.bin/deno \
 *     .tools/node_modules/.bin/deno run -A bench/restart.ts [rounds] [clients] [new/s] [think ms]
 *   GATEWAY=bun GATEWAY_BUN=.tools/node_modules/.bin/bun .tools/node_modules/.bin/bun bench/restart.ts
 *
 * WORKERS=2 runs both processes with `workers = 2`; TLS=1 with `[server] tls` (the runtimes' own
 * HTTPS servers, not the plain-HTTP front). As root (it writes /proc/sys).
 *
 * @module
 */
import process from "node:process";
import { startGateway, stopAllGateways } from "../tests/support/gateway.ts";
import { closeAllUpstreams, startNamedUpstream } from "../tests/support/upstreams.ts";
import { failedRequests } from "../tests/support/restart_load.ts";
import { makeCertificates } from "../tests/support/tls.ts";
import {
  cookiesOf,
  freePort,
  handover,
  migrateReq,
  restartConfig,
  setMigrateReq,
} from "../tests/support/restart_handover.ts";

/**
 * The kernel alone (Deno only): two SO_REUSEPORT listeners on one port, `count` connections
 * made and left in their accept queues, then the first listener closes without accepting; each
 * connection then sends "ping" and waits for the second listener's "pong". With
 * tcp_migrate_req = 0 the closed listener's queued connections are reset (about half: the
 * kernel's hash spread them over both); with 1 they move to the other listener.
 */
async function kernelQueueLoss(count: number): Promise<{ served: number; reset: number }> {
  const port = await freePort();
  const closing = Deno.listen({ hostname: "127.0.0.1", port, reusePort: true });
  const staying = Deno.listen({ hostname: "127.0.0.1", port, reusePort: true });
  const pong = new TextEncoder().encode("pong");
  const serving = (async () => {
    for await (const conn of staying) {
      conn.read(new Uint8Array(16)).then(() => conn.write(pong)).catch(() => {}).finally(() =>
        conn.close()
      );
    }
  })().catch(() => {});
  const conns = await Promise.all(
    Array.from({ length: count }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  closing.close();
  let served = 0;
  let reset = 0;
  await Promise.all(conns.map(async (conn) => {
    try {
      await conn.write(new TextEncoder().encode("ping"));
      if ((await conn.read(new Uint8Array(16))) === 4) served++;
      else reset++;
    } catch {
      reset++;
    }
    conn.close();
  }));
  staying.close();
  await serving;
  return { served, reset };
}

const [rounds, clients, newPerSecond, thinkMs] = [3, 50, 300, 10].map((fallback, i) =>
  Number(process.argv[2 + i] ?? fallback)
);

/** `[server] workers` of both processes. */
const workers = Number(process.env.WORKERS ?? "1");
/** TLS=1: the gateway serves HTTPS (`[server] tls`, the runtime's own server). */
const certificates = process.env.TLS === "1" ? makeCertificates() : undefined;

async function main(): Promise<void> {
  const upstreams = await Promise.all(["A", "B", "C"].map((name) => startNamedUpstream(name)));
  const original = migrateReq();
  console.log(
    `gateway=${process.env.GATEWAY ?? "deno"} workers=${workers} tls=${
      certificates !== undefined
    } rounds=${rounds} keep-alive clients=${clients} ` +
      `new connections/s=${newPerSecond} think=${thinkMs} ms (tcp_migrate_req was ${original})`,
  );
  if (typeof Deno !== "undefined") {
    for (const value of ["0", "1"] as const) {
      if (!setMigrateReq(value)) continue;
      const { served, reset } = await kernelQueueLoss(200);
      console.log(
        `kernel, tcp_migrate_req=${value}: 200 connections queued, one of two listeners closed: ` +
          `${served} served by the other, ${reset} reset`,
      );
    }
  }
  console.log(
    "migrate | round | requests | req/s | connections | refused | reset | unanswered | other | idle closes | ready at | SIGTERM at | drain ms",
  );
  try {
    for (const value of ["0", "1"] as const) {
      if (!setMigrateReq(value)) {
        console.log(`tcp_migrate_req=${value}: cannot be set here (not root?), skipped`);
        continue;
      }
      for (let round = 1; round <= rounds; round++) {
        const config = restartConfig(await freePort(), upstreams, workers, certificates);
        const old = await startGateway(config);
        const result = await handover(
          old,
          config,
          {
            keepAliveClients: clients,
            newPerSecond,
            thinkMs,
            cookie: "route",
            cookies: cookiesOf(upstreams),
            tlsCa: certificates?.ca,
          },
          { beforeMs: 1000, overlapMs: 500, afterMs: 1000 },
        );
        await result.next.stop("SIGTERM", 15_000);
        const r = result.report;
        const other = failedRequests(r) - r.refused - r.reset - r.unanswered;
        console.log(
          `${value} | ${round} | ${r.requests} | ${result.rate} | ${r.connections} | ${r.refused} | ${r.reset} | ` +
            `${r.unanswered} | ${other} | ${r.closedWhileIdle} | ${result.readyAt} | ${result.signalledAt} | ${result.drainMs}`,
        );
        for (const sample of r.samples.slice(0, 5)) console.log(`    ${sample}`);
      }
    }
  } finally {
    certificates?.remove();
    if (original === "0" || original === "1") setMigrateReq(original);
    await stopAllGateways();
    await closeAllUpstreams();
  }
}

await main();
process.exit(0);
