/**
 * The sticky decision table (issue #2 §3) against the real gateway process and real upstreams,
 * for clients whose servers are all up: no cookie, valid cookie, invalid cookies, no_fallback,
 * cookie parsing (first occurrence, name case), single-server upstreams.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5, sha1 } from "../support/http.ts";
import {
  closeAllUpstreams,
  type NamedUpstream,
  requestHeaderValues,
  startNamedUpstream,
} from "../support/upstreams.ts";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;

const setCookie = (u: NamedUpstream, name = "route") => `${name}=${md5(u.address)}; Path=/`;
const byName = (name: string | undefined): NamedUpstream => {
  const found = [A, B, C].find((u) => u.name === name);
  assert.ok(found, `served by a known upstream, got ${name}`);
  return found;
};

function threeServers(
  options: { weights?: [number, number, number]; sticky?: string; routes?: string } = {},
): string {
  const w = options.weights ?? [1, 1, 1];
  return `
[upstreams.app]
servers = [
  { address = "${A.address}", weight = ${w[0]} },
  { address = "${B.address}", weight = ${w[1]} },
  { address = "${C.address}", weight = ${w[2]} },
]

[upstreams.app.sticky]
${options.sticky ?? ""}
${options.routes ?? ""}
`;
}

describe("sticky decisions, all servers up", () => {
  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    C = await startNamedUpstream("C");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("row 1: no cookie → round robin A B C A, each with a Set-Cookie for the server that answered", async () => {
    const gw = await startGateway(threeServers());
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await ask(gw.port);
      assert.equal(answer.status, 200);
      served.push(answer.body);
      assert.equal(answer.servedBy, answer.body);
      assert.deepEqual(answer.sticky, [setCookie(byName(answer.servedBy))]);
      assert.deepEqual(answer.setCookies, answer.sticky, "nothing but the sticky cookie");
    }
    assert.deepEqual(served, ["A", "B", "C", "A"]);
  });

  it("row 1: weights 3:1:1 → nginx's smooth WRR A B A C A A B A C A", async () => {
    const gw = await startGateway(threeServers({ weights: [3, 1, 1] }));
    const served: string[] = [];
    for (let i = 0; i < 10; i++) {
      const answer = await ask(gw.port);
      assert.equal(answer.status, 200);
      served.push(answer.body);
      assert.deepEqual(answer.sticky, [setCookie(byName(answer.body))]);
    }
    assert.deepEqual(served, ["A", "B", "A", "C", "A", "A", "B", "A", "C", "A"]);
  });

  it("row 2: a valid cookie → that server, no Set-Cookie, and the round robin does not move", async () => {
    const gw = await startGateway(threeServers());
    for (const target of [C, B, A, C]) {
      for (let i = 0; i < 2; i++) {
        const answer = await ask(gw.port, { cookies: [`route=${md5(target.address)}`] });
        assert.equal(answer.status, 200);
        assert.equal(answer.body, target.name);
        assert.deepEqual(answer.setCookies, [], "no Set-Cookie for a client already pinned");
      }
    }
    // Sticky requests did not advance the round robin: a new client still gets the first server.
    const fresh = await ask(gw.port);
    assert.equal(fresh.body, "A");
    assert.deepEqual(fresh.sticky, [setCookie(A)]);
  });

  it("row 2: a valid cookie among others, with a trailing blank at the end of the line", async () => {
    const gw = await startGateway(threeServers());
    const answer = await ask(gw.port, {
      cookies: [`theme=dark; route=${md5(C.address)}; lang=en`],
    });
    assert.equal(answer.body, "C");
    assert.deepEqual(answer.setCookies, []);
    const trailing = await ask(gw.port, { cookies: [`route=${md5(B.address)} `] });
    assert.equal(trailing.body, "B");
    assert.deepEqual(trailing.setCookies, []);
  });

  it("row 3: garbage, wrong case, quoted, empty, spaced or misnamed cookies → round robin + Set-Cookie", async () => {
    const gw = await startGateway(threeServers());
    const b = md5(B.address);
    const invalid = [
      "route=garbage",
      `route=${b.toUpperCase()}`, // digests compare case-sensitively
      `route="${b}"`, // quotes are not stripped
      "route=",
      `route = ${b} ;x=1`, // value "b " keeps the blank before ";"
      `xroute=${b}; myroute=${b}`,
      `route2=${b}`,
      `route=${sha1(B.address)}`, // another mode's value
      `route=${b}x`,
    ];
    const expected = ["A", "B", "C"];
    for (const [i, line] of invalid.entries()) {
      const answer = await ask(gw.port, { cookies: [line] });
      assert.equal(answer.status, 200, line);
      // Fallback picks share the round robin: the sequence continues A B C A …
      assert.equal(answer.body, expected[i % 3], `${line} → round robin`);
      assert.deepEqual(
        answer.sticky,
        [setCookie(byName(answer.body))],
        `${line} → Set-Cookie for the new server`,
      );
    }
  });

  for (const level of ["upstream", "route"] as const) {
    it(`rows 4-5: no_fallback (${level}) never refuses a client without a valid cookie`, async () => {
      const gw = await startGateway(
        level === "upstream" ? threeServers({ sticky: "no_fallback = true" }) : threeServers({
          routes: `[[routes]]\npath = "/"\nupstream = "app"\nno_fallback = true`,
        }),
      );
      const none = await ask(gw.port);
      assert.equal(none.status, 200, "no cookie → 200, not v1.3.0's 502");
      assert.equal(none.body, "A");
      assert.deepEqual(none.sticky, [setCookie(A)]);
      const garbage = await ask(gw.port, { cookies: ["route=garbage"] });
      assert.equal(garbage.status, 200, "garbage → 200");
      assert.equal(garbage.body, "B");
      assert.deepEqual(garbage.sticky, [setCookie(B)]);
      const empty = await ask(gw.port, { cookies: ["route="] });
      assert.equal(empty.status, 200);
      assert.equal(empty.body, "C");
      assert.deepEqual(empty.sticky, [setCookie(C)]);
      const valid = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
      assert.equal(valid.body, "B");
      assert.deepEqual(valid.setCookies, []);
    });
  }

  it("row 16: the first occurrence wins, within a line and across Cookie lines", async () => {
    const gw = await startGateway(threeServers());
    const [a, b, c] = [A, B, C].map((u) => md5(u.address));
    const cases: { lines: string[]; expect: NamedUpstream }[] = [
      { lines: [`route=${b}; route=${c}`], expect: B },
      { lines: [`route=${b}`, `route=${c}`], expect: B },
      { lines: [`route=${c}`, `route=${a}`], expect: C },
      { lines: ["a=1", `route=${c}`], expect: C },
      { lines: [`a=1,route=${c}`], expect: C },
      { lines: [`a=1; ROUTE=${a}`, `route=${b}`], expect: A },
    ];
    for (const { lines, expect } of cases) {
      const answer = await ask(gw.port, { cookies: lines });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, expect.name, JSON.stringify(lines));
      assert.deepEqual(answer.setCookies, [], JSON.stringify(lines));
    }
  });

  it("row 17: the cookie name matches case-insensitively (ROUTE=, Route=)", async () => {
    const gw = await startGateway(threeServers());
    const upper = await ask(gw.port, { cookies: [`ROUTE=${md5(C.address)}`] });
    assert.equal(upper.body, "C");
    assert.deepEqual(upper.setCookies, []);
    const mixed = await ask(gw.port, { cookies: [`Route=${md5(B.address)}`] });
    assert.equal(mixed.body, "B");
    assert.deepEqual(mixed.setCookies, []);
  });

  it("a custom cookie name is the one read and written", async () => {
    const gw = await startGateway(threeServers({ sticky: `name = "srv_id"` }));
    const first = await ask(gw.port, { name: "srv_id", cookies: [`route=${md5(C.address)}`] });
    assert.equal(first.body, "A", "a cookie called route is not ours");
    assert.deepEqual(first.sticky, [`srv_id=${md5(A.address)}; Path=/`]);
    const pinned = await ask(gw.port, { name: "srv_id", cookies: [`SRV_ID=${md5(C.address)}`] });
    assert.equal(pinned.body, "C");
    assert.deepEqual(pinned.setCookies, []);
  });

  it("every request cookie reaches the upstream, the sticky one included", async () => {
    const gw = await startGateway(threeServers());
    const b = md5(B.address);
    const before = B.requests.length;
    const answer = await ask(gw.port, { cookies: [`a=1; route=${b}`, "b=2; c=three"] });
    assert.equal(answer.body, "B");
    assert.equal(B.requests.length, before + 1);
    const received = requestHeaderValues(B.requests[before], "cookie")
      .flatMap((line) => line.split(/;\s*/))
      .filter((pair) => pair !== "");
    assert.deepEqual(received.sort(), ["a=1", "b=2", `c=three`, `route=${b}`].sort());
  });

  it("a single-server upstream still sets and honours the cookie", async () => {
    const gw = await startGateway(`
[upstreams.solo]
servers = ["${A.address}"]
[upstreams.solo.sticky]
`);
    const first = await ask(gw.port);
    assert.equal(first.body, "A");
    assert.deepEqual(first.sticky, [setCookie(A)]);
    const pinned = await ask(gw.port, { cookies: [`route=${md5(A.address)}`] });
    assert.equal(pinned.body, "A");
    assert.deepEqual(pinned.setCookies, [], "a valid cookie: no Set-Cookie");
    const garbage = await ask(gw.port, { cookies: ["route=nope"] });
    assert.equal(garbage.body, "A");
    assert.deepEqual(garbage.sticky, [setCookie(A)], "an invalid cookie is replaced");
  });

  it("workers = 2: each worker balances on its own, but a cookie pins on every worker and every new cookie names its server", async () => {
    const gw = await startGateway(`[server]\nworkers = 2\n${threeServers()}`);
    assert.match(gw.stdout(), /2 workers/);
    const answers = await Promise.all(
      Array.from({ length: 24 }, () => ask(gw.port, { cookies: [`route=${md5(B.address)}`] })),
    );
    for (const answer of answers) {
      assert.equal(answer.body, "B");
      assert.deepEqual(answer.setCookies, []);
    }
    const fresh = await Promise.all(Array.from({ length: 24 }, () => ask(gw.port)));
    const seen = new Set<string>();
    for (const answer of fresh) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.sticky, [setCookie(byName(answer.body))]);
      seen.add(answer.body);
    }
    assert.deepEqual([...seen].sort(), ["A", "B", "C"]);
  });

  it("an upstream without [sticky] balances and sets no cookie", async () => {
    const gw = await startGateway(`
[upstreams.plain]
servers = ["${A.address}", "${B.address}"]
`);
    const served: string[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
      served.push(answer.body);
      assert.deepEqual(answer.setCookies, []);
    }
    assert.deepEqual(served, ["A", "B", "A"]);
  });
});
