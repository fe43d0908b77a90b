import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Server, type Upstream } from "../../src/config/mod.ts";
import { smoothWrrCycle, WeightedRoundRobin } from "../../src/balancer/wrr.ts";
import { Balancer } from "../../src/balancer/balancer.ts";
import { PassiveHealth } from "../../src/balancer/health.ts";
import { upstreamConfig, vectors } from "./vectors.ts";

/**
 * nginx's ngx_http_upstream_get_peer, written out independently: every available peer gains its
 * weight, the largest current weight wins (the first one on a tie), and loses the total.
 */
function nginxSequence(
  weights: readonly number[],
  picks: number,
  available = (_: number) => true,
): number[] {
  const current = weights.map(() => 0);
  const out: number[] = [];
  for (let n = 0; n < picks; n++) {
    let best = -1;
    let total = 0;
    weights.forEach((weight, i) => {
      if (!available(i)) return;
      current[i] += weight;
      total += weight;
      if (best === -1 || current[i] > current[best]) best = i;
    });
    current[best] -= total;
    out.push(best);
  }
  return out;
}

const LETTERS = ["A", "B", "C", "D", "E"];

/** `picks` picks of a WeightedRoundRobin over A, B, C… with these weights, as letters. */
function picks(
  rr: WeightedRoundRobin<string>,
  count: number,
  accept = (_: string) => true,
): string[] {
  return Array.from({ length: count }, () => rr.next(accept) ?? "-");
}

function lettersRr(weights: readonly number[]): WeightedRoundRobin<string> {
  const members = LETTERS.slice(0, weights.length);
  return new WeightedRoundRobin(members, (m) => weights[members.indexOf(m)]);
}

function upstream(servers: readonly string[]): Upstream {
  return parseConfig(upstreamConfig(servers, "")).upstreams.get("app")!;
}

describe("smooth weighted round robin: the module's observed sequences (rr_sequences_live)", () => {
  const weightsFor: Record<string, number[]> = {
    "equal weights A,B,C fresh worker": [1, 1, 1],
    "A weight=3, B, C fresh worker": [3, 1, 1],
  };

  for (const vector of vectors.rr_sequences_live) {
    it(`${vector.upstream}: ${vector.no_cookie_sequence.join(" ")}`, () => {
      const weights = weightsFor[vector.upstream];
      assert.ok(weights, `no weights for ${vector.upstream}`);
      assert.deepEqual(
        picks(lettersRr(weights), vector.no_cookie_sequence.length),
        vector.no_cookie_sequence,
      );
    });

    it(`${vector.upstream}: the same through a Balancer built from the config`, () => {
      const weights = weightsFor[vector.upstream];
      const servers = weights.map((w, i) => `{ address = "127.0.0.1:900${i + 1}", weight = ${w} }`);
      const balancer = new Balancer(upstream(servers));
      const sequence = vector.no_cookie_sequence.map(() => LETTERS[balancer.pick(0)!.index]);
      assert.deepEqual(sequence, vector.no_cookie_sequence);
    });
  }
});

describe("smoothWrrCycle", () => {
  it("gives one period of nginx's sequence", () => {
    assert.deepEqual(smoothWrrCycle([1, 1, 1]), [0, 1, 2]);
    assert.deepEqual(smoothWrrCycle([3, 1, 1]), [0, 1, 0, 2, 0]);
    assert.deepEqual(smoothWrrCycle([5]), [0]);
  });

  it("reduces the weights by their common divisor", () => {
    assert.deepEqual(smoothWrrCycle([6, 2, 2]), [0, 1, 0, 2, 0]);
    assert.deepEqual(smoothWrrCycle([100, 100]), [0, 1]);
  });

  it("equal weights (the shortcut): nginx's sequence is list order, for any count", () => {
    for (const count of [2, 3, 7, 64, 1000]) {
      const weights = new Array<number>(count).fill(3);
      assert.deepEqual(smoothWrrCycle(weights), nginxSequence(weights.map(() => 1), count));
    }
  });

  it("matches nginx's algorithm for assorted weights", () => {
    for (const weights of [[5, 3, 2], [1, 2, 3, 4], [7, 1], [2, 3], [10, 1, 1, 1, 1]]) {
      const total = weights.reduce((a, b) => a + b, 0);
      assert.deepEqual(smoothWrrCycle(weights), nginxSequence(weights, total), weights.join(":"));
    }
  });
});

describe("WeightedRoundRobin", () => {
  it("repeats the cycle", () => {
    assert.deepEqual(picks(lettersRr([2, 1]), 7), ["A", "B", "A", "A", "B", "A", "A"]);
  });

  it("steps over members it may not use, keeping the others' proportions", () => {
    const sequence = picks(lettersRr([3, 1, 1]), 40, (m) => m !== "C");
    assert.deepEqual(sequence.slice(0, 8), ["A", "B", "A", "A", "A", "B", "A", "A"]);
    assert.equal(sequence.filter((m) => m === "A").length, 30);
    assert.equal(sequence.filter((m) => m === "B").length, 10);
  });

  it("takes a member back as soon as it may be used again", () => {
    const rr = lettersRr([1, 1, 1]);
    assert.deepEqual(picks(rr, 4, (m) => m !== "B"), ["A", "C", "A", "C"]);
    assert.deepEqual(picks(rr, 3), ["A", "B", "C"]);
  });

  it("returns undefined when it may use no member, or has none", () => {
    assert.equal(lettersRr([3, 1, 1]).next(() => false), undefined);
    assert.equal(new WeightedRoundRobin<string>([], () => 1).next(() => true), undefined);
  });

  describe("very large weight sums (computed per pick instead of a precomputed cycle)", () => {
    const huge = [300_001, 100_000, 100_000];

    it("gives nginx's sequence", () => {
      const rr = lettersRr(huge);
      const expected = nginxSequence(huge, 5000).map((i) => LETTERS[i]);
      assert.deepEqual(picks(rr, 5000), expected);
      assert.deepEqual(expected.slice(0, 10), vectors.rr_sequences_live[1].no_cookie_sequence);
    });

    it("spreads over the usable members only, as nginx does", () => {
      const expected = nginxSequence(huge, 1000, (i) => i !== 2).map((i) => LETTERS[i]);
      assert.deepEqual(expected.slice(0, 4), ["A", "A", "B", "A"]);
      assert.deepEqual(picks(lettersRr(huge), 1000, (m) => m !== "C"), expected);
    });

    it("returns undefined when it may use no member", () => {
      assert.equal(lettersRr(huge).next(() => false), undefined);
    });
  });
});

describe("Balancer.pick", () => {
  const A = `{ address = "127.0.0.1:9001" }`;
  const B = `{ address = "127.0.0.1:9002" }`;
  const C = `{ address = "127.0.0.1:9003" }`;
  const D = `{ address = "127.0.0.1:9004", backup = true }`;
  const E = `{ address = "127.0.0.1:9005", backup = true }`;

  /** 127.0.0.1:9001 → "A", …, 9005 → "E". */
  function names(servers: readonly (Server | undefined)[]): string[] {
    return servers.map((s) => s === undefined ? "-" : LETTERS[s.address.port - 9001]);
  }

  it("takes primaries only while any is available", () => {
    const balancer = new Balancer(upstream([A, D, B]));
    assert.deepEqual(names(Array.from({ length: 4 }, () => balancer.pick(0))), [
      "A",
      "B",
      "A",
      "B",
    ]);
    assert.equal(balancer.anyPrimaryAvailable(0), true);
  });

  it("skips primaries that are down", () => {
    const balancer = new Balancer(upstream([A, B.replace("}", ", down = true }"), C]));
    assert.deepEqual(names(Array.from({ length: 4 }, () => balancer.pick(0))), [
      "A",
      "C",
      "A",
      "C",
    ]);
  });

  it("leaves down servers out of the weighted sequence, as nginx does (3:1:1 with B down = 3:1)", () => {
    const weighted = [
      `{ address = "127.0.0.1:9001", weight = 3 }`,
      B.replace("}", ", down = true }"),
      C,
    ];
    const balancer = new Balancer(upstream(weighted));
    const expected = nginxSequence([3, 1, 1], 8, (i) => i !== 1).map((i) => LETTERS[i]);
    assert.deepEqual(names(Array.from({ length: 8 }, () => balancer.pick(0))), expected);
    assert.deepEqual(expected, ["A", "A", "C", "A", "A", "A", "C", "A"]);
  });

  it("uses backups, in round robin, only when no primary is available", () => {
    const down = (s: string) => s.replace("}", ", down = true }");
    const balancer = new Balancer(upstream([down(A), down(B), D, E]));
    assert.equal(balancer.anyPrimaryAvailable(0), false);
    assert.deepEqual(names(Array.from({ length: 3 }, () => balancer.pick(0))), ["D", "E", "D"]);
  });

  it("goes back to primaries once a failed one recovers after fail_timeout", () => {
    const app = upstream([`{ address = "127.0.0.1:9001", fail_timeout = "10s" }`, D]);
    const balancer = new Balancer(app);
    balancer.health.recordFailure(app.servers[0], 1000);
    assert.equal(balancer.pick(1000)?.index, 1);
    assert.equal(balancer.pick(10_999)?.index, 1);
    assert.equal(balancer.pick(11_000)?.index, 0);
  });

  it("skips servers already tried in this request, backups included", () => {
    const app = upstream([A, B, C, D]);
    const [a, b, c, d] = app.servers;
    const balancer = new Balancer(app);
    assert.equal(balancer.pick(0, [a]), b);
    assert.equal(balancer.pick(0, [a, b]), c);
    assert.equal(balancer.pick(0, [a, b, c]), d);
    assert.equal(balancer.pick(0, [a, b, c, d]), undefined);
  });

  it("forgets `tried` after the pick", () => {
    const app = upstream([A, B]);
    const balancer = new Balancer(app);
    assert.equal(balancer.pick(0, [app.servers[0]]), app.servers[1]);
    assert.equal(balancer.pick(0), app.servers[0]);
  });

  it("returns undefined when nothing is available", () => {
    const app = upstream([A, D]);
    const balancer = new Balancer(app);
    balancer.health.recordFailure(app.servers[0], 0);
    balancer.health.recordFailure(app.servers[1], 0);
    assert.equal(balancer.pick(5), undefined);
  });
});

describe("Balancer: server states (drain, maint) and changing them while serving", () => {
  const weighted = (options: readonly string[]) =>
    upstream(
      [3, 1, 1].map((w, i) => `{ address = "127.0.0.1:900${i + 1}", weight = ${w}${options[i]} }`),
    );
  const letters = (balancer: Balancer, count: number) =>
    Array.from({ length: count }, () => LETTERS[balancer.pick(0)?.index ?? 4]);

  it("never picks a draining server, and keeps the others' weights (3:1:1 with B draining = 3:1)", () => {
    const app = weighted(["", `, state = "drain"`, ""]);
    const balancer = new Balancer(app);
    const expected = nginxSequence([3, 1, 1], 12, (i) => i !== 1).map((i) => LETTERS[i]);
    assert.deepEqual(letters(balancer, 12), expected);
    assert.equal(balancer.state(app.servers[1]), "drain");
  });

  it("keeps a draining server available to the clients pinned to it, a maint one not", () => {
    const app = weighted(["", `, state = "drain"`, `, state = "maint"`]);
    const balancer = new Balancer(app);
    assert.equal(balancer.isAvailable(app.servers[1], 0), true);
    assert.equal(balancer.isAvailable(app.servers[2], 0), false);
    assert.deepEqual(letters(balancer, 3), ["A", "A", "A"]);
  });

  it("treats a draining server that fails like any failed server", () => {
    const app = weighted(["", `, state = "drain"`, ""]);
    const balancer = new Balancer(app);
    balancer.health.recordFailure(app.servers[1], 1000);
    assert.equal(balancer.isAvailable(app.servers[1], 1000), false);
    assert.equal(balancer.isAvailable(app.servers[1], 11_000), true);
  });

  it("turns to the backups when every primary drains, and counts only ready primaries as up", () => {
    const app = upstream([
      `{ address = "127.0.0.1:9001", state = "drain" }`,
      `{ address = "127.0.0.1:9004", backup = true }`,
    ]);
    const balancer = new Balancer(app);
    assert.equal(balancer.anyPrimaryAvailable(0), false);
    assert.equal(balancer.pick(0), app.servers[1]);
  });

  it("changes a server's state at run time without a new config: drain, maint, ready again", () => {
    const app = weighted(["", "", ""]);
    const [, b] = app.servers;
    const balancer = new Balancer(app);
    assert.deepEqual(letters(balancer, 5), ["A", "B", "A", "C", "A"]);
    balancer.setState(b, "drain");
    assert.equal(balancer.state(b), "drain");
    assert.ok(!letters(balancer, 20).includes("B"));
    assert.equal(balancer.isAvailable(b, 0), true);
    balancer.setState(b, "maint");
    assert.equal(balancer.isAvailable(b, 0), false);
    balancer.setState(b, "ready");
    assert.deepEqual(letters(balancer, 5), ["A", "B", "A", "C", "A"]);
    assert.equal(app.servers[1].state, "ready", "the snapshot keeps the initial state");
  });

  it("brings a server that is down in the config back into the rotation", () => {
    const app = upstream(["127.0.0.1:9001", `{ address = "127.0.0.1:9002", down = true }`]);
    const balancer = new Balancer(app);
    assert.equal(balancer.state(app.servers[1]), "maint");
    assert.deepEqual(letters(balancer, 2), ["A", "A"]);
    balancer.setState(app.servers[1], "ready");
    assert.deepEqual(letters(balancer, 2), ["A", "B"]);
  });

  it("refuses a server of another upstream", () => {
    const balancer = new Balancer(weighted(["", "", ""]));
    const other = weighted(["", "", ""]).servers[0];
    assert.throws(() => balancer.setState(other, "drain"), /is not a server of upstream app/);
  });
});

describe("PassiveHealth (max_fails / fail_timeout)", () => {
  function serverWith(options: string): { health: PassiveHealth; server: Server } {
    const app = upstream([`{ address = "127.0.0.1:9001"${options} }`, "127.0.0.1:9002"]);
    return { health: new PassiveHealth(app), server: app.servers[0] };
  }

  it("marks a server unavailable after max_fails failures (default 1) for fail_timeout (default 10s)", () => {
    const { health, server } = serverWith("");
    assert.equal(health.isAvailable(server, 0), true);
    health.recordFailure(server, 50_000);
    assert.equal(health.failures(server), 1);
    assert.equal(health.isAvailable(server, 50_000), false);
    assert.equal(health.isAvailable(server, 59_999), false);
    assert.equal(health.isAvailable(server, 60_000), true);
  });

  it("counts failures within fail_timeout of each other", () => {
    const { health, server } = serverWith(`, max_fails = 3, fail_timeout = "10s"`);
    health.recordFailure(server, 100_000);
    health.recordFailure(server, 105_000);
    assert.equal(health.isAvailable(server, 105_000), true);
    health.recordFailure(server, 114_000);
    assert.equal(health.failures(server), 3);
    assert.equal(health.isAvailable(server, 114_000), false);
    assert.equal(health.isAvailable(server, 123_999), false);
    assert.equal(health.isAvailable(server, 124_000), true);
  });

  it("starts counting anew when a failure comes after fail_timeout", () => {
    const { health, server } = serverWith(`, max_fails = 2, fail_timeout = "10s"`);
    health.recordFailure(server, 100_000);
    health.recordFailure(server, 110_000);
    assert.equal(health.failures(server), 1);
    assert.equal(health.isAvailable(server, 110_000), true);
    health.recordFailure(server, 111_000);
    assert.equal(health.isAvailable(server, 111_000), false);
  });

  it("clears the count on a success", () => {
    const { health, server } = serverWith(`, max_fails = 2`);
    health.recordFailure(server, 100_000);
    health.recordSuccess(server);
    assert.equal(health.failures(server), 0);
    health.recordFailure(server, 100_500);
    assert.equal(health.isAvailable(server, 100_500), true);
  });

  it("never marks a server with max_fails = 0", () => {
    const { health, server } = serverWith(`, max_fails = 0`);
    for (let t = 0; t < 10; t++) health.recordFailure(server, 100_000 + t);
    assert.equal(health.isAvailable(server, 100_010), true);
  });

  it("leaves `down` to the balancer's admin state: a down server is unavailable there only", () => {
    const app = upstream([
      `{ address = "127.0.0.1:9001", down = true, max_fails = 0 }`,
      "127.0.0.1:9002",
    ]);
    const server = app.servers[0];
    assert.equal(new PassiveHealth(app).isAvailable(server, 0), true);
    assert.equal(new Balancer(app).isAvailable(server, 0), false);
  });

  it("keeps each server's state apart", () => {
    const app = upstream(["127.0.0.1:9001", "127.0.0.1:9002"]);
    const health = new PassiveHealth(app);
    health.recordFailure(app.servers[0], 100_000);
    assert.equal(health.isAvailable(app.servers[0], 100_000), false);
    assert.equal(health.isAvailable(app.servers[1], 100_000), true);
    assert.equal(health.failures(app.servers[1]), 0);
  });
});
