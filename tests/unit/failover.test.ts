/**
 * The one failover loop (src/proxy/failover.ts) with a real balancer: which servers are tried,
 * what is marked, when a request stays put.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Server } from "../../src/config/mod.ts";
import { createBalancers } from "../../src/balancer/balancer.ts";
import { type Attempt, failover } from "../../src/proxy/failover.ts";
import { type FailureCode, UpstreamError } from "../../src/proxy/errors.ts";

const NOW = 1_000_000;

function setup() {
  const config = parseConfig(
    `[upstreams.app]\nservers = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]\n`,
    "t.toml",
  );
  const upstream = config.upstreams.get("app")!;
  const balancer = createBalancers(config).get(upstream)!;
  return { balancer, servers: upstream.primaries };
}

/** Runs the loop with `fail(server)` deciding each attempt's fate; returns what happened. */
async function run(
  options: Partial<Attempt<string>> & {
    fail: (server: Server) => FailureCode | undefined;
    pinnedIndex?: number;
  },
) {
  const { balancer, servers } = setup();
  const tried: number[] = [];
  const logged: FailureCode[] = [];
  const outcome = await failover<string>(
    {
      balancer,
      noFallback: false,
      now: NOW,
      replayable: () => true,
      ...options,
      pinned: options.pinnedIndex === undefined ? undefined : servers[options.pinnedIndex],
      send(server) {
        tried.push(server.address.port);
        const code = options.fail(server);
        return code === undefined
          ? Promise.resolve(`from ${server.address.port}`)
          : Promise.reject(new UpstreamError(code));
      },
    },
    () => NOW,
    (_server, code) => logged.push(code),
  );
  const available = servers.map((s) => balancer.isAvailable(s, NOW));
  return { outcome, tried, logged, available };
}

describe("failover", () => {
  it("moves past servers that refuse, marking them, and answers from the next", async () => {
    const { outcome, tried, logged, available } = await run({
      fail: (s) => s.address.port < 3 ? "connect_refused" : undefined,
    });
    assert.equal(outcome.value, "from 3");
    assert.deepEqual(tried, [1, 2, 3]);
    assert.deepEqual(logged, ["connect_refused", "connect_refused"]);
    assert.deepEqual(available, [false, false, true]);
  });

  it("answers the last failure when no server is left", async () => {
    const { outcome, tried } = await run({ fail: () => "connect_refused" });
    assert.equal(outcome.failure, "connect_refused");
    assert.deepEqual(tried, [1, 2, 3]);
  });

  it("stays when the request reached the upstream, or when it can no longer be replayed", async () => {
    const reset = await run({ fail: () => "upstream_reset" });
    assert.equal(reset.outcome.failure, "upstream_reset");
    assert.deepEqual(reset.tried, [1]);
    const consumed = await run({ fail: () => "connect_refused", replayable: () => false });
    assert.equal(consumed.outcome.failure, "connect_refused");
    assert.deepEqual(consumed.tried, [1]);
  });

  it("never leaves a pinned server under no_fallback", async () => {
    const { outcome, tried } = await run({
      pinnedIndex: 1,
      noFallback: true,
      fail: () => "connect_refused",
    });
    assert.equal(outcome.failure, "connect_refused");
    assert.deepEqual(tried, [2]);
  });

  it("does not mark a server for a bad response, nor log or mark the client's own failures", async () => {
    const bad = await run({ fail: () => "bad_response" });
    assert.equal(bad.outcome.failure, "bad_response");
    assert.deepEqual(bad.logged, ["bad_response"]);
    assert.deepEqual(bad.available, [true, true, true]);
    const gone = await run({ fail: () => "client_closed" });
    assert.equal(gone.outcome.failure, "client_closed");
    assert.deepEqual(gone.logged, []);
    const clientSide = await run({
      fail: () => "read_timeout",
      clientFailure: (code) => code === "read_timeout" ? "client_timeout" : undefined,
    });
    assert.equal(clientSide.outcome.failure, "client_timeout");
    assert.deepEqual(clientSide.available, [true, true, true]);
  });
});

describe("failover: attempts and the sticky outcome", () => {
  it("a pinned server that answers: hit, one attempt", async () => {
    const { outcome } = await run({ pinnedIndex: 1, sticky: "hit", fail: () => undefined });
    assert.equal(outcome.value, "from 2");
    assert.equal(outcome.sticky, "hit");
    assert.equal(outcome.attempts, 1);
  });

  it("a pinned server that fails and another that answers: repin, two attempts", async () => {
    const { outcome, tried } = await run({
      pinnedIndex: 1,
      sticky: "hit",
      fail: (s) => s.address.port === 2 ? "connect_refused" : undefined,
    });
    assert.deepEqual(tried, [2, 1]);
    assert.equal(outcome.value, "from 1");
    assert.equal(outcome.sticky, "repin");
    assert.equal(outcome.attempts, 2);
  });

  it("a pinned server that fails under no_fallback: still hit (the request stayed), the failure", async () => {
    const { outcome } = await run({
      pinnedIndex: 1,
      sticky: "hit",
      noFallback: true,
      fail: () => "connect_refused",
    });
    assert.equal(outcome.failure, "connect_refused");
    assert.equal(outcome.sticky, "hit");
    assert.equal(outcome.attempts, 1);
  });

  it("a balanced request keeps its outcome through retries; none when not sticky", async () => {
    const fresh = await run({
      sticky: "new",
      fail: (s) => s.address.port < 3 ? "connect_refused" : undefined,
    });
    assert.equal(fresh.outcome.sticky, "new");
    assert.equal(fresh.outcome.attempts, 3);
    const plain = await run({ fail: () => "connect_refused" });
    assert.equal(plain.outcome.sticky, "none");
    assert.equal(plain.outcome.attempts, 3);
  });

  it("no server to try: no attempt", async () => {
    const { balancer, servers } = setup();
    for (const server of servers) balancer.setState(server, "maint");
    const outcome = await failover<string>(
      {
        balancer,
        pinned: undefined,
        noFallback: false,
        sticky: "invalid",
        now: NOW,
        replayable: () => true,
        send: () => Promise.resolve("never"),
      },
      () => NOW,
      undefined,
    );
    assert.deepEqual(outcome, { failure: "no_server", attempts: 0, sticky: "invalid" });
  });
});
