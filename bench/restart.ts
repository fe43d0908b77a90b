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
 * @module
 */
import process from "node:process";
import { startGateway, stopAllGateways } from "../tests/support/gateway.ts";
import { closeAllUpstreams, startNamedUpstream } from "../tests/support/upstreams.ts";
import { failedRequests } from "../tests/support/restart_load.ts";
import {
  cookiesOf,
  freePort,
  handover,
  migrateReq,
  restartConfig,
  setMigrateReq,
} from "../tests/support/restart_handover.ts";

const [rounds, clients, newPerSecond, thinkMs] = [3, 50, 300, 10].map((fallback, i) =>
  Number(process.argv[2 + i] ?? fallback)
);

async function main(): Promise<void> {
  const upstreams = await Promise.all(["A", "B", "C"].map((name) => startNamedUpstream(name)));
  const original = migrateReq();
  console.log(
    `gateway=${process.env.GATEWAY ?? "deno"} rounds=${rounds} keep-alive clients=${clients} ` +
      `new connections/s=${newPerSecond} think=${thinkMs} ms (tcp_migrate_req was ${original})`,
  );
  console.log(
    "migrate | round | requests | req/s | refused | reset | unanswered | other | drain ms",
  );
  try {
    for (const value of ["0", "1"] as const) {
      if (!setMigrateReq(value)) {
        console.log(`tcp_migrate_req=${value}: cannot be set here (not root?), skipped`);
        continue;
      }
      for (let round = 1; round <= rounds; round++) {
        const config = restartConfig(await freePort(), upstreams);
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
          },
          { beforeMs: 1000, overlapMs: 500, afterMs: 1000 },
        );
        await result.next.stop("SIGTERM", 15_000);
        const r = result.report;
        const other = failedRequests(r) - r.refused - r.reset - r.unanswered;
        console.log(
          `${value} | ${round} | ${r.requests} | ${result.rate} | ${r.refused} | ${r.reset} | ` +
            `${r.unanswered} | ${other} | ${result.drainMs}`,
        );
        for (const sample of r.samples.slice(0, 5)) console.log(`    ${sample}`);
      }
    }
  } finally {
    if (original === "0" || original === "1") setMigrateReq(original);
    await stopAllGateways();
    await closeAllUpstreams();
  }
}

await main();
process.exit(0);
