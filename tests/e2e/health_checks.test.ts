/**
 * Active health checks (issue 9 point 6) against the real gateway process and real upstreams:
 * a server failing its checks gets no traffic (new or pinned clients) after `fall` checks and
 * comes back after `rise`; the first round runs before the gateway listens; `drain_status` puts
 * a server into drain (pinned clients still served, new ones not); with `workers = 2` each server
 * is checked once, not once per worker, and a down server is down for both.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5 } from "../support/http.ts";

/** An upstream answering `x-upstream: NAME` everywhere, and `/health` with a status we set. */
interface Backend {
  readonly name: string;
  readonly address: string;
  health: number;
  /** Requests other than health probes. */
  readonly served: string[];
  /** Times (ms) of the /health probes received. */
  readonly probes: number[];
  close(): Promise<void>;
}

async function backend(name: string): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    res.setHeader("x-upstream", name);
    if (req.url === "/health") {
      made.probes.push(Date.now());
      res.writeHead(made.health, { "content-type": "text/plain" });
      res.end(`${name} ${made.health}`);
      return;
    }
    made.served.push(req.url ?? "");
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(name);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const made: Backend = {
    name,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    health: 200,
    served: [],
    probes: [],
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return made;
}

let A: Backend;
let B: Backend;

const INTERVAL_MS = 200;

function config(health: string, server = ""): string {
  return `
${server === "" ? "" : `[server]\n${server}\n`}
[upstreams.app]
servers = [
  { address = "${A.address}", id = "web-a" },
  { address = "${B.address}", id = "web-b" },
]

[upstreams.app.sticky]

[upstreams.app.health]
path = "/health"
interval = "${INTERVAL_MS}ms"
timeout = "150ms"
${health}

[[routes]]
path = "/"
upstream = "app"
`;
}

const cookieFor = (b: Backend) => `route=${md5(b.address)}`;

/** Who serves `count` new clients (no cookie) in turn. */
async function newClients(port: number, count: number): Promise<string[]> {
  const served: string[] = [];
  for (let i = 0; i < count; i++) served.push((await ask(port)).servedBy ?? "-");
  return served;
}

/** Polls until `predicate` holds, failing after `ms`. */
async function until(predicate: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

describe("active health checks", () => {
  before(async () => {
    A = await backend("A");
    B = await backend("B");
  });
  afterEach(async () => {
    await stopAllGateways();
    A.health = 200;
    B.health = 200;
  });
  after(async () => {
    await stopAllGateways();
    await A.close();
    await B.close();
  });

  it("checks every server before listening: one failing its first check never gets a request", async () => {
    B.health = 500;
    const before = B.served.length;
    const startedAt = Date.now();
    const gw = await startGateway(config("rise = 2\nfall = 2"));
    assert.ok(B.probes.some((t) => t >= startedAt), "B was probed");
    assert.deepEqual(await newClients(gw.port, 6), ["A", "A", "A", "A", "A", "A"]);
    const pinned = await ask(gw.port, { cookies: [cookieFor(B)] });
    assert.equal(pinned.servedBy, "A", "a client pinned to a down server is re-pinned");
    assert.deepEqual(pinned.sticky, [`${cookieFor(A)}; Path=/`]);
    assert.equal(B.served.length, before);
  });

  it("takes a server out after `fall` failed checks and brings it back after `rise`", async () => {
    const gw = await startGateway(config("rise = 2\nfall = 2"));
    assert.deepEqual(await newClients(gw.port, 4), ["A", "B", "A", "B"]);

    B.health = 500;
    const failingSince = Date.now();
    await until(async () => {
      const served = await newClients(gw.port, 4);
      return served.every((s) => s === "A");
    }, "B out of rotation");
    // Two failed checks (fall = 2) take at least one interval after the first failure.
    assert.ok(Date.now() - failingSince >= INTERVAL_MS / 2, "out before fall checks");
    const outAt = B.served.length;
    assert.deepEqual(await newClients(gw.port, 6), ["A", "A", "A", "A", "A", "A"]);
    const pinned = await ask(gw.port, { cookies: [cookieFor(B)] });
    assert.equal(pinned.servedBy, "A");
    assert.equal(B.served.length, outAt, "no request reached B while it was down");

    B.health = 200;
    const recoveringSince = Date.now();
    await until(async () => (await newClients(gw.port, 2)).includes("B"), "B back");
    assert.ok(Date.now() - recoveringSince >= INTERVAL_MS / 2, "back before rise checks");
    const back = await ask(gw.port, { cookies: [cookieFor(B)] });
    assert.equal(back.servedBy, "B");
    assert.deepEqual(back.sticky, [], "its pinned clients stay again");
  });

  it("drains a server answering drain_status: pinned clients stay, new ones go elsewhere", async () => {
    const gw = await startGateway(config("drain_status = 503"));
    B.health = 503;
    await until(
      async () => (await newClients(gw.port, 4)).every((s) => s === "A"),
      "B drained",
    );
    for (let i = 0; i < 3; i++) {
      const pinned = await ask(gw.port, { cookies: [cookieFor(B)] });
      assert.equal(pinned.servedBy, "B", "a draining server keeps its clients");
      assert.deepEqual(pinned.sticky, []);
    }
    assert.deepEqual(await newClients(gw.port, 4), ["A", "A", "A", "A"]);

    B.health = 200;
    await until(async () => (await newClients(gw.port, 2)).includes("B"), "B ready again");
  });

  it("with workers = 2, checks each server once and keeps a down server out for both", async () => {
    const gw = await startGateway(config("rise = 2\nfall = 1", "workers = 2"));
    B.health = 500;
    await until(
      async () => (await newClients(gw.port, 6)).every((s) => s === "A"),
      "B out of rotation",
    );
    // New connections each time: the kernel spreads them over both workers' listeners.
    const served = await newClients(gw.port, 20);
    assert.deepEqual(served, Array.from({ length: 20 }, () => "A"));

    const from = B.probes.length;
    await sleep(INTERVAL_MS * 5);
    const probes = B.probes.length - from;
    assert.ok(probes >= 3 && probes <= 7, `${probes} probes in 5 intervals: once per server`);
  });
});

describe("one round robin for all workers", () => {
  const backends: Backend[] = [];
  after(async () => {
    await stopAllGateways();
    for (const b of backends) await b.close();
  });

  it("with workers = 2, 3:1:1 gives A B A C A over new connections whichever worker serves", async () => {
    for (const name of ["A", "B", "C"]) backends.push(await backend(name));
    const [a, b, c] = backends;
    const gw = await startGateway(`
[server]
workers = 2

[upstreams.app]
servers = [
  { address = "${a.address}", weight = 3 },
  "${b.address}",
  "${c.address}",
]
`);
    // Each request is a new connection: the kernel spreads them over both workers' listeners
    // (SO_REUSEPORT); with a round-robin position per worker the sequence would interleave two.
    const served = await newClients(gw.port, 20);
    const cycle = ["A", "B", "A", "C", "A"];
    assert.deepEqual(served, [...cycle, ...cycle, ...cycle, ...cycle]);
  });
});
