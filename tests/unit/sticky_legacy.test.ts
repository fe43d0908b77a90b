/** accept_legacy decisions: a 1.2.x value pins its server and is re-issued (outcome legacy). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Server, type Upstream } from "../../src/config/mod.ts";
import { resolveSticky, type ServerStates } from "../../src/sticky/resolve.ts";

const NOW = 1_000_000;
/** The vector file's legacy_1_2_6_sockaddr_md5_read_only. */
const LEGACY = {
  "127.0.0.1:9001": "2b46daf0ba503cbe30c3b46dfad73e0a",
  "127.0.0.1:9002": "82dba0069e11a9a9f84bdd31dc768621",
  "127.0.0.1:9003": "bea1247a7b00595e282a28e54893eb3b",
};

function upstream(sticky: string): Upstream {
  return parseConfig(`[upstreams.app]
servers = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
[upstreams.app.sticky]
${sticky}
`).upstreams.get("app")!;
}

function states(app: Upstream, ...down: number[]): ServerStates {
  const isAvailable = (server: Server) => !down.includes(server.index);
  return { isAvailable, anyPrimaryAvailable: () => app.primaries.some(isAvailable) };
}

describe("resolveSticky with accept_legacy", () => {
  const app = upstream(`accept_legacy = true`);
  const sticky = app.sticky!;

  for (const [server, value] of Object.entries(LEGACY)) {
    it(`${value} (md5 of ${server}'s sockaddr) → that server, re-issued`, () => {
      const decision = resolveSticky(sticky, value, false, states(app), NOW);
      assert.equal(decision.kind, "pinned");
      if (decision.kind !== "pinned") return;
      assert.equal(decision.server.address.text, server);
      assert.equal(decision.outcome, "legacy");
      assert.equal(decision.reissue, true);
    });
  }

  it("a current value stays a hit without a new cookie", () => {
    const decision = resolveSticky(sticky, app.servers[1].cookieValue, false, states(app), NOW);
    assert.deepEqual(decision, {
      kind: "pinned",
      server: app.servers[1],
      outcome: "hit",
      reissue: false,
    });
  });

  it("a legacy value naming an unavailable server: repin, or refused under no_fallback", () => {
    const value = LEGACY["127.0.0.1:9002"];
    assert.equal(resolveSticky(sticky, value, false, states(app, 1), NOW).outcome, "repin");
    assert.equal(resolveSticky(sticky, value, true, states(app, 1), NOW).outcome, "refused");
  });

  it("without accept_legacy it is an invalid value", () => {
    const plain = upstream(``);
    assert.equal(
      resolveSticky(plain.sticky!, LEGACY["127.0.0.1:9001"], false, states(plain), NOW).outcome,
      "invalid",
    );
  });

  it("with format = nginx too, and then a hit re-sends the cookie as well", () => {
    const nginx = upstream(`format = "nginx"\naccept_legacy = true`);
    const legacy = resolveSticky(
      nginx.sticky!,
      LEGACY["127.0.0.1:9003"],
      false,
      states(nginx),
      NOW,
    );
    assert.equal(legacy.outcome, "legacy");
    const hit = resolveSticky(
      nginx.sticky!,
      nginx.servers[0].cookieValue,
      false,
      states(nginx),
      NOW,
    );
    assert.equal(hit.kind === "pinned" && hit.reissue, true);
  });
});
