/**
 * DNS discovery against a real DNS server (issue 13 points 1 and 2, its "Bad input" for DNS):
 * dnsmasq on a loopback high port (tests/dns/dnsmasq.ts) answers for names whose addresses are
 * real upstream servers on 127.0.0.x, and its answers change while keep-alive clients with cookie
 * jars run through the gateway (two worker threads):
 *
 * - a new address gets new clients within one interval (plus the swap);
 * - a removed address loses its own clients only: every client on an address that stays stays;
 * - the resolver paused (SIGSTOP: questions time out) keeps the last answer, logged and counted;
 * - 0 failed requests throughout;
 * - SRV records: the best priority shares new clients by weight, the next one only serves when
 *   none of the best can;
 * - `vanish_grace`: a removed address stays in drain for it, serving its own clients, then goes;
 * - a name that never resolves at start: the gateway starts, the other upstream serves, this one
 *   answers 502 no_server and /readyz names it; once the name resolves, it serves.
 *
 * Skipped (saying why) when dnsmasq cannot be installed. Runs on Deno, Bun and the binary.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { type Dnsmasq, locateDnsmasq, startDnsmasq } from "../dns/dnsmasq.ts";
import { adminPortOf, sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5 } from "../support/http.ts";
import { runStickyClient, type StickyClient } from "../support/traffic.ts";

const dnsmasq = locateDnsmasq();
const skip = "reason" in dnsmasq ? dnsmasq.reason : undefined;
// Neither runner prints a skip's reason: say it here.
if (skip !== undefined) console.warn(`tests/e2e/dns_discovery.test.ts: ${skip}`);

/** Backends on 127.0.0.2 … 127.0.0.6, all on one port (an A record brings addresses only). */
const IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];
const backends: { server: Server; sockets: Set<Socket> }[] = [];
let port = 0;

/** An upstream on `ip:port` answering who it is in `x-upstream`. */
function startBackend(ip: string, at: number): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "x-upstream": ip, "content-type": "text/plain" });
      res.end(`hello from ${ip}\n`);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  backends.push({ server, sockets });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at, ip, () => resolve((server.address() as AddressInfo).port));
  });
}

/** `ip` of the cookie value (md5 of `ip:port`, the module's default). */
function serverOf(value: string): string | undefined {
  return IPS.find((ip) => md5(`${ip}:${port}`) === value);
}

/** The gateway's view of the upstream's servers (admin API) by id. */
async function adminGet(
  adminPort: number,
  path: string,
): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${adminPort}${path}`);
  return { status: response.status, body: await response.text() };
}

describe("DNS discovery against dnsmasq", { skip }, () => {
  let dns: Dnsmasq;

  before(async () => {
    port = await startBackend(IPS[0], 0);
    for (const ip of IPS.slice(1)) await startBackend(ip, port);
    dns = await startDnsmasq((dnsmasq as { binary: string }).binary, {
      hosts: [`${IPS[0]} app.internal`, `${IPS[1]} app.internal`, `${IPS[0]} a.internal`],
      srv: [
        `_http._tcp.pool.internal,a.internal,${port},10,3`,
        `_http._tcp.pool.internal,b.internal,${port},10,1`,
        `_http._tcp.pool.internal,c.internal,${port},20,1`,
      ],
    });
  });

  after(async () => {
    await stopAllGateways();
    await dns?.stop();
    for (const { server, sockets } of backends) {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });

  it("follows changing answers under load: new clients on a new address within one interval, none moved from addresses that stay, 0 failures; a paused resolver keeps the last answer", async () => {
    const gateway = await startGateway(`
[server]
workers = 2
resolver = "127.0.0.1:${dns.port}"

[admin]
listen = "127.0.0.1:0"

[upstreams.app]
servers = [{ dns = "app.internal:${port}", interval = "1s" }]

[upstreams.app.sticky]
`);
    const adminPort = await adminPortOf(gateway);
    const served = new Set<string>();
    for (let i = 0; i < 4; i++) served.add((await ask(gateway.port)).servedBy ?? "none");
    assert.deepEqual([...served].sort(), [IPS[0], IPS[1]], "the first answer serves at once");

    let running = true;
    const clients: StickyClient[] = [];
    const dones: Promise<void>[] = [];
    for (let id = 0; id < 12; id++) {
      const { client, done } = runStickyClient(gateway.port, id, {
        cookieName: "route",
        serverOf,
        newSessionEvery: 15,
        pauseMs: 10,
      }, () => running);
      clients.push(client);
      dones.push(done);
    }
    // Who served each client's requests, from the moves' view: a client whose cookie named an
    // address that stays must never be answered by another one.
    await sleep(800);

    // A new address: new sessions reach it within one interval (1 s) plus the swap.
    const added = performance.now();
    dns.setHosts([`${IPS[0]} app.internal`, `${IPS[1]} app.internal`, `${IPS[2]} app.internal`]);
    let reachedAfterMs: number | undefined;
    while (reachedAfterMs === undefined && performance.now() - added < 5000) {
      const answer = await ask(gateway.port);
      if (answer.servedBy === IPS[2]) reachedAfterMs = performance.now() - added;
      else await sleep(20);
    }
    assert.ok(reachedAfterMs !== undefined, "the new address never got a client");
    assert.ok(
      reachedAfterMs <= 1800,
      `the new address got its first client after ${reachedAfterMs} ms`,
    );
    await sleep(600);

    // An address removed: its own clients fall back; nobody else moves.
    const removed = performance.now();
    dns.setHosts([`${IPS[1]} app.internal`, `${IPS[2]} app.internal`]);
    await sleep(2200);
    // The resolver stops answering (SIGSTOP: timeouts): the last answer stays.
    dns.pause();
    // A question times out after 2 s: wait for the failure to be seen (and keep serving).
    const paused = performance.now();
    while (!/"event":"dns_failed"/.test(gateway.stderr()) && performance.now() - paused < 6000) {
      await sleep(100);
    }
    await sleep(300);
    const whileDown = new Set<string>();
    for (let i = 0; i < 6; i++) whileDown.add((await ask(gateway.port)).servedBy ?? "none");
    dns.resume();
    running = false;
    await Promise.all(dones);

    const failures = clients.flatMap((c) => c.failures.map((f) => `client ${c.id}: ${f}`));
    assert.deepEqual(failures, [], "no request failed");
    const requests = clients.reduce((n, c) => n + c.requests, 0);
    assert.ok(requests > 300, `only ${requests} requests`);
    const moves = clients.flatMap((c) => c.moves);
    const wrongMoves = moves.filter((m) => m.from !== IPS[0] || m.start < removed - 50);
    assert.deepEqual(wrongMoves, [], "only the removed address's clients moved, after it was");
    assert.deepEqual(
      [...whileDown].sort(),
      [IPS[1], IPS[2]],
      gateway.stderr().split("\n").filter((l) => !l.includes('"kind"')).join("\n"),
    );

    const metrics = await adminGet(adminPort, "/metrics");
    const failed =
      /sticky_gateway_dns_resolutions_total\{type="A",name="app.internal",result="failed"\} (\d+)/
        .exec(metrics.body);
    assert.ok(failed !== null && Number(failed[1]) >= 1, metrics.body);
    assert.match(gateway.stderr(), /"event":"dns_failed","query":"A app.internal"/);
    assert.match(gateway.stderr(), /"event":"config_reloaded","trigger":"dns"/);
    assert.equal((await adminGet(adminPort, "/readyz")).status, 200);
    assert.equal(await gateway.stop(), 0);
  });

  it("SRV: the best priority shares new clients by weight; the next serves only when none of the best can", async () => {
    dns.setHosts([`${IPS[0]} a.internal`, `${IPS[1]} b.internal`, `${IPS[2]} c.internal`]);
    const gateway = await startGateway(`
[server]
resolver = "127.0.0.1:${dns.port}"

[admin]
listen = "127.0.0.1:0"

[upstreams.pool]
servers = [{ dns = "_http._tcp.pool.internal", type = "SRV", interval = "1s" }]

[upstreams.pool.sticky]
`);
    const adminPort = await adminPortOf(gateway);
    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const by = (await ask(gateway.port)).servedBy ?? "none";
      counts.set(by, (counts.get(by) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(counts), { [IPS[0]]: 30, [IPS[1]]: 10 });
    const upstreams = JSON.parse((await adminGet(adminPort, "/api/v1/upstreams/pool")).body);
    const rows = upstreams.upstream.servers.map((
      s: { id: string; backup: boolean; weight: number },
    ) => [s.id, s.backup, s.weight]);
    assert.deepEqual(rows, [
      [`${IPS[0]}:${port}`, false, 3],
      [`${IPS[1]}:${port}`, false, 1],
      [`${IPS[2]}:${port}`, true, 1],
    ]);
    // The best priority's targets stop (their upstream servers refuse): the backup tier serves.
    backends[0].server.close();
    backends[1].server.close();
    for (const b of backends.slice(0, 2)) for (const s of b.sockets) s.destroy();
    const after = new Set<string>();
    for (let i = 0; i < 6; i++) after.add((await ask(gateway.port)).servedBy ?? "none");
    assert.deepEqual([...after], [IPS[2]]);
    await new Promise<void>((resolve) => backends[0].server.listen(port, IPS[0], resolve));
    await new Promise<void>((resolve) => backends[1].server.listen(port, IPS[1], resolve));
    assert.equal(await gateway.stop(), 0);
  });

  it("vanish_grace: a vanished address stays in drain (its clients served there, no new ones), then goes", async () => {
    dns.setHosts([`${IPS[0]} app.internal`, `${IPS[1]} app.internal`]);
    const gateway = await startGateway(`
[server]
resolver = "127.0.0.1:${dns.port}"

[admin]
listen = "127.0.0.1:0"

[upstreams.app]
servers = [{ dns = "app.internal:${port}", interval = "300ms", vanish_grace = "2s" }]

[upstreams.app.sticky]
`);
    const adminPort = await adminPortOf(gateway);
    const pinned = `route=${md5(`${IPS[0]}:${port}`)}`;
    assert.equal((await ask(gateway.port, { cookies: [pinned] })).servedBy, IPS[0]);
    const stateOf = async () => {
      const body = JSON.parse((await adminGet(adminPort, "/api/v1/upstreams/app")).body);
      return Object.fromEntries(
        body.upstream.servers.map((s: { id: string; state: string }) => [s.id, s.state]),
      );
    };
    dns.setHosts([`${IPS[1]} app.internal`]);
    const removed = performance.now();
    let states = await stateOf();
    while (states[`${IPS[0]}:${port}`] !== "drain" && performance.now() - removed < 1500) {
      await sleep(50);
      states = await stateOf();
    }
    assert.deepEqual(states, { [`${IPS[0]}:${port}`]: "drain", [`${IPS[1]}:${port}`]: "ready" });
    assert.equal(
      (await ask(gateway.port, { cookies: [pinned] })).servedBy,
      IPS[0],
      "drain serves its own",
    );
    for (let i = 0; i < 4; i++) {
      assert.equal((await ask(gateway.port)).servedBy, IPS[1], "no new client");
    }
    while (`${IPS[0]}:${port}` in states && performance.now() - removed < 4000) {
      await sleep(100);
      states = await stateOf();
    }
    const gone = performance.now() - removed;
    assert.deepEqual(states, { [`${IPS[1]}:${port}`]: "ready" });
    assert.ok(gone >= 2000, `removed after ${gone} ms, before the grace`);
    assert.equal(
      (await ask(gateway.port, { cookies: [pinned] })).servedBy,
      IPS[1],
      "then falls back",
    );
    assert.equal(await gateway.stop(), 0);
  });

  it("a name that never resolves at start: the gateway starts, the other upstream serves, this one answers 502 no_server and /readyz names it, until the name resolves", async () => {
    dns.setHosts([`${IPS[0]} app.internal`]);
    const gateway = await startGateway(`
[server]
workers = 2
resolver = "127.0.0.1:${dns.port}"

[admin]
listen = "127.0.0.1:0"

[upstreams.web]
servers = ["${IPS[0]}:${port}"]

[upstreams.late]
servers = [{ dns = "late.internal:${port}", interval = "500ms" }]

[[routes]]
path = "/late"
upstream = "late"

[[routes]]
path = "/"
upstream = "web"
`);
    const adminPort = await adminPortOf(gateway);
    assert.equal((await ask(gateway.port)).servedBy, IPS[0]);
    const late = await ask(gateway.port, { path: "/late" });
    assert.equal(late.status, 502);
    assert.equal(late.response.headers.find(([n]) => n === "x-gateway-error")?.[1], "no_server");
    const ready = await adminGet(adminPort, "/readyz");
    assert.equal(ready.status, 503);
    const detail = JSON.parse(ready.body);
    assert.deepEqual(Object.keys(detail.upstreams), ["late"]);
    assert.match(detail.upstreams.late, /A late\.internal/);
    assert.match(gateway.stderr(), /"event":"dns_failed","query":"A late.internal"/);

    dns.setHosts([`${IPS[0]} app.internal`, `${IPS[3]} late.internal`]);
    const start = performance.now();
    let servedBy: string | undefined;
    while (servedBy !== IPS[3] && performance.now() - start < 4000) {
      servedBy = (await ask(gateway.port, { path: "/late" })).servedBy;
      if (servedBy !== IPS[3]) await sleep(50);
    }
    assert.equal(servedBy, IPS[3], gateway.stderr());
    assert.equal((await adminGet(adminPort, "/readyz")).status, 200);
    assert.equal(await gateway.stop(), 0);
  });
});
