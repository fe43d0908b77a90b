/**
 * Active health checks (issue 9 point 6) against real upstream HTTP servers on 127.0.0.1, through
 * the gateway's own upstream client: the first round decides before any traffic, `fall` failed
 * checks take a server out and `rise` passed ones bring it back (seen by a Balancer on the same
 * shared state), timeouts and refused connections fail, the probe's request is as configured,
 * `drain_status` drains and undrains, `stop()` stops.
 */
import { after, afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { parseConfig, type Upstream } from "../../src/config/mod.ts";
import { DEFAULT_STATUSES, type HealthCheckSettings } from "../../src/config/health.ts";
import { Balancer } from "../../src/balancer/balancer.ts";
import { SharedState } from "../../src/state/shared_state.ts";
import { Http1Transport } from "../../src/proxy/http1.ts";
import { connectNodeSocket } from "../../src/runtime/shared/node_socket.ts";
import {
  type CheckedConfig,
  type CheckResult,
  HealthChecker,
  type HealthEvent,
} from "../../src/ops/health/checker.ts";

/** An upstream whose /health answer the test sets. */
interface Backend {
  readonly address: string;
  /** Status of the next answers. */
  status: number;
  /** Delay before answering, ms. */
  delayMs: number;
  /** Send the head, then hold the body this long. */
  bodyDelayMs: number;
  readonly requests: { url: string; host: string; userAgent: string }[];
  readonly connections: number;
  close(): Promise<void>;
}

const backends: Backend[] = [];

async function backend(status = 200): Promise<Backend> {
  const sockets = new Set<Socket>();
  const state = {
    status,
    connections: 0,
    delayMs: 0,
    bodyDelayMs: 0,
    requests: [] as Backend["requests"],
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests.push({
      url: req.url ?? "",
      host: req.headers.host ?? "",
      userAgent: req.headers["user-agent"] ?? "",
    });
    const body = "x".repeat(3000);
    const answer = () => {
      res.writeHead(state.status, { "content-length": String(body.length) });
      if (state.bodyDelayMs === 0) return res.end(body);
      res.write(body.slice(0, 10));
      setTimeout(() => res.end(body.slice(10)), state.bodyDelayMs);
    };
    if (state.delayMs === 0) answer();
    else setTimeout(answer, state.delayMs);
  });
  server.on("connection", (socket: Socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const made: Backend = Object.assign(state, {
    address: `127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  backends.push(made);
  return made;
}

/** A closed port: connections to it are refused. */
async function closedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

const FAST: HealthCheckSettings = {
  path: "/health",
  intervalMs: 40,
  timeoutMs: 500,
  rise: 2,
  fall: 2,
  statuses: DEFAULT_STATUSES,
};

interface Setup {
  readonly app: Upstream;
  readonly state: SharedState;
  readonly balancer: Balancer;
  readonly checker: HealthChecker;
  readonly events: HealthEvent[];
  readonly checks: CheckResult[];
  /** Slot of the n-th server. */
  slot(n: number): number;
}

const running: { checker: HealthChecker; transport: Http1Transport }[] = [];

/** An upstream `app` of these addresses with `[health]` = settings, checked from now on. */
function check(addresses: readonly string[], settings: Partial<HealthCheckSettings> = {}): Setup {
  const servers = addresses.map((a, i) => `{ address = "${a}", id = "s${i}" }`).join(", ");
  const parsed = parseConfig(`[upstreams.app]\nservers = [${servers}]\n`);
  const app = { ...parsed.upstreams.get("app")!, health: { ...FAST, ...settings } };
  const config: CheckedConfig = { upstreams: new Map([["app", app]]) };
  const state = SharedState.create(config);
  const balancer = new Balancer(app, state);
  const events: HealthEvent[] = [];
  const checks: CheckResult[] = [];
  const transport = new Http1Transport(connectNodeSocket);
  const checker = new HealthChecker(config, state, transport, {
    onEvent: (event) => events.push(event),
    onCheck: (result) => checks.push(result),
  });
  running.push({ checker, transport });
  return {
    app,
    state,
    balancer,
    checker,
    events,
    checks,
    slot: (n) => balancer.slot(app.servers[n]),
  };
}

/** Waits until `predicate` holds (polling), failing after `ms`. */
async function until(predicate: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("HealthChecker", () => {
  afterEach(async () => {
    for (const { checker, transport } of running.splice(0)) {
      await checker.stop();
      transport.close();
    }
  });
  after(async () => {
    for (const b of backends.splice(0)) await b.close();
  });

  it("lets no server take traffic before its first check, which then decides at once", async () => {
    const good = await backend(200);
    const bad = await backend(500);
    const { app, state, balancer, checker, events, slot } = check([good.address, bad.address]);
    assert.deepEqual([state.activeHealth(slot(0)), state.activeHealth(slot(1))], [
      "unknown",
      "unknown",
    ]);
    assert.equal(balancer.pick(Date.now()), undefined, "nothing is picked before the first round");
    await checker.firstRound();
    assert.deepEqual([state.activeHealth(slot(0)), state.activeHealth(slot(1))], ["up", "down"]);
    assert.deepEqual(
      events.map((e) => [e.server, e.kind, e.from, e.to, e.reason]).sort(),
      [
        ["s0", "health", "unknown", "up", "first check passed (status 200)"],
        ["s1", "health", "unknown", "down", "first check failed (status 500)"],
      ],
    );
    assert.equal(balancer.isAvailable(app.servers[1], Date.now()), false, "pinned clients too");
    const picks = Array.from({ length: 4 }, () => balancer.pick(Date.now())?.id);
    assert.deepEqual(picks, ["s0", "s0", "s0", "s0"]);
  });

  it("takes a server out after `fall` failed checks in a row and back after `rise` passed ones", async () => {
    const a = await backend(200);
    const b = await backend(200);
    const { app, state, balancer, checker, events, slot } = check([a.address, b.address], {
      fall: 3,
      rise: 2,
    });
    await checker.firstRound();
    const eventsBefore = events.length;
    b.status = 503;
    await until(() => state.activeHealth(slot(1)) === "down", "b down");
    const down = events.slice(eventsBefore);
    assert.deepEqual(down.map((e) => [e.server, e.from, e.to, e.reason]), [
      ["s1", "up", "down", "3 checks failed in a row (last: status 503)"],
    ]);
    assert.equal(balancer.isAvailable(app.servers[1], Date.now()), false);
    assert.ok(
      Array.from({ length: 5 }, () => balancer.pick(Date.now())?.id).every((id) => id === "s0"),
    );
    b.status = 204;
    await until(() => state.activeHealth(slot(1)) === "up", "b up again");
    const up = events.slice(eventsBefore + 1);
    assert.deepEqual(up.map((e) => [e.server, e.from, e.to, e.reason]), [
      ["s1", "down", "up", "2 checks passed in a row (last: status 204)"],
    ]);
    assert.equal(balancer.isAvailable(app.servers[1], Date.now()), true);
    // The history shows the run of failures that took it down, each check once.
    const history = state.healthHistory(slot(1));
    const text = history.map((passed) => (passed ? "+" : "-")).join("");
    assert.match(text, /^\++-{3,}\+\+/, text);
    assert.equal(state.healthHistory(slot(0)).every((passed) => passed), true);
  });

  it("does not take a server out for fewer than `fall` failures", async () => {
    const a = await backend(200);
    const { state, checker, slot, checks } = check([a.address], { fall: 3 });
    await checker.firstRound();
    a.status = 500;
    await until(() => checks.filter((c) => !c.passed).length >= 2, "two failures");
    a.status = 200;
    const at = checks.length;
    await until(() => checks.length > at + 2, "more checks");
    assert.equal(state.activeHealth(slot(0)), "up");
    assert.ok(state.healthHistory(slot(0)).some((passed) => !passed));
  });

  it("fails a check that times out (head or body), or whose connection is refused", async () => {
    const slowHead = await backend(200);
    slowHead.delayMs = 2000;
    const slowBody = await backend(200);
    slowBody.bodyDelayMs = 2000;
    const refused = await closedAddress();
    const started = Date.now();
    const { state, checker, checks, slot } = check(
      [slowHead.address, slowBody.address, refused],
      { timeoutMs: 150 },
    );
    await checker.firstRound();
    assert.ok(Date.now() - started < 1500, `first round took ${Date.now() - started} ms`);
    const first = new Map(checks.map((c) => [c.server, c]));
    assert.equal(first.get("s0")?.error, "timeout");
    assert.equal(first.get("s1")?.error, "timeout");
    assert.equal(first.get("s1")?.status, 0, "a body cut by the timeout is no answer");
    assert.equal(first.get("s2")?.error, "connect_refused");
    for (const c of first.values()) assert.equal(c.passed, false);
    assert.ok((first.get("s0")?.durationMs ?? 0) >= 140);
    assert.deepEqual([0, 1, 2].map((n) => state.activeHealth(slot(n))), ["down", "down", "down"]);
    assert.equal(state.lastCheck(slot(2))?.status, 0);
  });

  it("sends GET path with the configured Host (else the address), and reuses its connection", async () => {
    const a = await backend(200);
    const b = await backend(200);
    const withHost = check([a.address], { path: "/status?deep=1", host: "app.internal" });
    const plain = check([b.address]);
    await withHost.checker.firstRound();
    await plain.checker.firstRound();
    await until(() => a.requests.length >= 4 && b.requests.length >= 1, "4 probes");
    assert.deepEqual(a.requests[0], {
      url: "/status?deep=1",
      host: "app.internal",
      userAgent: "sticky-gateway-health-check",
    });
    assert.deepEqual([b.requests[0].url, b.requests[0].host], ["/health", b.address]);
    assert.equal(a.connections, 1, "the body was read whole: the connection went back to the pool");
  });

  it("passes only the configured statuses", async () => {
    const a = await backend(200);
    const b = await backend(204);
    const { state, checker, slot } = check([a.address, b.address], {
      statuses: [{ from: 204, to: 204 }],
    });
    await checker.firstRound();
    assert.deepEqual([state.activeHealth(slot(0)), state.activeHealth(slot(1))], ["down", "up"]);
  });

  it("puts a server answering drain_status into drain, and back to ready once it answers 200", async () => {
    const a = await backend(200);
    const b = await backend(503);
    const { app, state, balancer, checker, events, slot } = check([a.address, b.address], {
      drainStatus: 503,
    });
    await checker.firstRound();
    assert.equal(state.activeHealth(slot(1)), "up", "a drain answer passes");
    assert.equal(balancer.state(app.servers[1]), "drain");
    assert.equal(balancer.isAvailable(app.servers[1], Date.now()), true, "pinned clients stay");
    assert.deepEqual(
      Array.from({ length: 3 }, () => balancer.pick(Date.now())?.id),
      ["s0", "s0", "s0"],
    );
    const drained = events.filter((e) => e.kind === "state");
    assert.deepEqual(drained.map((e) => [e.server, e.from, e.to, e.reason]), [
      ["s1", "ready", "drain", "health check answered 503 (drain_status)"],
    ]);
    b.status = 200;
    await until(() => balancer.state(app.servers[1]) === "ready", "b ready again");
    assert.deepEqual(events.filter((e) => e.kind === "state").slice(1).map((e) => e.reason), [
      "health check answered 200 again",
    ]);
  });

  it("leaves an operator's drain alone", async () => {
    const a = await backend(200);
    const { app, balancer, checker, checks } = check([a.address], { drainStatus: 503 });
    await checker.firstRound();
    balancer.setState(app.servers[0], "drain");
    const at = checks.length;
    await until(() => checks.length >= at + 3, "three more checks");
    assert.equal(balancer.state(app.servers[0]), "drain");
  });

  it("stops: a hanging probe is cut, and no more requests are sent", async () => {
    const a = await backend(200);
    const { checker } = check([a.address], { timeoutMs: 5000 });
    await checker.firstRound();
    a.delayMs = 3000;
    await until(() => a.requests.length >= 2, "a probe under way");
    const started = Date.now();
    await checker.stop();
    assert.ok(Date.now() - started < 500, `stop took ${Date.now() - started} ms`);
    const count = a.requests.length;
    await sleep(200);
    assert.equal(a.requests.length, count);
  });

  it("has nothing to do for upstreams without [health]", async () => {
    const parsed = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:1"]\n`);
    const state = SharedState.create(parsed);
    const transport = new Http1Transport(connectNodeSocket);
    const checker = new HealthChecker(parsed, state, transport);
    running.push({ checker, transport });
    await checker.firstRound();
    assert.equal(checker.servers, 0);
    assert.equal(state.activeHealth(0), "unchecked");
  });
});
