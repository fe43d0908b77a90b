/**
 * Route stickiness (issue 11 point 3) through the real gateway and real upstreams: servers with
 * `route`, `route_from` sources (an application cookie with Tomcat's `.jvmRoute` suffix, a header,
 * a query parameter) tried before the gateway's own cookie; unknown routes fall through; under
 * `no_fallback` a route naming an unavailable server is refused; `cookie = false` (nginx's
 * `sticky route`) sets no cookie at all. The access log names each outcome.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RunningGateway, sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5 } from "../support/http.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;

/** A (node1), B (node2), C (node3, `down` when asked), with this sticky table. */
function routed(sticky: string, options: { cDown?: boolean } = {}): string {
  return `
[upstreams.app]
servers = [
  { address = "${A.address}", route = "node1" },
  { address = "${B.address}", route = "node2" },
  { address = "${C.address}", route = "node3"${options.cDown ? ", down = true" : ""} },
]

[upstreams.app.sticky]
${sticky}
`;
}

const TOMCAT = `route_from = ["cookie:JSESSIONID", "header:X-Route", "query:jsessionid"]`;
const own = (u: NamedUpstream) => `route=${md5(u.address)}; Path=/`;

/** The `sticky` field of the first `count` access log lines. */
async function outcomes(gw: RunningGateway, count: number): Promise<string[]> {
  for (let waited = 0; waited < 5000; waited += 20) {
    const lines = gw.stdout().split("\n").filter((line) => line.startsWith("{"));
    if (lines.length >= count) {
      return lines.slice(0, count).map((line) => String(JSON.parse(line).sticky));
    }
    await sleep(20);
  }
  assert.fail(`fewer than ${count} access log lines:\n${gw.stdout()}`);
}

describe("route stickiness (route_from)", () => {
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

  it("JSESSIONID=abc.node2 → node2 before the own cookie; the own cookie is set to agree", async () => {
    const gw = await startGateway(routed(TOMCAT));
    // The own cookie names C; the application's session says node2: the route wins.
    const first = await ask(gw.port, {
      cookies: [`route=${md5(C.address)}; JSESSIONID=abc.node2`],
    });
    assert.equal(first.servedBy, "B");
    assert.deepEqual(first.sticky, [own(B)], "the own cookie now names B too");
    // Own cookie and route agree: nothing to set.
    const second = await ask(gw.port, {
      cookies: [`JSESSIONID=x.y.node2; route=${md5(B.address)}`],
    });
    assert.equal(second.servedBy, "B");
    assert.deepEqual(second.setCookies, []);
    // A plain route value (no delimiter) is the whole value.
    const plain = await ask(gw.port, { cookies: ["JSESSIONID=node1"] });
    assert.equal(plain.servedBy, "A");
    assert.deepEqual(await outcomes(gw, 3), ["route", "route", "route"]);
  });

  it("header and query routes, tried in route_from's order, the first non-empty wins", async () => {
    const gw = await startGateway(routed(TOMCAT));
    assert.equal((await ask(gw.port, { headers: [["X-Route", "node3"]] })).servedBy, "C");
    assert.equal((await ask(gw.port, { path: "/x?a=1&JSESSIONID=s1.node1" })).servedBy, "A");
    // The cookie comes first in route_from; an empty one is skipped.
    const both = await ask(gw.port, {
      cookies: ["JSESSIONID=s.node2"],
      headers: [["X-Route", "node3"]],
    });
    assert.equal(both.servedBy, "B");
    const empty = await ask(gw.port, { cookies: ["JSESSIONID="], headers: [["X-Route", "node3"]] });
    assert.equal(empty.servedBy, "C");
    assert.deepEqual(await outcomes(gw, 4), ["route", "route", "route", "route"]);
  });

  it("an unknown route falls through to the own cookie, then to balancing", async () => {
    const gw = await startGateway(routed(TOMCAT));
    const pinned = await ask(gw.port, { cookies: [`JSESSIONID=s.node9; route=${md5(C.address)}`] });
    assert.equal(pinned.servedBy, "C", "the own cookie decides");
    assert.deepEqual(pinned.setCookies, []);
    const fresh = await ask(gw.port, { headers: [["X-Route", "nobody"]] });
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.sticky, [own([A, B, C].find((u) => u.name === fresh.servedBy)!)]);
    assert.deepEqual(await outcomes(gw, 2), ["hit", "new"]);
  });

  it("a route naming a down server: falls through without no_fallback, 502 with it", async () => {
    const open = await startGateway(routed(TOMCAT, { cDown: true }));
    const moved = await ask(open.port, {
      cookies: [`JSESSIONID=s.node3; route=${md5(A.address)}`],
    });
    assert.equal(moved.servedBy, "A", "the own cookie decides");
    assert.deepEqual(await outcomes(open, 1), ["hit"]);
    await open.stop();

    const strict = await startGateway(routed(`${TOMCAT}\nno_fallback = true`, { cDown: true }));
    const refused = await ask(strict.port, { cookies: ["JSESSIONID=s.node3"] });
    assert.equal(refused.status, 502);
    assert.equal(refused.servedBy, undefined);
    assert.deepEqual(refused.setCookies, []);
    // An unknown route is no pin: balanced as a new client, even under no_fallback.
    const unknown = await ask(strict.port, { cookies: ["JSESSIONID=s.node9"] });
    assert.equal(unknown.status, 200);
    assert.deepEqual(await outcomes(strict, 2), ["refused", "new"]);
  });

  it("cookie = false (nginx's sticky route): routes only, never a Set-Cookie", async () => {
    const gw = await startGateway(
      routed(
        `cookie = false\nroute_from = ["cookie:route", "header:X-Route"]\nroute_delimiter = ""`,
      ),
    );
    const served: string[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await ask(gw.port);
      assert.deepEqual(answer.setCookies, [], "no cookie of its own");
      served.push(answer.servedBy!);
    }
    assert.deepEqual(served, ["A", "B", "C"], "no route: round robin");
    // The gateway's cookie name is not special any more: `route=node2` is a route here.
    assert.equal((await ask(gw.port, { cookies: ["route=node2"] })).servedBy, "B");
    // route_delimiter = "": nginx compares the whole value.
    const whole = await ask(gw.port, { cookies: ["route=abc.node2"] });
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.setCookies, []);
    assert.deepEqual(await outcomes(gw, 5), ["new", "new", "new", "route", "new"]);
  });
});
