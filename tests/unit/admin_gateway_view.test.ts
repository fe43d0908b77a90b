import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseAddress, parseConfig } from "../../src/config/mod.ts";
import { SharedState } from "../../src/state/mod.ts";
import { Balancer } from "../../src/balancer/balancer.ts";
import { stickyCounts } from "../../src/ops/admin/mod.ts";
import {
  type AdminStateChange,
  createAdminHandler,
  createGatewayView,
  type ServerTotals,
} from "../../src/ops/admin/mod.ts";

const CONFIG = `
[upstreams.app]
servers = [
  "127.0.0.1:9001",
  { address = "127.0.0.1:9002", id = "web-b", max_fails = 2 },
  { address = "127.0.0.1:9003", id = "spare", backup = true },
]
[upstreams.app.sticky]

[upstreams.api]
servers = [{ address = "127.0.0.1:9101", id = "api-1", state = "drain" }]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/api/"
upstream = "api"
`;

function setup(now = 1_000_000) {
  const config = parseConfig(CONFIG);
  const state = SharedState.create(config);
  const changes: AdminStateChange[] = [];
  const totals = new Map<string, ServerTotals>();
  const view = createGatewayView({
    config: () => config,
    state: () => state,
    totals: (u, id) => totals.get(`${u}/${id}`),
    metricsText: () => "m 1\n",
    onStateChange: (change) => changes.push(change),
    now: () => now,
  });
  const slot = (u: string, id: string) => state.serverSlot(u, id)!;
  return { config, state, view, changes, totals, slot };
}

describe("the gateway's admin view (config snapshot + shared state + metrics totals)", () => {
  it("rows: config facts, admin state, passive and active health, in-flight, last sticky", () => {
    const { view, state, slot } = setup();
    let [app, api] = view.upstreams();
    assert.equal(app.stickyCookie, "route");
    assert.equal(api.stickyCookie, null);
    assert.deepEqual(
      app.servers.map((s) => [s.id, s.backup, s.state, s.health.passive, s.health.active]),
      [
        ["127.0.0.1:9001", false, "ready", "ok", "unchecked"],
        ["web-b", false, "ready", "ok", "unchecked"],
        ["spare", true, "ready", "ok", "unchecked"],
      ],
    );
    assert.equal(api.servers[0].state, "drain");
    assert.equal(app.servers[0].lastStickyMs, null);
    assert.equal(app.servers[0].latency, null, "no metrics: not measured");

    const b = slot("app", "web-b");
    state.recordFailure(b, 999_000, 10_000);
    state.recordFailure(b, 999_500, 10_000);
    state.addInFlight(b, 2);
    state.markSticky(b, 999_900);
    state.setActiveHealth(slot("app", "spare"), "down");
    state.recordCheck(slot("app", "spare"), true, 200, 999_000, 3);
    state.recordCheck(slot("app", "spare"), false, 503, 999_500, 3);
    [app] = view.upstreams();
    assert.equal(app.servers[1].health.passive, "failed", "max_fails = 2 reached");
    assert.equal(app.servers[1].inFlight, 2);
    assert.equal(app.servers[1].lastStickyMs, 999_900);
    assert.deepEqual(app.servers[2].health, {
      passive: "ok",
      active: "down",
      history: [true, false],
    });
  });

  it("counts come from the metrics' per-server totals", () => {
    const { view, totals } = setup();
    const latency = { boundsMs: [1, 10, Infinity], counts: [1, 5, 6] };
    totals.set("app/web-b", {
      requests: 6,
      latency,
      // A `none` count (from the metrics) is not shown.
      sticky: { ...stickyCounts({ hit: 3, new: 2, repin: 1 }), none: 9 } as ServerTotals["sticky"],
    });
    const row = view.upstreams()[0].servers[1];
    assert.equal(row.requests, 6);
    assert.deepEqual(row.latency, latency);
    assert.deepEqual(
      row.sticky,
      stickyCounts({ hit: 3, new: 2, repin: 1, invalid: 0, refused: 0 }),
    );
  });

  it("setServerState changes the state for every thread; the balancer of another thread follows", () => {
    const { config, state, view, changes } = setup();
    const worker = SharedState.attach(config, state.buffers);
    const app = config.upstreams.get("app")!;
    const balancer = new Balancer(app, worker);

    assert.equal(view.setServerState("app", "web-b", "drain"), "ok");
    assert.equal(view.setServerState("app", "web-b", "drain"), "ok", "again: no change");
    assert.deepEqual(changes, [
      { upstream: "app", server: "web-b", from: "ready", to: "drain", reason: "admin api" },
    ]);
    assert.equal(worker.adminState(worker.serverSlot("app", "web-b")!), "drain");
    const picks = Array.from({ length: 6 }, () => balancer.pick(Date.now())?.id);
    assert.ok(!picks.includes("web-b"), `no new client for a draining server: ${picks}`);
    assert.equal(view.upstreams()[0].servers[1].state, "drain");

    assert.equal(view.setServerState("nope", "web-b", "maint"), "no_upstream");
    assert.equal(view.setServerState("app", "web-z", "maint"), "no_server");
    assert.equal(view.setServerState("api", "web-b", "maint"), "no_server", "ids are per upstream");
  });

  it("ready: every upstream has a server taking new clients (a backup counts)", () => {
    const { view, state, slot } = setup();
    assert.equal(view.ready(), false, "api's only server drains");
    view.setServerState("api", "api-1", "ready");
    assert.equal(view.ready(), true);
    view.setServerState("app", "127.0.0.1:9001", "maint");
    view.setServerState("app", "web-b", "drain");
    assert.equal(view.ready(), true, "the backup takes them");
    state.setActiveHealth(slot("app", "spare"), "down");
    assert.equal(view.ready(), false);
    state.setActiveHealth(slot("app", "spare"), "up");
    assert.equal(view.ready(), true);
    assert.equal(view.healthy(), true);
    assert.equal(view.metricsText(), "m 1\n");
  });

  it("through the handler: PUT …/state drains the server in the shared state", async () => {
    const { view, state, slot } = setup();
    const listen = parseAddress("127.0.0.1:9901");
    if (typeof listen === "string") throw new Error(listen);
    const handle = createAdminHandler(view, { listen });
    const response = await handle(
      new Request("http://127.0.0.1:9901/api/v1/upstreams/app/servers/web-b/state", {
        method: "PUT",
        headers: { host: "127.0.0.1:9901" },
        body: `{"state": "maint"}`,
      }),
    );
    assert.equal(response.status, 200);
    assert.equal(state.adminState(slot("app", "web-b")), "maint");
    const readyz = await handle(
      new Request("http://127.0.0.1:9901/readyz", { headers: { host: "127.0.0.1:9901" } }),
    );
    assert.equal(readyz.status, 503, "api-1 drains: api takes no new client");
  });
});
