/**
 * The pure parts of a reload (issue 10): the per-upstream summary of what changed, the keys that
 * need a restart, the state carried by (upstream, server id), the metrics carried per thread, and
 * reloads run one at a time with a storm coalesced.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type GatewayConfig, parseConfig, type Upstream } from "../../src/config/mod.ts";
import { SharedState } from "../../src/state/shared_state.ts";
import { Metrics } from "../../src/ops/metrics/metrics.ts";
import { renderMetrics } from "../../src/ops/metrics/render.ts";
import type { RequestRecord } from "../../src/proxy/request_record.ts";
import {
  configChanges,
  listenerChanged,
  restartProblems,
  sameRotation,
} from "../../src/reload/changes.ts";
import { ReloadQueue } from "../../src/reload/queue.ts";

/** A config with `servers` (TOML array items) in upstream app, and what else is given. */
function config(servers: string, extra = "", sticky = `path = "/"`): GatewayConfig {
  return parseConfig(`${extra}
[upstreams.app]
servers = [${servers}]
[upstreams.app.sticky]
${sticky}
`);
}

const A = `{ address = "127.0.0.1:9001", id = "a" }`;
const B = `{ address = "127.0.0.1:9002", id = "b" }`;
const C = `{ address = "127.0.0.1:9003", id = "c" }`;

function app(cfg: GatewayConfig): Upstream {
  return cfg.upstreams.get("app")!;
}

function slot(state: SharedState, id: string): number {
  return state.serverSlot("app", id)!;
}

describe("reload: what changed", () => {
  it("lists servers added, removed and changed per upstream, matched by id", () => {
    const before = config(`${A}, ${B}`);
    const after = config(`{ address = "127.0.0.1:9001", id = "a", weight = 3 }, ${C}`);
    assert.deepEqual(configChanges(before, after), {
      added: { app: ["c"] },
      removed: { app: ["b"] },
      changed: { app: ["a"] },
    });
  });

  it("counts a cookie attribute as a change of every server of the upstream", () => {
    const before = config(`${A}, ${B}`);
    const after = config(`${A}, ${B}`, "", `path = "/"\nhttponly = true`);
    assert.deepEqual(configChanges(before, after).changed, { app: ["a", "b"] });
    assert.deepEqual(configChanges(before, config(`${A}, ${B}`)), {
      added: {},
      removed: {},
      changed: {},
    });
  });

  it("lists every server of an added or removed upstream", () => {
    const before = config(A);
    const after = parseConfig(`
[upstreams.app]
servers = [${A}]
[upstreams.api]
servers = ["127.0.0.1:9101", "127.0.0.1:9102"]
[[routes]]
path = "/"
upstream = "app"
`);
    assert.deepEqual(configChanges(before, after).added, {
      api: ["127.0.0.1:9101", "127.0.0.1:9102"],
    });
    assert.deepEqual(configChanges(after, before).removed, {
      api: ["127.0.0.1:9101", "127.0.0.1:9102"],
    });
  });

  it("keeps the round-robin cursor only for the same servers, order, weights and roles", () => {
    assert.equal(sameRotation(app(config(`${A}, ${B}`)), app(config(`${A}, ${B}`))), true);
    assert.equal(sameRotation(app(config(`${A}, ${B}`)), app(config(`${B}, ${A}`))), false);
    assert.equal(sameRotation(app(config(`${A}, ${B}`)), app(config(A))), false);
    const heavier = `{ address = "127.0.0.1:9002", id = "b", weight = 2 }`;
    assert.equal(sameRotation(app(config(`${A}, ${B}`)), app(config(`${A}, ${heavier}`))), false);
  });
});

describe("reload: what needs a restart", () => {
  it("names each key that changed and only applies at start", () => {
    const before = config(A, `[server]\nlisten = "127.0.0.1:8080"\nworkers = 1\n`);
    const after = config(
      A,
      `[server]\nlisten = "127.0.0.1:8081"\nworkers = 2\nupstream_client = "fetch"\n`,
    );
    const problems = restartProblems(before, after);
    assert.deepEqual(problems.map((p) => p.path), ["server.workers", "server.upstream_client"]);
    assert.match(problems[0].message, /from 1 to 2: needs a restart/);
    const reused = config(
      A,
      `[server]\nlisten = "127.0.0.1:8080"\nworkers = 1\nreuse_port = false\n`,
    );
    assert.deepEqual(restartProblems(before, reused).map((p) => p.path), ["server.reuse_port"]);
  });

  it("the client listener's address and limits are reloaded: a new listener, no restart", () => {
    const before = config(A, `[server]\nlisten = "127.0.0.1:8080"\n`);
    for (
      const line of [
        `listen = "127.0.0.1:8081"`,
        `listen = "127.0.0.1:8080"\nmax_connections = 5`,
        `listen = "127.0.0.1:8080"\nkeepalive_timeout = "5s"`,
        `listen = "127.0.0.1:8080"\nclient_header_timeout = "5s"`,
        `listen = "127.0.0.1:8080"\nclient_max_header_size = "8k"`,
      ]
    ) {
      const after = config(A, `[server]\n${line}\n`);
      assert.deepEqual(restartProblems(before, after), [], line);
      assert.equal(listenerChanged(before, after), true, line);
    }
    const timeouts = config(A, `[server]\nlisten = "127.0.0.1:8080"\nread_timeout = "5s"\n`);
    assert.equal(listenerChanged(before, timeouts), false);
  });

  it("refuses adding or moving the admin listener, and a new token, without showing it", () => {
    const admin = (listen: string, token: string) =>
      `[admin]\nlisten = "${listen}"\ntoken = "${token}"\n`;
    const before = config(A, admin("127.0.0.1:9901", "0123456789abcdef0123"));
    assert.deepEqual(restartProblems(config(A), before).map((p) => p.path), ["admin"]);
    const moved = config(A, admin("127.0.0.1:9902", "fedcba98765432100123"));
    const problems = restartProblems(before, moved);
    assert.deepEqual(problems.map((p) => p.path), ["admin.listen", "admin.token"]);
    assert.ok(!problems[1].message.includes("fedcba"));
  });

  it("lets everything else change: timeouts, limits on requests, upstreams, routes", () => {
    const before = config(A, `[server]\nread_timeout = "60s"\n`);
    const after = config(
      `${A}, ${B}`,
      `[server]\nread_timeout = "5s"\nclient_max_body_size = "1m"\n`,
    );
    assert.deepEqual(restartProblems(before, after), []);
  });
});

describe("reload: state carried by (upstream, server id)", () => {
  it("keeps an admin state set through the API unless the new file says state or down", () => {
    const before = config(`${A}, ${B}, ${C}`);
    const old = SharedState.create(before);
    old.setAdminState(slot(old, "a"), "drain", 1000);
    old.setAdminState(slot(old, "b"), "drain", 1000);
    old.setAdminState(slot(old, "c"), "maint", 1000);
    const after = config(
      `{ address = "127.0.0.1:9001", id = "a", weight = 2 }, ` +
        `{ address = "127.0.0.1:9002", id = "b", state = "ready" }, ` +
        `{ address = "127.0.0.1:9003", id = "c", down = false }`,
    );
    const next = SharedState.carry(after, old, before, sameRotation, 5000);
    assert.equal(next.adminState(slot(next, "a")), "drain");
    assert.equal(next.adminChangedMs(slot(next, "a")), 1000);
    assert.equal(next.adminState(slot(next, "b")), "ready");
    assert.equal(next.adminChangedMs(slot(next, "b")), 5000);
    assert.equal(next.adminState(slot(next, "c")), "ready");
  });

  it("applies a state the file changed, and keeps the file's state the API never touched", () => {
    const before = config(`{ address = "127.0.0.1:9001", id = "a", state = "drain" }, ${B}`);
    const old = SharedState.create(before);
    // The file took the drain away: the server is ready again (the API did not set the drain).
    const next = SharedState.carry(config(`${A}, ${B}`), old, before, sameRotation);
    assert.equal(next.adminState(slot(next, "a")), "ready");
  });

  it("carries passive and active health and the last sticky request; a new server starts clean", () => {
    const health = `\n[upstreams.app.health]\npath = "/health"\n`;
    const before = config(`${A}, ${B}`, "", `path = "/"${health}`);
    const old = SharedState.create(before);
    old.recordFailure(slot(old, "a"), 2000, 10_000);
    old.setActiveHealth(slot(old, "a"), "down", 2100);
    old.recordCheck(slot(old, "a"), false, 500, 2100, 3);
    old.setActiveHealth(slot(old, "b"), "up", 2100);
    old.markSticky(slot(old, "b"), 2200);
    const after = config(`${A}, ${B}, ${C}`, "", `path = "/"${health}`);
    const next = SharedState.carry(after, old, before, sameRotation);
    const a = slot(next, "a");
    assert.equal(next.failures(a), 1);
    assert.equal(next.lastFailureMs(a), 2000);
    assert.equal(next.activeHealth(a), "down");
    assert.deepEqual(next.healthHistory(a), [false]);
    assert.equal(next.lastCheck(a)?.status, 500);
    assert.equal(next.activeHealth(slot(next, "b")), "up");
    assert.equal(next.lastStickyMs(slot(next, "b")), 2200);
    assert.equal(next.activeConcluded(slot(next, "c")), false);
    assert.equal(next.failures(slot(next, "c")), 0);
  });

  it("drops active health when the new file has no checks for the upstream", () => {
    const before = config(A, "", `path = "/"\n[upstreams.app.health]\npath = "/health"\n`);
    const old = SharedState.create(before);
    old.setActiveHealth(slot(old, "a"), "down");
    const next = SharedState.carry(config(A), old, before, sameRotation);
    assert.equal(next.activeHealth(slot(next, "a")), "unchecked");
  });

  it("keeps the round-robin cursor when the rotation is unchanged, else starts it anew", () => {
    const before = config(`${A}, ${B}, ${C}`);
    const old = SharedState.create(before);
    const record = old.upstreamSlots(app(before)).upstream;
    const cursor = old.cursor(record, "primaries");
    Atomics.store(cursor.cells, cursor.index, 7);
    const read = (state: SharedState, cfg: GatewayConfig) => {
      const c = state.cursor(state.upstreamSlots(app(cfg)).upstream, "primaries");
      return Atomics.load(c.cells, c.index);
    };
    const same = config(`${A}, ${B}, ${C}`, "", `path = "/"\nhttponly = true`);
    assert.equal(read(SharedState.carry(same, old, before, sameRotation), same), 7);
    const fewer = config(`${A}, ${B}`);
    assert.equal(read(SharedState.carry(fewer, old, before, sameRotation), fewer), 0);
  });

  it("counts requests and connections still open on earlier generations until they close", () => {
    const gen1 = config(`${A}, ${B}`);
    const s1 = SharedState.create(gen1);
    s1.addInFlight(slot(s1, "b"), 2);
    s1.addConnections(slot(s1, "b"), 1);
    const gen2 = config(`${B}, ${C}`);
    const s2 = SharedState.carry(gen2, s1, gen1, sameRotation);
    s2.addInFlight(slot(s2, "b"), 1);
    assert.equal(s2.inFlight(slot(s2, "b")), 3);
    assert.equal(s2.connections(slot(s2, "b")), 1);
    const gen3 = config(`${B}`);
    const s3 = SharedState.carry(gen3, s2, gen2, sameRotation);
    assert.equal(s3.inFlight(slot(s3, "b")), 3);
    // The old generations' requests end on their own state.
    s1.addInFlight(slot(s1, "b"), -2);
    s2.addInFlight(slot(s2, "b"), -1);
    s1.addConnections(slot(s1, "b"), -1);
    assert.equal(s3.inFlight(slot(s3, "b")), 0);
    assert.equal(s3.connections(slot(s3, "b")), 0);
    // Nothing open any more: the next generation no longer looks at them.
    const s4 = SharedState.carry(gen3, s3, gen3, sameRotation);
    s1.addInFlight(slot(s1, "b"), 5);
    assert.equal(s4.inFlight(slot(s4, "b")), 0);
  });

  it("catches up with an admin state set on the old state between the copy and the swap", () => {
    const before = config(`${A}, ${B}`);
    const old = SharedState.create(before);
    const next = SharedState.carry(config(`${A}, ${B}`), old, before, sameRotation, 1000);
    old.setAdminState(slot(old, "b"), "maint", 1001);
    assert.equal(next.adminState(slot(next, "b")), "ready");
    next.catchUp();
    assert.equal(next.adminState(slot(next, "b")), "maint");
    assert.equal(next.adminChangedMs(slot(next, "b")), 1001);
    assert.equal(next.adminState(slot(next, "a")), "ready");
  });

  it("workers attach to the carried state like to a new one", () => {
    const before = config(`${A}, ${B}`);
    const old = SharedState.create(before);
    old.setAdminState(slot(old, "b"), "drain");
    const after = config(`${B}, ${C}`);
    const next = SharedState.carry(after, old, before, sameRotation);
    const worker = SharedState.attach(config(`${B}, ${C}`), structuredClone(next.buffers));
    assert.equal(worker.adminState(slot(worker, "b")), "drain");
  });
});

describe("reload: metrics carried per thread", () => {
  const record = (server: string): RequestRecord => ({
    kind: "http",
    startMs: 0,
    clientAddress: "127.0.0.1",
    method: "GET",
    target: "/",
    protocol: "HTTP/1.1",
    status: 200,
    bytesIn: 0,
    bytesOut: 10,
    durationMs: 3,
    upstream: "app",
    server,
    upstreamStatus: 200,
    upstreamHeaderMs: 2,
    attempts: 1,
    sticky: "hit",
    error: undefined,
    requestId: "r",
    userAgent: undefined,
    referer: undefined,
  });
  const scrape = (metrics: Metrics) =>
    renderMetrics({ metrics, build: { version: "0", runtime: "test" } });
  const sample = (text: string, series: string) =>
    Number(text.split("\n").find((line) => line.startsWith(`${series} `))?.split(" ")[1]);

  it("adds each thread's counts into its new region by server id; no kept series goes back", () => {
    const before = config(`${A}, ${B}`);
    const main = Metrics.create(before, 2);
    const worker = Metrics.attach(before, main.buffers, 1);
    worker.recordRequest(record("a"));
    worker.recordRequest(record("b"));
    main.recordRequest(record("a"));
    main.upstreamFailure("app", "a", "connect_refused");
    main.clientConnectionOpened();
    const old = scrape(main);

    const after = config(`${A}, ${C}`);
    const next = Metrics.create(after, 2);
    next.carryFrom(main);
    Metrics.attach(after, next.buffers, 1).carryFrom(worker);
    const text = scrape(next);

    const series = [
      `sticky_gateway_requests_total{upstream="app",server="a",class="2xx"}`,
      `sticky_gateway_upstream_failures_total{upstream="app",server="a",code="connect_refused"}`,
      `sticky_gateway_request_duration_seconds_count{upstream="app"}`,
      `sticky_gateway_sticky_decisions_total{upstream="app",outcome="hit"}`,
      `sticky_gateway_client_connections`,
    ];
    for (const name of series) assert.equal(sample(text, name), sample(old, name), name);
    assert.equal(sample(text, series[0]), 2);
    // b's request stays in its upstream's histogram (3 requests), its own series ended with it.
    assert.equal(sample(text, series[2]), 3);
    assert.ok(!text.includes(`server="b"`));
    assert.equal(
      sample(text, `sticky_gateway_requests_total{upstream="app",server="c",class="2xx"}`),
      0,
    );
  });
});

describe("reload: one at a time", () => {
  it("runs a reload asked for during another after it, and coalesces a storm into one", async () => {
    let running = 0;
    let runs = 0;
    const releases: (() => void)[] = [];
    const queue = new ReloadQueue(async () => {
      running++;
      assert.equal(running, 1, "never two at once");
      runs++;
      const run = runs;
      await new Promise<void>((resolve) => releases.push(resolve));
      running--;
      return run;
    });
    const first = queue.request();
    await Promise.resolve();
    const storm = Array.from({ length: 100 }, () => queue.request());
    assert.equal(queue.busy, true);
    while (releases.length === 0) await new Promise((r) => setTimeout(r, 1));
    releases.shift()!();
    assert.equal(await first, 1);
    while (releases.length === 0) await new Promise((r) => setTimeout(r, 1));
    releases.shift()!();
    const answers = await Promise.all(storm);
    assert.ok(answers.every((a) => a === 2));
    assert.equal(runs, 2);
    assert.equal(queue.busy, false);
  });

  it("a run waiting out its delay is still pending: who asks meanwhile joins it", async () => {
    let runs = 0;
    let delay = 0;
    const queue = new ReloadQueue(async () => ++runs, () => delay);
    assert.equal(await queue.request(), 1);
    delay = 40;
    const waiting = queue.request();
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(runs, 1, "not started during its delay");
    const joined = queue.request();
    assert.deepEqual(await Promise.all([waiting, joined]), [2, 2]);
    assert.equal(runs, 2);
  });

  it("goes on after a reload that failed", async () => {
    let n = 0;
    const queue = new ReloadQueue(async () => {
      if (++n === 1) throw new Error("boom");
      return n;
    });
    const failed = queue.request();
    const next = queue.request();
    await assert.rejects(failed, /boom/);
    assert.equal(await next, 2);
  });
});
