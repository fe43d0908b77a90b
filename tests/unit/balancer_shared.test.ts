/**
 * Balancers of several threads on one shared state (issue 9 point 7): the smooth round robin is
 * one sequence whichever thread picks (3:1:1 gives A B A C A), a failure or a state change made
 * through one is seen by the others, and active health takes a server out for pinned and new
 * clients. First with two Balancers on one memory, each with its own parse of the config (what two
 * threads hold), then with a real `Worker` thread.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type GatewayConfig, parseConfig, type Upstream } from "../../src/config/mod.ts";
import { Balancer, createBalancers } from "../../src/balancer/balancer.ts";
import { SharedState, type SharedStateBuffers } from "../../src/state/shared_state.ts";

const TOML = `
[upstreams.app]
servers = [
  { address = "127.0.0.1:9001", id = "A", weight = 3 },
  { address = "127.0.0.1:9002", id = "B" },
  { address = "127.0.0.1:9003", id = "C" },
  { address = "127.0.0.1:9004", id = "D", backup = true },
]
`;

interface Thread {
  readonly app: Upstream;
  readonly balancer: Balancer;
}

/** A thread's view: its own parse of the config, a balancer on `buffers` (or a new state). */
function thread(buffers?: SharedStateBuffers): Thread & { readonly state: SharedState } {
  const config = parseConfig(TOML);
  const state = buffers === undefined
    ? SharedState.create(config)
    : SharedState.attach(config, buffers);
  const app = config.upstreams.get("app")!;
  return { app, balancer: new Balancer(app, state), state };
}

function twoThreads(): [Thread, Thread] {
  const main = thread();
  return [main, thread(structuredClone(main.state.buffers))];
}

const id = (t: Thread, now = 0) => t.balancer.pick(now)?.id ?? "-";
const server = (t: Thread, serverId: string) => t.app.servers.find((s) => s.id === serverId)!;

describe("Balancers on one shared state (as worker threads)", () => {
  it("give one smooth sequence whichever thread picks: 3:1:1 is A B A C A", () => {
    const [one, two] = twoThreads();
    assert.deepEqual([id(one), id(two), id(one), id(two), id(one)], ["A", "B", "A", "C", "A"]);
    assert.deepEqual([id(two), id(two), id(one), id(two), id(one)], ["A", "B", "A", "C", "A"]);
  });

  it("see a failure recorded through the other, and its end after fail_timeout", () => {
    const [one, two] = twoThreads();
    two.balancer.health.recordFailure(server(two, "A"), 1000);
    assert.equal(one.balancer.health.failures(server(one, "A")), 1);
    assert.equal(one.balancer.isAvailable(server(one, "A"), 1000), false);
    assert.deepEqual([id(one, 1000), id(one, 1000), id(one, 1000)], ["B", "C", "B"]);
    assert.equal(one.balancer.isAvailable(server(one, "A"), 11_000), true);
    one.balancer.health.recordSuccess(server(one, "A"));
    assert.equal(two.balancer.health.failures(server(two, "A")), 0);
  });

  it("rebuild their cycles when the other changes a state, and restart the sequence", () => {
    const [one, two] = twoThreads();
    assert.deepEqual([id(one), id(two)], ["A", "B"]);
    two.balancer.setState(server(two, "B"), "drain");
    assert.equal(one.balancer.state(server(one, "B")), "drain");
    assert.deepEqual([id(one), id(two), id(one), id(two)], ["A", "A", "C", "A"]);
    assert.equal(one.balancer.isAvailable(server(one, "B"), 0), true, "drain serves its own");
    one.balancer.setState(server(one, "B"), "ready");
    assert.deepEqual([id(two), id(one), id(two), id(one), id(two)], ["A", "B", "A", "C", "A"]);
    for (const name of ["A", "B", "C"]) two.balancer.setState(server(two, name), "maint");
    assert.equal(one.balancer.anyPrimaryAvailable(0), false);
    assert.deepEqual([id(one), id(two)], ["D", "D"], "the backup, once no primary is ready");
  });

  it("keep an actively down server from pinned and new clients; unknown too, unchecked not", () => {
    const [one, two] = twoThreads();
    const slot = two.balancer.slot(server(two, "A"));
    two.balancer.shared.setActiveHealth(slot, "down");
    assert.equal(one.balancer.isAvailable(server(one, "A"), 0), false);
    assert.deepEqual([id(one), id(two), id(one)], ["B", "C", "B"]);
    two.balancer.shared.setActiveHealth(slot, "unknown");
    assert.equal(one.balancer.isAvailable(server(one, "A"), 0), false);
    two.balancer.shared.setActiveHealth(slot, "up");
    assert.equal(one.balancer.isAvailable(server(one, "A"), 0), true);
    for (const name of ["A", "B", "C"]) {
      two.balancer.shared.setActiveHealth(two.balancer.slot(server(two, name)), "down");
    }
    assert.equal(one.balancer.anyPrimaryAvailable(0), false);
    assert.equal(id(one), "D");
  });

  it("keep working alone: without a state each balancer has its own", () => {
    const config = parseConfig(TOML);
    const app = config.upstreams.get("app")!;
    const one = new Balancer(app);
    const two = new Balancer(app);
    assert.deepEqual([one.pick(0)?.id, two.pick(0)?.id], ["A", "A"]);
    const shared = createBalancers(config, SharedState.create(config));
    const three = new Balancer(app, shared.get(app)!.shared);
    assert.deepEqual([shared.get(app)!.pick(0)?.id, three.pick(0)?.id], ["A", "B"]);
  });
});

// ---------------------------------------------------------------------------------------------
// A real worker thread: the same modules, attached to the buffers posted to it.

const source = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
const WORKER = `
import { parseConfig } from ${source("../../src/config/mod.ts")};
import { SharedState } from ${source("../../src/state/shared_state.ts")};
import { Balancer } from ${source("../../src/balancer/balancer.ts")};
let app;
let balancer;
self.onmessage = ({ data }) => {
  if (data.kind === "attach") {
    const config = parseConfig(data.toml);
    app = config.upstreams.get("app");
    balancer = new Balancer(app, SharedState.attach(config, data.buffers));
    self.postMessage("ready");
  } else if (data.kind === "pick") {
    const ids = [];
    for (let n = 0; n < data.count; n++) ids.push(balancer.pick(data.now)?.id ?? "-");
    self.postMessage(ids);
  } else if (data.kind === "fail") {
    balancer.health.recordFailure(app.servers.find((s) => s.id === data.id), data.now);
    self.postMessage("done");
  }
};
`;

type Reply = string | string[];

/** A worker thread running a Balancer on `buffers`; `ask` posts a message and awaits its reply. */
async function startWorker(buffers: SharedStateBuffers) {
  const url = URL.createObjectURL(new Blob([WORKER], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const ask = (message: object) =>
    new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("worker did not answer in 10s")), 10_000);
      worker.onmessage = (event: MessageEvent<Reply>) => {
        clearTimeout(timer);
        resolve(event.data);
      };
      worker.onerror = (event: ErrorEvent) => {
        clearTimeout(timer);
        event.preventDefault();
        reject(new Error(event.message));
      };
      worker.postMessage(message);
    });
  assert.equal(await ask({ kind: "attach", toml: TOML, buffers }), "ready");
  return {
    ask,
    close: () => {
      worker.terminate();
      URL.revokeObjectURL(url);
    },
  };
}

describe("a Balancer in a Worker thread on the main thread's shared state", () => {
  it("continues the main thread's sequence and shares failures both ways", async () => {
    const config: GatewayConfig = parseConfig(TOML);
    const state = SharedState.create(config);
    const app = config.upstreams.get("app")!;
    const main = new Balancer(app, state);
    const worker = await startWorker(state.buffers);
    try {
      const sequence: string[] = [];
      for (let n = 0; n < 5; n++) {
        sequence.push(
          n % 2 === 0 ? main.pick(0)!.id : (await worker.ask({ kind: "pick", count: 1 }))[0],
        );
      }
      assert.deepEqual(sequence, ["A", "B", "A", "C", "A"]);

      assert.equal(await worker.ask({ kind: "fail", id: "A", now: 1000 }), "done");
      assert.equal(main.isAvailable(app.servers[0], 1000), false);
      main.health.recordFailure(app.servers[1], 1000);
      assert.deepEqual(await worker.ask({ kind: "pick", count: 3, now: 1000 }), ["C", "C", "C"]);
    } finally {
      worker.close();
    }
  });

  it("keeps 3:1:1 exact over both threads picking at once, as one sequence", async () => {
    const config = parseConfig(TOML);
    const state = SharedState.create(config);
    const main = new Balancer(config.upstreams.get("app")!, state);
    const worker = await startWorker(state.buffers);
    try {
      // Counts that are not whole cycles: per-thread cursors would end elsewhere (main alone at
      // 4998 picks stands 3 into its cycle, the shared cursor at 10001 stands 1 into it).
      const theirs = worker.ask({ kind: "pick", count: 5003 });
      const ours: string[] = [];
      // In slices, so the worker's loop runs while ours does.
      for (let slice = 0; slice < 50; slice++) {
        for (let n = 0; n < (slice === 49 ? 98 : 100); n++) ours.push(main.pick(0)!.id);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      const all = [...ours, ...(await theirs)];
      const count = (name: string) => all.filter((s) => s === name).length;
      assert.equal(all.length, 10_001);
      assert.deepEqual([count("A"), count("B"), count("C")], [6001, 2000, 2000]);
      const next = Array.from({ length: 5 }, () => main.pick(0)!.id);
      assert.deepEqual(next, ["B", "A", "C", "A", "A"], "the sequence goes on at pick 10,002");
    } finally {
      worker.close();
    }
  });
});
