import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Server, type Upstream } from "../../src/config/mod.ts";
import { Balancer } from "../../src/balancer/balancer.ts";
import { findCookie } from "../../src/cookie/read.ts";
import { resolveSticky, type ServerStates, type StickyDecision } from "../../src/sticky/resolve.ts";
import { upstreamConfig } from "./vectors.ts";

/** A, B, C primaries and D a backup (127.0.0.1:19001..19004), with this sticky table. */
function upstream(stickyToml = "", extra: Record<string, string> = {}): Upstream {
  const servers = ["A", "B", "C", "D"].map((letter, i) => {
    const options = (letter === "D" ? ", backup = true" : "") + (extra[letter] ?? "");
    return `{ address = "127.0.0.1:1900${i + 1}"${options} }`;
  });
  return parseConfig(upstreamConfig(servers, stickyToml)).upstreams.get("app")!;
}

function letter(server: Server): string {
  return "ABCD"[server.address.port - 19001];
}

/** A decision as one readable line: "pinned B", "balance no-cookie", "balance server-unavailable (was B)", "refuse B". */
function show(decision: StickyDecision): string {
  switch (decision.kind) {
    case "pinned":
      return `pinned ${letter(decision.server)}`;
    case "refuse":
      return `refuse ${letter(decision.server)}`;
    case "balance":
      return `balance ${decision.reason}${
        decision.previous ? ` (was ${letter(decision.previous)})` : ""
      }`;
  }
}

/** States where the listed servers are unavailable and all others available. */
function statesWithout(app: Upstream, ...unavailable: string[]): ServerStates {
  const isAvailable = (server: Server) => !unavailable.includes(letter(server));
  return { isAvailable, anyPrimaryAvailable: () => app.primaries.some(isAvailable) };
}

const NOW = 1_000_000;

describe("resolveSticky: the decision table (nginx-sticky.md §5, with our fixes)", () => {
  const app = upstream();
  const sticky = app.sticky!;
  const digest = (l: string) => app.servers.find((s) => letter(s) === l)!.cookieValue;
  const decide = (value: string | null, noFallback: boolean, states = statesWithout(app)) =>
    show(resolveSticky(sticky, value, noFallback, states, NOW));

  for (const noFallback of [false, true]) {
    const nf = noFallback ? "with no_fallback" : "without no_fallback";

    it(`row 1/4: no cookie → balance (${nf}; no_fallback never refuses a new client)`, () => {
      assert.equal(decide(null, noFallback), "balance no-cookie");
    });

    it(`row 2: valid cookie for an available server → pinned, no Set-Cookie (${nf})`, () => {
      assert.equal(decide(digest("B"), noFallback), "pinned B");
      const decision = resolveSticky(sticky, digest("B"), noFallback, statesWithout(app), NOW);
      assert.ok(decision.kind === "pinned" && decision.server === app.servers[1]);
    });

    it(`row 3/5: garbage, wrong case, quoted, empty, trailing space → balance (${nf})`, () => {
      for (
        const value of [
          "garbage",
          digest("B").toUpperCase(),
          `"${digest("B")}"`,
          "",
          `${digest("B")} `,
          digest("B").slice(1),
        ]
      ) {
        assert.equal(decide(value, noFallback), "balance unknown-value", JSON.stringify(value));
      }
    });

    it(`row 17: a cookie named ROUTE is read like route (${nf})`, () => {
      assert.equal(
        decide(findCookie(`ROUTE=${digest("C")}`, sticky.lowerName), noFallback),
        "pinned C",
      );
    });
  }

  it("row 6/10: cookie for an unavailable server → balance with the previous server", () => {
    assert.equal(
      decide(digest("B"), false, statesWithout(app, "B")),
      "balance server-unavailable (was B)",
    );
  });

  it("row 7/11: cookie for an unavailable server under no_fallback → refuse (502)", () => {
    assert.equal(decide(digest("B"), true, statesWithout(app, "B")), "refuse B");
  });

  it("a cookie for an available backup while a primary is available → balance, even under no_fallback", () => {
    assert.equal(decide(digest("D"), false), "balance backup-while-primary-up (was D)");
    assert.equal(decide(digest("D"), true), "balance backup-while-primary-up (was D)");
    assert.equal(
      decide(digest("D"), false, statesWithout(app, "A", "B")),
      "balance backup-while-primary-up (was D)",
    );
  });

  it("a cookie for a backup while no primary is available → pinned to the backup", () => {
    assert.equal(decide(digest("D"), false, statesWithout(app, "A", "B", "C")), "pinned D");
    assert.equal(decide(digest("D"), true, statesWithout(app, "A", "B", "C")), "pinned D");
  });

  it("a cookie for an unavailable backup → balance, or refuse under no_fallback", () => {
    assert.equal(
      decide(digest("D"), false, statesWithout(app, "D")),
      "balance server-unavailable (was D)",
    );
    assert.equal(decide(digest("D"), true, statesWithout(app, "A", "B", "C", "D")), "refuse D");
  });

  it("passes the clock to the server states", () => {
    const seen: number[] = [];
    const states: ServerStates = {
      isAvailable: (_, nowMs) => (seen.push(nowMs), true),
      anyPrimaryAvailable: (nowMs) => (seen.push(nowMs), true),
    };
    resolveSticky(sticky, digest("D"), false, states, 1234);
    assert.deepEqual(seen, [1234, 1234]);
  });
});

describe("resolveSticky with a Balancer's live server states", () => {
  it("row 6/7: a server that is down in the config", () => {
    const app = upstream("", { B: ", down = true" });
    const balancer = new Balancer(app);
    const b = app.servers[1];
    assert.equal(
      show(resolveSticky(app.sticky!, b.cookieValue, false, balancer, NOW)),
      "balance server-unavailable (was B)",
    );
    assert.equal(show(resolveSticky(app.sticky!, b.cookieValue, true, balancer, NOW)), "refuse B");
  });

  it("row 10/11/12: failed max_fails times, then available again after fail_timeout", () => {
    const app = upstream("", { B: `, max_fails = 2, fail_timeout = "30s"` });
    const balancer = new Balancer(app);
    const b = app.servers[1];
    const decide = (noFallback: boolean, now: number) =>
      show(resolveSticky(app.sticky!, b.cookieValue, noFallback, balancer, now));
    balancer.health.recordFailure(b, NOW);
    assert.equal(decide(true, NOW), "pinned B");
    balancer.health.recordFailure(b, NOW + 1000);
    assert.equal(decide(false, NOW + 1000), "balance server-unavailable (was B)");
    assert.equal(decide(true, NOW + 1000), "refuse B");
    assert.equal(decide(true, NOW + 30_999), "refuse B");
    assert.equal(decide(false, NOW + 31_000), "pinned B");
    assert.equal(decide(true, NOW + 31_000), "pinned B");
  });

  it("a backup's cookie pins it once every primary has failed", () => {
    const app = upstream();
    const balancer = new Balancer(app);
    const d = app.servers[3];
    assert.equal(
      show(resolveSticky(app.sticky!, d.cookieValue, false, balancer, NOW)),
      "balance backup-while-primary-up (was D)",
    );
    for (const primary of app.primaries) balancer.health.recordFailure(primary, NOW);
    assert.equal(show(resolveSticky(app.sticky!, d.cookieValue, false, balancer, NOW)), "pinned D");
  });
});

describe("resolveSticky: index mode", () => {
  const app = upstream(`hash = "index"`);
  const decide = (value: string) =>
    show(resolveSticky(app.sticky!, value, false, statesWithout(app), NOW));

  it("reads the decimal position among primaries, leading zeros allowed", () => {
    assert.equal(decide("0"), "pinned A");
    assert.equal(decide("1"), "pinned B");
    assert.equal(decide("01"), "pinned B");
    assert.equal(decide("002"), "pinned C");
  });

  it("numbers the backup after the primaries", () => {
    assert.equal(decide("3"), "balance backup-while-primary-up (was D)");
    assert.equal(
      show(resolveSticky(app.sticky!, "3", false, statesWithout(app, "A", "B", "C"), NOW)),
      "pinned D",
    );
  });

  it("treats out of range, signs, suffixes, hex and spaces as naming no server", () => {
    for (
      const value of ["4", "99999999999999999999", "+1", "-1", "1abc", "1.0", "0x1", " 1", "1 ", ""]
    ) {
      assert.equal(decide(value), "balance unknown-value", JSON.stringify(value));
    }
  });
});

describe("resolveSticky: raw and hashed modes", () => {
  it("text=raw matches the address text exactly", () => {
    const app = upstream(`text = "raw"`);
    const decide = (value: string) =>
      show(resolveSticky(app.sticky!, value, false, statesWithout(app), NOW));
    assert.equal(decide("127.0.0.1:19002"), "pinned B");
    assert.equal(decide("localhost:19002"), "balance unknown-value");
    assert.equal(decide("127.0.0.1%3A19002"), "balance unknown-value");
    assert.equal(decide("127.0.0.1:19002 "), "balance unknown-value");
  });

  it("hash=sha1 does not take an md5 digest", () => {
    const md5 = upstream();
    const sha1 = upstream(`hash = "sha1"`);
    const decide = (value: string) =>
      show(resolveSticky(sha1.sticky!, value, false, statesWithout(sha1), NOW));
    assert.equal(decide(md5.servers[0].cookieValue), "balance unknown-value");
    assert.equal(decide(sha1.servers[0].cookieValue), "pinned A");
  });

  it("hmac takes only digests made with its key", () => {
    const app = upstream(`hmac = "md5"\nhmac_key = "secret"`);
    const other = upstream(`hmac = "md5"\nhmac_key = "other"`);
    const decide = (value: string) =>
      show(resolveSticky(app.sticky!, value, false, statesWithout(app), NOW));
    assert.equal(decide("d5347f94631f65fc9321daad24ecdc83"), "pinned A");
    assert.equal(decide(other.servers[0].cookieValue), "balance unknown-value");
  });
});

describe("resolveSticky: the sticky outcome of every row", () => {
  const app = upstream();
  const sticky = app.sticky!;
  const digest = (l: string) => app.servers.find((s) => letter(s) === l)!.cookieValue;
  const outcome = (value: string | null, noFallback: boolean, states = statesWithout(app)) =>
    resolveSticky(sticky, value, noFallback, states, NOW).outcome;

  for (const noFallback of [false, true]) {
    it(`no cookie → new, valid → hit, naming no server → invalid (no_fallback ${noFallback})`, () => {
      assert.equal(outcome(null, noFallback), "new");
      assert.equal(outcome(digest("B"), noFallback), "hit");
      for (const value of ["garbage", "", digest("B").toUpperCase()]) {
        assert.equal(outcome(value, noFallback), "invalid", JSON.stringify(value));
      }
    });
  }

  it("a valid cookie for an unavailable server → repin, or refused under no_fallback", () => {
    assert.equal(outcome(digest("B"), false, statesWithout(app, "B")), "repin");
    assert.equal(outcome(digest("B"), true, statesWithout(app, "B")), "refused");
  });

  it("a backup's cookie → repin while a primary is up (even under no_fallback), hit when none is", () => {
    assert.equal(outcome(digest("D"), false), "repin");
    assert.equal(outcome(digest("D"), true), "repin");
    assert.equal(outcome(digest("D"), false, statesWithout(app, "A", "B", "C")), "hit");
    assert.equal(outcome(digest("D"), true, statesWithout(app, "A", "B", "C", "D")), "refused");
  });
});

describe("resolveSticky with drain and maint servers (HAProxy's semantics)", () => {
  const decide = (app: Upstream, balancer: Balancer, value: string | null, noFallback: boolean) =>
    resolveSticky(app.sticky!, value, noFallback, balancer, NOW);

  it("drain: a client pinned to it stays (hit, no re-pin) with or without no_fallback", () => {
    const app = upstream("", { B: `, state = "drain"` });
    const balancer = new Balancer(app);
    const b = app.servers[1];
    for (const noFallback of [false, true]) {
      const decision = decide(app, balancer, b.cookieValue, noFallback);
      assert.equal(show(decision), "pinned B");
      assert.equal(decision.outcome, "hit");
    }
  });

  it("drain: new clients, and clients re-pinned from elsewhere, never get it", () => {
    const app = upstream("", { B: `, state = "drain"`, C: `, state = "maint"` });
    const balancer = new Balancer(app);
    assert.equal(show(decide(app, balancer, null, false)), "balance no-cookie");
    const c = app.servers[2];
    assert.equal(
      show(decide(app, balancer, c.cookieValue, false)),
      "balance server-unavailable (was C)",
    );
    const picks = Array.from({ length: 10 }, () => letter(balancer.pick(NOW)!));
    assert.deepEqual(picks, Array(10).fill("A"));
  });

  it("drain: a pinned client whose draining server failed is re-pinned like any other", () => {
    const app = upstream("", { B: `, state = "drain"` });
    const balancer = new Balancer(app);
    const b = app.servers[1];
    balancer.health.recordFailure(b, NOW);
    assert.equal(decide(app, balancer, b.cookieValue, false).outcome, "repin");
    assert.equal(decide(app, balancer, b.cookieValue, true).outcome, "refused");
  });

  it("maint: its clients are balanced anew (repin), or refused under no_fallback, as down", () => {
    const app = upstream("", { B: `, state = "maint"` });
    const balancer = new Balancer(app);
    const b = app.servers[1];
    const moved = decide(app, balancer, b.cookieValue, false);
    assert.equal(show(moved), "balance server-unavailable (was B)");
    assert.equal(moved.outcome, "repin");
    const refused = decide(app, balancer, b.cookieValue, true);
    assert.equal(show(refused), "refuse B");
    assert.equal(refused.outcome, "refused");
  });

  it("a state set while serving decides the next request", () => {
    const app = upstream();
    const balancer = new Balancer(app);
    const b = app.servers[1];
    balancer.setState(b, "maint");
    assert.equal(decide(app, balancer, b.cookieValue, false).outcome, "repin");
    balancer.setState(b, "drain");
    assert.equal(decide(app, balancer, b.cookieValue, false).outcome, "hit");
    balancer.setState(b, "ready");
    assert.equal(decide(app, balancer, b.cookieValue, false).outcome, "hit");
  });
});
