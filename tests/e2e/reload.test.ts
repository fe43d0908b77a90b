/**
 * Reloading the config of the real gateway process (issue 10): `POST /api/v1/reload` and SIGHUP
 * add and remove a server, change weights and a cookie attribute; a bad file or a key that needs
 * a restart changes nothing (400 with every problem, the old config keeps serving); keep-alive
 * clients with cookies stay on their server through 20 reloads under constant load without a
 * failed request, and an open WebSocket lives through them; a drain set through the API outlives a
 * reload; with workers = 2 both threads switch.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import process from "node:process";
import {
  adminPortOf,
  type RunningGateway,
  sleep,
  startGateway,
  stopAllGateways,
  withEphemeralListen,
  withTimeout,
} from "../support/gateway.ts";
import { ask, md5, rawRequest, type RawResponse } from "../support/http.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";
import {
  startWsUpstreams,
  stopAllNodeUpstreams,
  type WsUpstreams,
} from "../support/node_upstreams.ts";
import { rawWebSocket } from "../support/ws_client.ts";
import { type RealtimeUpstream, startRealtimeUpstream } from "../support/realtime.ts";
import { httpsGet, makeCertificates } from "../support/tls.ts";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;
let ws: WsUpstreams;
let live: RealtimeUpstream;

interface Shape {
  /** Server entries of upstream app, by name: A, B, C; `weight:N`, `state:S` after a colon. */
  readonly servers: readonly string[];
  /** An upstream `big` with this many servers (never routed to), each of this weight. */
  readonly big?: { readonly servers: number; readonly weight: number };
  readonly httponly?: boolean;
  readonly workers?: number;
  /** Extra lines for `[server]` (e.g. a change that needs a restart). */
  readonly server?: string;
  /** Extra text in the first server's table (e.g. a typo). */
  readonly typo?: string;
}

/** The config: app (sticky, servers as `shape` says) on /, chat (WebSocket server W) on /chat. */
function config(adminPort: number, shape: Shape): string {
  const named: Record<string, NamedUpstream> = { A, B, C };
  const entries = shape.servers.map((spec, i) => {
    const [name, ...options] = spec.split(" ");
    const extra = options.map((o) => {
      const [key, value] = o.split(":");
      return key === "state" ? `, state = "${value}"` : `, ${key} = ${value}`;
    }).join("");
    const typo = i === 0 && shape.typo !== undefined ? `, ${shape.typo}` : "";
    return `  { address = "${named[name].address}", id = "${name}"${extra}${typo} },`;
  });
  const big = shape.big === undefined ? "" : `
[upstreams.big]
servers = [
${
    Array.from(
      { length: shape.big.servers },
      (_, i) => `  { address = "127.0.0.2:${10_000 + i}", weight = ${shape.big!.weight} },`,
    ).join("\n")
  }
]
[upstreams.big.sticky]
name = "big"
`;
  return withEphemeralListen(`${big}
[server]
workers = ${shape.workers ?? 1}
${shape.server ?? ""}

[admin]
listen = "127.0.0.1:${adminPort}"

[log]
access = "off"

[upstreams.app]
servers = [
${entries.join("\n")}
]

[upstreams.app.sticky]
httponly = ${shape.httponly ?? false}

[upstreams.chat]
servers = ["${ws.address("W")}"]

[upstreams.live]
servers = ["${live.address}"]

[[routes]]
path = "/ticks"
upstream = "live"

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/chat"
upstream = "chat"
`);
}

interface Running {
  readonly gw: RunningGateway;
  readonly adminPort: number;
  /** Writes the config file anew. */
  write(shape: Shape): void;
}

async function start(shape: Shape, args: readonly string[] = []): Promise<Running> {
  // The admin listener's port is the one the OS picks (0): the config keeps saying 0, so a
  // rewrite does not change [admin] (which needs a restart).
  const gw = await startGateway(config(0, shape), args);
  const adminPort = await adminPortOf(gw);
  return { gw, adminPort, write: (s) => writeFileSync(gw.configFile, config(0, s)) };
}

function json(response: RawResponse): Record<string, unknown> {
  return JSON.parse(response.body.toString("utf8")) as Record<string, unknown>;
}

async function reload(
  adminPort: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await rawRequest(adminPort, { method: "POST", path: "/api/v1/reload" });
  return { status: response.status, body: json(response) };
}

/** The app upstream's servers as the admin API shows them: id → state. */
async function states(adminPort: number): Promise<Record<string, string>> {
  const body = json(await rawRequest(adminPort, { path: "/api/v1/upstreams/app" }));
  const servers = (body.upstream as { servers: { id: string; state: string }[] }).servers;
  return Object.fromEntries(servers.map((s) => [s.id, s.state]));
}

async function metric(adminPort: number, series: string): Promise<number | undefined> {
  const text = (await rawRequest(adminPort, { path: "/metrics" })).body.toString("utf8");
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Waits for `check` to hold (polling), or fails naming `what`. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

const cookieOf = (u: NamedUpstream) => `route=${md5(u.address)}`;

/** Waits for an event line matching `pattern` on stderr (events are written off the event loop). */
function logged(gw: RunningGateway, pattern: RegExp): Promise<void> {
  return eventually(async () => pattern.test(gw.stderr()), `${pattern} on stderr`);
}

describe("reload", () => {
  before(async () => {
    [A, B, C] = await Promise.all([
      startNamedUpstream("A"),
      startNamedUpstream("B"),
      startNamedUpstream("C"),
    ]);
    ws = await startWsUpstreams(["W"]);
    live = await startRealtimeUpstream();
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    await stopAllNodeUpstreams();
    await live.close();
  });

  it("POST /api/v1/reload adds and removes a server, changes weights and a cookie attribute", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B"] });
    const first = await ask(gw.port);
    assert.equal(first.status, 200);
    assert.doesNotMatch(first.sticky[0], /HttpOnly/);

    write({ servers: ["A weight:2", "B", "C"], httponly: true });
    const added = await reload(adminPort);
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.deepEqual(added.body, {
      generation: 1,
      changes: { added: { app: ["C"] }, removed: {}, changed: { app: ["A", "B"] } },
    });
    const seen = new Map<string, number>();
    for (let i = 0; i < 8; i++) {
      const answer = await ask(gw.port);
      assert.equal(answer.status, 200);
      assert.match(answer.sticky[0], /; HttpOnly/, "the new cookie attribute");
      seen.set(answer.servedBy!, (seen.get(answer.servedBy!) ?? 0) + 1);
    }
    // Smooth WRR with weights 2:1:1 over 8 picks: A 4, B 2, C 2 (from wherever the cursor was).
    assert.deepEqual([seen.get("A"), seen.get("B"), seen.get("C")], [4, 2, 2]);

    write({ servers: ["A", "C"], httponly: true });
    const removed = await reload(adminPort);
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.body.changes, {
      added: {},
      removed: { app: ["B"] },
      changed: { app: ["A"] },
    });
    // B's clients fall back to a server still there, with a new cookie.
    const moved = await ask(gw.port, { cookies: [cookieOf(B)] });
    assert.equal(moved.status, 200);
    assert.notEqual(moved.servedBy, "B");
    assert.equal(moved.sticky.length, 1);
    const kept = await ask(gw.port, { cookies: [cookieOf(C)] });
    assert.equal(kept.servedBy, "C");
    assert.deepEqual(kept.sticky, []);
    assert.deepEqual(Object.keys(await states(adminPort)), ["A", "C"]);
    assert.equal(await metric(adminPort, "sticky_gateway_config_generation"), 2);
    assert.equal(
      await metric(adminPort, `sticky_gateway_config_reloads_total{result="ok"}`),
      2,
    );
    await logged(gw, /"event":"config_reloaded"/);
  });

  it("SIGHUP reloads the file", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B"] });
    write({ servers: ["A", "B", "C"] });
    process.kill(gw.process.pid!, "SIGHUP");
    await eventually(async () => "C" in await states(adminPort), "C after SIGHUP");
    assert.equal(await metric(adminPort, "sticky_gateway_config_generation"), 1);
    assert.equal((await ask(gw.port, { cookies: [cookieOf(C)] })).servedBy, "C");
    await logged(gw, /"event":"config_reloaded"[^\n]*"trigger":"SIGHUP"/);
  });

  it("--watch reloads when the file changes; a file that disappears keeps the running config", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B"] }, ["--watch"]);
    write({ servers: ["A", "B", "C"] });
    await eventually(async () => "C" in await states(adminPort), "C after the file changed");
    rmSync(gw.configFile);
    await eventually(
      async () => gw.stderr().includes("file not found"),
      "the missing file reported",
    );
    await sleep(600);
    const missing = gw.stderr().split("\n").filter((l) =>
      l.includes(`"event":"config_reload_problem"`) && l.includes("file not found")
    );
    assert.equal(missing.length, 1, "logged once for the change");
    assert.deepEqual(Object.keys(await states(adminPort)), ["A", "B", "C"]);
    assert.equal((await ask(gw.port, { cookies: [cookieOf(C)] })).servedBy, "C");
    write({ servers: ["A"] });
    await eventually(
      async () => Object.keys(await states(adminPort)).join() === "A",
      "the file back, with one server",
    );
    await logged(gw, /"event":"config_reloaded"[^\n]*"trigger":"watch"/);
  });

  it("a bad file changes nothing: 400 with every problem, the running config serves on", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B"] });
    write({ servers: ["A", "C"], typo: "wieght = 2" });
    const typo = await reload(adminPort);
    assert.equal(typo.status, 400);
    const problems = typo.body.problems as { path: string; message: string }[];
    assert.deepEqual(problems.map((p) => p.path), ["upstreams.app.servers[0].wieght"]);
    assert.match(problems[0].message, /unknown key/);

    write({ servers: ["A", "C"], workers: 2, server: `grace_period = "1s"` });
    const restart = await reload(adminPort);
    assert.equal(restart.status, 400);
    const paths = restart.body.problems as { path: string; message: string }[];
    assert.deepEqual(paths.map((p) => p.path), ["server.workers"]);
    assert.match(paths[0].message, /needs a restart/);

    writeFileSync(gw.configFile, "[upstreams.app\n");
    assert.equal((await reload(adminPort)).status, 400);

    assert.deepEqual(Object.keys(await states(adminPort)), ["A", "B"]);
    assert.equal((await ask(gw.port, { cookies: [cookieOf(B)] })).servedBy, "B");
    assert.equal(await metric(adminPort, "sticky_gateway_config_generation"), 0);
    assert.equal(
      await metric(adminPort, `sticky_gateway_config_reloads_total{result="error"}`),
      3,
    );
    await logged(gw, /"event":"config_reload_problem"[^\n]*"key":"server.workers"/);
  });

  it("keep-alive clients stay 100% sticky through 20 reloads under load, 0 failed; a WebSocket lives on", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B", "C"] });
    const socket = await rawWebSocket(gw.port, { path: "/chat" });
    assert.equal(socket.status, 101);

    const clients = Array.from({ length: 9 }, () => ({
      agent: new Agent({ keepAlive: true, maxSockets: 1 }),
      cookie: undefined as string | undefined,
      server: undefined as string | undefined,
      requests: 0,
      failures: [] as string[],
      moved: 0,
    }));
    let running = true;
    const loops = clients.map(async (client) => {
      while (running) {
        try {
          const answer = await get(gw.port, client.agent, client.cookie);
          client.requests++;
          if (answer.status !== 200) client.failures.push(`status ${answer.status}`);
          if (client.server === undefined) {
            client.server = answer.upstream;
            client.cookie = answer.cookie;
          } else if (answer.upstream !== client.server) client.moved++;
        } catch (error) {
          client.failures.push((error as Error).message);
        }
        await sleep(5);
      }
    });
    const shapes: Shape[] = [
      { servers: ["A weight:3", "B", "C"], httponly: true },
      { servers: ["A", "B weight:2", "C weight:2"] },
    ];
    for (let i = 0; i < 20; i++) {
      write(shapes[i % 2]);
      const answer = await reload(adminPort);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.generation, i + 1);
      await sleep(50);
    }
    running = false;
    await Promise.all(loops);
    for (const client of clients) client.agent.destroy();

    assert.deepEqual(clients.flatMap((c) => c.failures), [], "no failed request");
    assert.deepEqual(clients.map((c) => c.moved), clients.map(() => 0), "100% sticky");
    assert.ok(clients.every((c) => c.requests > 20), clients.map((c) => c.requests).join());
    assert.equal(new Set(clients.map((c) => c.server)).size, 3, "clients on every server");
    socket.send("whoami");
    assert.equal(await socket.nextText(), "W", "the WebSocket opened before the reloads");
    socket.close(1000);
    assert.equal(await metric(adminPort, "sticky_gateway_config_generation"), 20);
  });

  it("a drain set through the API outlives a reload; the file's own state then applies", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B"] });
    const put = await rawRequest(adminPort, {
      method: "PUT",
      path: "/api/v1/upstreams/app/servers/B/state",
      headers: [["Content-Type", "application/json"]],
      body: `{"state":"drain"}`,
    });
    assert.equal(put.status, 200);
    write({ servers: ["A weight:2", "B", "C"] });
    assert.equal((await reload(adminPort)).status, 200);
    assert.deepEqual(await states(adminPort), { A: "ready", B: "drain", C: "ready" });
    // Its clients are still served there, no new one goes there.
    assert.equal((await ask(gw.port, { cookies: [cookieOf(B)] })).servedBy, "B");
    for (let i = 0; i < 6; i++) assert.notEqual((await ask(gw.port)).servedBy, "B");

    write({ servers: ["A", "B state:ready", "C"] });
    assert.equal((await reload(adminPort)).status, 200);
    assert.deepEqual(await states(adminPort), { A: "ready", B: "ready", C: "ready" });
  });

  it("reloads a config of 1,000 servers in every thread (duration_ms in the event)", async () => {
    const big = (weight: number): Shape => ({
      servers: ["A", "B"],
      workers: 2,
      big: { servers: 1000, weight },
    });
    const { gw, adminPort, write } = await start(big(1));
    const durations: number[] = [];
    for (let i = 0; i < 5; i++) {
      write(big(2 + i));
      const answer = await reload(adminPort);
      assert.equal(answer.status, 200);
      const changes = answer.body.changes as { changed: Record<string, string[]> };
      assert.equal(changes.changed.big.length, 1000, "every weight changed");
      const pattern = new RegExp(`"event":"config_reloaded".*"generation":${i + 1},.*`);
      await logged(gw, pattern);
      const line = gw.stderr().split("\n").find((l) => pattern.test(l))!;
      durations.push(JSON.parse(line).duration_ms);
    }
    // The target is 50 ms; this machine may be busy, so only a sanity bound here.
    console.log(`reload of 1,002 servers, workers = 2: ${durations.join(", ")} ms`);
    assert.ok(durations.every((ms) => ms < 2000), durations.join());
    assert.equal((await ask(gw.port)).status, 200);
  });

  it("reload_max_age cuts the old generation's streams and WebSockets that long after a reload, not the new ones", async () => {
    const shape: Shape = { servers: ["A"], server: `reload_max_age = "1s"` };
    const { gw, adminPort, write } = await start(shape);
    const oldStream = sseStream(gw.port);
    const oldSocket = await rawWebSocket(gw.port, { path: "/chat" });
    await oldStream.events(2);
    write({ ...shape, httponly: true });
    assert.equal((await reload(adminPort)).status, 200);
    const reloadedAt = Date.now();
    const newStream = sseStream(gw.port);
    const newSocket = await rawWebSocket(gw.port, { path: "/chat" });
    // Both old ones still work right after the reload…
    oldSocket.send("whoami");
    assert.equal(await oldSocket.nextText(), "W");
    const before = oldStream.received();
    await sleep(300);
    assert.ok(oldStream.received() > before, "the old stream still flows after the reload");
    // …and end about 1 s after it: the stream cut (no terminating chunk), the WebSocket with 1001.
    const close = await oldSocket.next(3000);
    assert.deepEqual(close.type === "close" && close.code, 1001, "a close frame, 1001");
    await oldStream.ended;
    const took = Date.now() - reloadedAt;
    assert.ok(took >= 800 && took < 3000, `cut ${took} ms after the reload`);
    assert.equal(oldStream.complete(), false);
    // The new generation's are untouched.
    const flowing = newStream.received();
    await sleep(400);
    assert.ok(newStream.received() > flowing, "the new stream flows on");
    newSocket.send("whoami");
    assert.equal(await newSocket.nextText(), "W");
    newSocket.close(1000);
    newStream.stop();
  });

  it("a changed listen is bound before the old one stops accepting; its open connections are served on; a bind failure keeps it", async () => {
    const shape = (listen: string, server = "A"): Shape => ({
      servers: [server],
      workers: 2,
      server: `listen = "${listen}"`,
    });
    const { gw, adminPort, write } = await start(shape("127.0.0.1:0"));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await get(gw.port, agent, undefined)).status, 200);

    write(shape("127.0.0.2:0", "B"));
    const moved = await reload(adminPort);
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const listen = String(moved.body.listen);
    assert.match(listen, /^127\.0\.0\.2:\d+$/);
    const newPort = Number(listen.split(":")[1]);
    // Every thread listens on the new address (new connections spread over both).
    for (let i = 0; i < 20; i++) {
      assert.equal(await statusAt("127.0.0.2", newPort), 200, `request ${i} on the new address`);
    }
    // The old address takes no new connection…
    await assert.rejects(rawRequest(gw.port, { path: "/" }), /ECONNREFUSED/);
    // …but the keep-alive connection opened before is served on, by the new generation.
    const kept = await get(gw.port, agent, undefined);
    assert.equal(kept.status, 200);
    assert.equal(kept.upstream, "B", "the new generation answers it");
    agent.destroy();

    // A port another process holds (without SO_REUSEPORT): 400, and the listener stays.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const busy = (blocker.address() as AddressInfo).port;
    try {
      write(shape(`127.0.0.1:${busy}`, "B"));
      const refused = await reload(adminPort);
      assert.equal(refused.status, 400);
      const problems = refused.body.problems as { path: string; message: string }[];
      assert.equal(problems[0].path, "server.listen");
      assert.match(problems[0].message, /cannot listen on 127\.0\.0\.1:\d+: .*running listener/);
      assert.equal(await statusAt("127.0.0.2", newPort), 200);
      assert.equal(await metric(adminPort, "sticky_gateway_config_generation"), 1);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it("new certificate files apply to new TLS connections without a restart; open ones go on", async () => {
    const first = makeCertificates();
    const second = makeCertificates();
    try {
      const shape = (certs: typeof first): Shape => ({
        servers: ["A"],
        server: `tls = { cert = "${certs.certFile}", key = "${certs.keyFile}" }`,
      });
      const { gw, adminPort, write } = await start(shape(first));
      const open = await tlsKeepAlive(gw.port, first.ca);
      assert.match(await open.get(), /^HTTP\/1\.1 200/);
      write(shape(second));
      const renewed = await reload(adminPort);
      assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
      // New connections get the new certificate (the old CA no longer verifies it)…
      assert.equal((await httpsGet(gw.port, { ca: second.ca })).status, 200);
      await assert.rejects(httpsGet(gw.port, { ca: first.ca }), /certificate|self.signed|verify/i);
      // …and the old listener's idle keep-alive connection is served on, on both runtimes: the
      // TLS listeners stop accepting alone (they own their listening socket: Deno.listenTls, a
      // node:net server on Bun), as the plain-HTTP front does. Idle for longer than a stop would
      // leave it (a second): a retire is not a stop.
      let closed = false;
      void open.closed.then(() => closed = true);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(closed, false, "the old idle TLS connection was closed by the reload");
      const again = await withTimeout(open.get(), 6000, "the old connection's next answer");
      assert.match(again, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(again, /\r\nconnection: close\r\n/i);
      open.close();
    } finally {
      first.remove();
      second.remove();
    }
  });

  it("with workers = 2 both threads switch", async () => {
    const { gw, adminPort, write } = await start({ servers: ["A", "B"], workers: 2 });
    write({ servers: ["A", "C"], workers: 2, httponly: true });
    assert.equal((await reload(adminPort)).status, 200);
    // Each ask is a new connection: SO_REUSEPORT spreads them over both threads.
    const served = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const answer = await ask(gw.port);
      assert.equal(answer.status, 200);
      assert.match(answer.sticky[0], /HttpOnly/, `request ${i}: the new generation's cookie`);
      served.add(answer.servedBy!);
    }
    assert.deepEqual([...served].sort(), ["A", "C"]);
    assert.equal(
      await metric(
        adminPort,
        `sticky_gateway_requests_total{upstream="app",server="C",class="2xx"}`,
      ),
      20,
    );
  });
});

/** One GET / on a keep-alive agent: the answering upstream and the sticky cookie, if set. */
function get(
  port: number,
  agent: Agent,
  cookie: string | undefined,
): Promise<{ status: number; upstream: string | undefined; cookie: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/",
      agent,
      headers: cookie === undefined ? {} : { cookie },
      timeout: 5000,
    }, (res) => {
      res.resume();
      res.on("end", () => {
        const set = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith("route="));
        resolve({
          status: res.statusCode ?? 0,
          upstream: res.headers["x-upstream"] as string | undefined,
          cookie: set?.split(";")[0],
        });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** An SSE stream of an event every 50 ms for 20 s through the gateway (/ticks). */
function sseStream(port: number) {
  let received = 0;
  let complete = false;
  const waiters: { count: number; resolve: () => void }[] = [];
  let stop = () => {};
  const ended = new Promise<void>((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/ticks?every=50&count=400",
      agent: false,
    }, (res) => {
      res.on("data", (chunk: Buffer) => {
        received += chunk.toString("utf8").split("\n\n").length - 1;
        for (const w of waiters.filter((w) => received >= w.count)) w.resolve();
      });
      res.on("end", () => complete = res.complete);
      res.on("close", () => {
        complete = res.complete;
        resolve();
      });
      res.on("error", () => {});
    });
    req.on("error", reject);
    req.end();
    stop = () => req.destroy();
  });
  return {
    ended,
    received: () => received,
    complete: () => complete,
    stop: () => stop(),
    events: (count: number) =>
      new Promise<void>((resolve) => {
        if (received >= count) resolve();
        else waiters.push({ count, resolve });
      }),
  };
}

/** A keep-alive TLS connection to 127.0.0.1:`port`: `get()` sends GET / and returns the head. */
async function tlsKeepAlive(port: number, ca: string) {
  const socket = tlsConnect({ host: "127.0.0.1", port, ca, ALPNProtocols: ["http/1.1"] });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  let buffered = "";
  let waiting: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("latin1");
    waiting?.();
  });
  return {
    async get(): Promise<string> {
      buffered = "";
      socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      const deadline = Date.now() + 5000;
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end >= 0) {
          const length = /content-length: *(\d+)/i.exec(buffered.slice(0, end));
          if (length !== null && buffered.length >= end + 4 + Number(length[1])) {
            return buffered;
          }
          if (length === null && buffered.endsWith("\r\n0\r\n\r\n")) return buffered;
        }
        if (Date.now() > deadline) throw new Error(`no whole answer: ${buffered}`);
        await new Promise<void>((resolve) => {
          waiting = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
    close: () => socket.destroy(),
    closed: new Promise<void>((resolve) => socket.once("close", () => resolve())),
  };
}

/** The status of GET / on a new connection to `host:port`. */
function statusAt(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path: "/", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}
