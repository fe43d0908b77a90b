/**
 * Restarting without loss (issue 10, points 6 and 7): a new process binds the same port
 * (SO_REUSEPORT, `[server] reuse_port`), reports ready, the old one gets SIGTERM, stops accepting
 * at once and drains. What the old one's stop owes the clients it already has:
 *
 * - a request under way, or one whose head is arriving, is answered (`Connection: close`);
 * - a connection accepted but still silent, and an idle keep-alive connection, gets to send its
 *   next request (answered with `Connection: close`) as long as it is not idle for a second:
 *   closing it at once races a request the client is sending right then;
 * - an idle connection is closed with FIN (no RST) after that second, and the process exits.
 *
 * Then the handover under constant load (keep-alive cookie-jar clients and new connections per
 * second): 0 failed requests, every client on its backend, with `net.ipv4.tcp_migrate_req = 1`
 * (set here when writable): with 0, connections queued on the old listening socket when it closes
 * are reset by the kernel (measured in /work/notes/restart-measured.md).
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import {
  adminPortOf,
  GATEWAY,
  type RunningGateway,
  startGateway,
  stopAllGateways,
  withTimeout,
} from "../support/gateway.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";
import { failedRequests } from "../support/restart_load.ts";
import { type Certificates, makeCertificates } from "../support/tls.ts";
import {
  cookiesOf,
  freePort,
  handover,
  migrateReq,
  restartConfig,
  setMigrateReq,
} from "../support/restart_handover.ts";

/** A raw client connection that keeps everything it receives and notes how it ended. */
interface Raw {
  readonly socket: Socket;
  received(): string;
  /** "open", "end" (FIN) or the error code (ECONNRESET: RST). */
  state(): string;
}

async function rawConnect(port: number): Promise<Raw> {
  const socket = connect({ host: "127.0.0.1", port });
  let received = "";
  let state = "open";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString("latin1");
  });
  socket.on("end", () => {
    if (state === "open") state = "end";
  });
  socket.on("error", (error: Error & { code?: string }) => {
    state = error.code ?? error.message;
  });
  await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), 5000, "connect");
  return { socket, received: () => received, state: () => state };
}

async function until(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The admin listener's `/metrics` text. */
async function metrics(adminPort: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  return await response.text();
}

/** Whether a new TCP connection to `port` is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Sends SIGTERM and resolves once the listening socket is closed (the stop has begun), with the
 * exit to come (wrapped: an async function returning a promise would wait for it).
 */
async function terminate(gw: RunningGateway): Promise<{ exit: Promise<number | null> }> {
  const exit = gw.stop("SIGTERM", 10_000);
  const deadline = Date.now() + 5000;
  while (await accepts(gw.port)) {
    if (Date.now() > deadline) throw new Error("still accepting 5 s after SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { exit };
}

const REQUEST = (port: number) => `GET /one HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
const ANSWER = /^HTTP\/1\.1 200 [^\r]*\r\n[\s\S]*?\r\n\r\n(U)$/;

describe(`the old process's stop during a restart (${GATEWAY})`, () => {
  let U: NamedUpstream;
  before(async () => {
    U = await startNamedUpstream("U");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });
  const config = () => `
[log]
access = "off"
[upstreams.app]
servers = ["${U.address}"]
`;

  it("an idle keep-alive connection still gets its next request answered, with Connection: close", async () => {
    const gw = await startGateway(config());
    const client = await rawConnect(gw.port);
    client.socket.write(REQUEST(gw.port));
    await until(() => ANSWER.test(client.received()), 5000, "first answer");
    const first = client.received().length;
    const { exit } = await terminate(gw);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(client.state(), "open", "the idle connection was closed at once at SIGTERM");
    client.socket.write(REQUEST(gw.port));
    await until(() => client.state() !== "open", 5000, "the connection to end after the answer");
    const second = client.received().slice(first);
    assert.match(second, ANSWER, `second answer: ${JSON.stringify(second)}`);
    assert.match(second, /\r\nconnection: close\r\n/i);
    assert.equal(client.state(), "end", "closed with FIN, not RST");
    assert.equal(await exit, 0);
  });

  it("a request whose head is arriving at SIGTERM is answered", async () => {
    const gw = await startGateway(config());
    const client = await rawConnect(gw.port);
    // A first exchange: the connection is accepted (not still queued in the kernel).
    client.socket.write(REQUEST(gw.port));
    await until(() => ANSWER.test(client.received()), 5000, "first answer");
    const first = client.received().length;
    client.socket.write(`GET /one HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { exit } = await terminate(gw);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    client.socket.write("\r\n");
    await until(() => client.state() !== "open", 5000, "the connection to end");
    const second = client.received().slice(first);
    assert.match(second, ANSWER, "the request whose head was arriving");
    assert.match(second, /\r\nconnection: close\r\n/i);
    assert.equal(await exit, 0);
  });

  it("a connection accepted but silent at SIGTERM may still send its request", async () => {
    const gw = await startGateway(`${config()}\n[admin]\nlisten = "127.0.0.1:0"\n`);
    const admin = await adminPortOf(gw);
    const client = await rawConnect(gw.port);
    // SIGTERM once the gateway has accepted it (not while it waits in the kernel's queue).
    await until(
      async () => /^sticky_gateway_client_connections 1$/m.test(await metrics(admin)),
      5000,
      "accepted",
    );
    const { exit } = await terminate(gw);
    client.socket.write(REQUEST(gw.port));
    await until(() => client.state() !== "open", 5000, "the connection to end");
    assert.match(client.received(), ANSWER);
    assert.equal(await exit, 0);
  });

  it("an idle connection that stays idle is closed with FIN after about a second; exit follows", async () => {
    const gw = await startGateway(config());
    const client = await rawConnect(gw.port);
    client.socket.write(REQUEST(gw.port));
    await until(() => ANSWER.test(client.received()), 5000, "first answer");
    const start = Date.now();
    const { exit } = await terminate(gw);
    await until(() => client.state() !== "open", 5000, "the idle connection to be closed");
    const closedAfter = Date.now() - start;
    assert.equal(client.state(), "end", "closed with FIN, not RST");
    assert.ok(closedAfter >= 700 && closedAfter < 3000, `closed ${closedAfter} ms after SIGTERM`);
    client.socket.end();
    assert.equal(await exit, 0);
    assert.ok(Date.now() - start < 4000, `exit ${Date.now() - start} ms after SIGTERM`);
  });
});

describe(`restart under constant load: a new process, then SIGTERM to the old one (${GATEWAY})`, () => {
  let upstreams: NamedUpstream[];
  const original = migrateReq();
  let migrating = false;
  before(async () => {
    upstreams = await Promise.all(["A", "B", "C"].map((name) => startNamedUpstream(name)));
    migrating = original === "1" || setMigrateReq("1");
  });
  after(async () => {
    if (original === "0" && migrating) setMigrateReq("0");
    await stopAllGateways();
    await closeAllUpstreams();
  });

  /**
   * One handover under load from a process with `workers` threads to a new one; with `tls`, over
   * a `[server] tls` listener (HTTPS/1.1 clients trusting `tls.ca`).
   */
  async function handoverUnderLoad(
    workers: number,
    adminPort = 0,
    tls?: Certificates,
  ): Promise<void> {
    const config = restartConfig(await freePort(), upstreams, workers, tls, adminPort);
    const old = await startGateway(config);
    const clients = 40;
    const result = await handover(
      old,
      config,
      {
        keepAliveClients: clients,
        newPerSecond: 200,
        thinkMs: 20,
        cookie: "route",
        cookies: cookiesOf(upstreams),
        tlsCa: tls?.ca,
      },
      { beforeMs: 1000, overlapMs: 500, afterMs: 1000 },
    );
    const r = result.report;
    const failed = failedRequests(r);
    console.log(
      `restart (${GATEWAY}, workers ${workers}${
        tls ? ", tls" : ""
      }, tcp_migrate_req=${migrateReq()}): ${r.requests} ` +
        `requests (${result.rate}/s), ${r.connections} connections, failed ${failed} (refused ` +
        `${r.refused}, reset ${r.reset}, unanswered ${r.unanswered}, status ${r.badStatus}, moved ` +
        `${r.moved}); Connection: close ${r.closedByAnswer}, idle closes ${r.closedWhileIdle}; ` +
        `ready at ${result.readyAt} ms, SIGTERM at ${result.signalledAt} ms, old drained in ` +
        `${result.drainMs} ms`,
    );
    const details = `ready at ${result.readyAt} ms, SIGTERM at ${result.signalledAt} ms, ` +
      `drained in ${result.drainMs} ms\n${r.samples.join("\n")}`;
    assert.equal(result.oldExit, 0);
    assert.ok(r.ok > 500, `only ${r.ok} requests answered`);
    // Every keep-alive client got its cookie and stayed on the backend that cookie names.
    const names = new Set(upstreams.map((u) => u.name));
    const pinned = [...result.pinned.values()];
    assert.equal(pinned.length, clients);
    assert.ok(pinned.every((name) => names.has(name)), pinned.join(","));
    assert.equal(r.moved, 0, details);
    assert.equal(r.badStatus + r.unanswered, 0, details);
    if (!migrating) {
      console.log(
        `tcp_migrate_req cannot be set to 1 here (not root?): connections queued on the old ` +
          `listening socket may be reset; refused ${r.refused}, reset ${r.reset} not asserted`,
      );
    } else {
      assert.equal(failed, 0, details);
    }
    if (adminPort !== 0) {
      // Both processes had the admin port; now only the new one answers, and says so.
      const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      assert.equal((await ready.json()).pid, result.next.process.pid);
    }
    await result.next.stop("SIGTERM", 10_000);
  }

  it("0 failed requests, every keep-alive client stays on its backend, the old one exits 0", async () => {
    await handoverUnderLoad(1);
  });

  it("the same with workers = 2 (a listening socket per thread, each closing at SIGTERM) and one fixed admin port", async () => {
    await handoverUnderLoad(2, await freePort());
  });

  it("the same over a [server] tls listener: the old one stops accepting, serves its connections on", async () => {
    // Before: the runtimes' TLS servers closed idle keep-alive connections at once at SIGTERM
    // (requests sent then failed: 19-24 per handover on Deno, 21-330 on Bun).
    const certificates = makeCertificates();
    try {
      await handoverUnderLoad(1, 0, certificates);
    } finally {
      certificates.remove();
    }
  });
});
