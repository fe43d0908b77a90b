/**
 * The state shared by worker threads (issue 9 point 7): slots resolved from names, values written
 * through one view read through another on the same memory (as two threads have), buffers that
 * survive structured cloning, a refused attach to another config, and the status read for
 * operations.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type GatewayConfig, parseConfig } from "../../src/config/mod.ts";
import { SharedState } from "../../src/state/shared_state.ts";
import { serverStatus } from "../../src/state/status.ts";

const TOML = `
[upstreams.app]
servers = [
  { address = "127.0.0.1:9001", id = "a" },
  { address = "127.0.0.1:9002", id = "b", state = "drain" },
  { address = "127.0.0.1:9003", id = "c", down = true, max_fails = 2, fail_timeout = "10s" },
]

[upstreams.api]
servers = ["127.0.0.1:9101", { address = "127.0.0.1:9102", backup = true }]

[[routes]]
path = "/"
upstream = "app"
`;

/** A fresh parse: each call stands for another thread's own config objects. */
function config(text = TOML): GatewayConfig {
  return parseConfig(text);
}

/** The main thread's state and a second view attached to its buffers, each on its own parse. */
function twoThreads(): { main: SharedState; worker: SharedState; cfg: GatewayConfig } {
  const cfg = config();
  const main = SharedState.create(cfg);
  const worker = SharedState.attach(config(), structuredClone(main.buffers));
  return { main, worker, cfg };
}

describe("SharedState", () => {
  it("gives each server of each upstream its own slot, found by names or by its config object", () => {
    const cfg = config();
    const state = SharedState.create(cfg);
    const app = cfg.upstreams.get("app")!;
    const api = cfg.upstreams.get("api")!;
    const slots = [
      ...app.servers.map((s) => state.serverSlot("app", s.id)),
      ...api.servers.map((s) => state.serverSlot("api", s.id)),
    ];
    assert.deepEqual(slots, [0, 1, 2, 3, 4]);
    assert.equal(state.slotOf(api.servers[1]), 4);
    assert.equal(state.upstreamSlots(api).base, 3);
    assert.equal(state.serverSlot("app", "nope"), undefined);
    assert.equal(state.serverSlot("nope", "a"), undefined);
    assert.equal(state.slotOf(config().upstreams.get("app")!.servers[0]), undefined);
  });

  it("starts from the config's admin states", () => {
    const state = SharedState.create(config());
    assert.deepEqual([0, 1, 2, 3].map((slot) => state.adminState(slot)), [
      "ready",
      "drain",
      "maint",
      "ready",
    ]);
    assert.equal(state.activeHealth(0), "unchecked");
    assert.equal(state.activeAllows(0), true);
  });

  it("shows one thread's writes to the other: admin state, gauges, sticky time, failures", () => {
    const { main, worker } = twoThreads();
    worker.addInFlight(0, 1);
    worker.addInFlight(0, 1);
    main.addInFlight(0, -1);
    assert.equal(main.inFlight(0), 1);
    assert.equal(worker.inFlight(0), 1);

    main.addConnections(3, 2);
    assert.equal(worker.connections(3), 2);

    worker.markSticky(1, 1_700_000_000_123);
    assert.equal(main.lastStickyMs(1), 1_700_000_000_123);

    assert.equal(worker.setAdminState(0, "drain", 5000), true);
    assert.equal(main.adminState(0), "drain");
    assert.equal(main.adminChangedMs(0), 5000);
    assert.equal(main.setAdminState(0, "drain"), false, "no change, no version bump");

    worker.recordFailure(2, 100_000, 10_000);
    main.recordFailure(2, 101_000, 10_000);
    assert.equal(worker.failures(2), 2);
    assert.equal(main.lastFailureMs(2), 101_000);
  });

  it("bumps the upstream's version and restarts its cursors on an admin state change", () => {
    const { main, worker, cfg } = twoThreads();
    const app = main.upstreamSlots(cfg.upstreams.get("app")!).upstream;
    const api = main.upstreamSlots(cfg.upstreams.get("api")!).upstream;
    const cursor = worker.cursor(app, "primaries");
    Atomics.add(cursor.cells, cursor.index, 7);
    const before = [main.version(app), main.version(api)];
    worker.setAdminState(1, "ready");
    assert.deepEqual([main.version(app), main.version(api)], [before[0] + 1, before[1]]);
    assert.equal(Atomics.load(cursor.cells, cursor.index), 0);
  });

  it("counts passive failures as nginx does, in the shared cells", () => {
    const cfg = config();
    const state = SharedState.create(cfg);
    const c = cfg.upstreams.get("app")!.servers[2]; // max_fails = 2, fail_timeout = 10s
    state.recordFailure(2, 100_000, c.failTimeoutMs);
    assert.equal(state.passiveFailed(2, c, 100_000), false);
    state.recordFailure(2, 105_000, c.failTimeoutMs);
    assert.equal(state.passiveFailed(2, c, 105_000), true);
    assert.equal(state.passiveFailed(2, c, 114_999), true);
    assert.equal(state.passiveFailed(2, c, 115_000), false);
    state.recordFailure(2, 130_000, c.failTimeoutMs);
    assert.equal(state.failures(2), 1, "a failure after fail_timeout starts the count anew");
    state.clearFailures(2);
    assert.equal(state.failures(2), 0);
  });

  it("keeps the last 32 check results, oldest first, and the last check", () => {
    const { main, worker } = twoThreads();
    assert.deepEqual(worker.healthHistory(0), []);
    assert.equal(worker.lastCheck(0), undefined);
    main.recordCheck(0, true, 200, 1000, 3);
    main.recordCheck(0, false, 500, 2000, 4);
    main.recordCheck(0, true, 204, 3000, 5);
    assert.deepEqual(worker.healthHistory(0), [true, false, true]);
    assert.deepEqual(worker.lastCheck(0), { atMs: 3000, status: 204, durationMs: 5 });
    const results = Array.from({ length: 40 }, (_, i) => i % 3 === 0);
    for (const passed of results) main.recordCheck(0, passed, passed ? 200 : 0, 4000, 1);
    assert.deepEqual(worker.healthHistory(0), results.slice(-32));
    assert.deepEqual(worker.healthHistory(1), [], "another server's history is apart");
  });

  it("tells which active health lets a server serve: unchecked and up, not unknown or down", () => {
    const { main, worker } = twoThreads();
    const allowed = (health: "unchecked" | "unknown" | "up" | "down") => {
      main.setActiveHealth(0, health, 1234);
      return worker.activeAllows(0);
    };
    assert.deepEqual([allowed("unknown"), allowed("up"), allowed("down"), allowed("unchecked")], [
      false,
      true,
      false,
      true,
    ]);
    assert.equal(worker.activeHealth(0), "unchecked");
    assert.equal(worker.activeChangedMs(0), 1234);
  });

  it("refuses to attach a config with other upstreams or servers", () => {
    const state = SharedState.create(config());
    const other = config(TOML.replace(`id = "b"`, `id = "bee"`));
    assert.throws(() => SharedState.attach(other, state.buffers), /another config/);
    assert.throws(
      () => state.upstreamSlots(other.upstreams.get("app")!),
      /no upstream app with these servers/,
    );
  });
});

describe("serverStatus", () => {
  it("reads a server's live state in one object, with one word for it", () => {
    const cfg = config();
    const state = SharedState.create(cfg);
    const [a, b, c] = cfg.upstreams.get("app")!.servers;
    const app = cfg.upstreams.get("app")!;
    const summary = (server = a) => serverStatus(state, app, server, 200_000).summary;
    assert.equal(summary(), "up");
    assert.equal(summary(b), "drain");
    assert.equal(summary(c), "maint");
    state.recordFailure(0, 199_000, a.failTimeoutMs);
    assert.equal(summary(), "failed");
    state.setActiveHealth(0, "down");
    assert.equal(summary(), "down");
    state.setActiveHealth(1, "up");
    state.addInFlight(1, 3);
    state.markSticky(1, 150_000);
    state.recordCheck(1, true, 200, 199_500, 2);
    const status = serverStatus(state, app, b, 200_000);
    assert.deepEqual(
      { ...status, lastCheck: status.lastCheck && { ...status.lastCheck } },
      {
        upstream: "app",
        server: "b",
        state: "drain",
        health: "up",
        failed: false,
        failures: 0,
        available: true,
        summary: "drain",
        inFlight: 3,
        connections: 0,
        lastStickyMs: 150_000,
        healthHistory: [true],
        lastCheck: { atMs: 199_500, status: 200, durationMs: 2 },
      },
    );
    assert.equal(serverStatus(state, app, a, 200_000).available, false);
    assert.equal(serverStatus(state, app, c, 200_000).lastStickyMs, undefined);
  });
});
