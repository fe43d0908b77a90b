/** The route and cookie decisions of issue 11: decideSticky over a real parsed config. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parseConfig, type Server, type Upstream } from "../../src/config/mod.ts";
import { afterDelimiter, queryArg, routeOf } from "../../src/sticky/route.ts";
import {
  decideSticky,
  resolveSticky,
  type ServerStates,
  type StickyDecision,
} from "../../src/sticky/resolve.ts";

const NOW = 1_000_000;

/** A (node1), B (node2), C (node3), D (node4, backup), with this sticky table. */
function upstream(sticky: string): Upstream {
  return parseConfig(`[upstreams.app]
servers = [
  { address = "127.0.0.1:19001", route = "node1" },
  { address = "127.0.0.1:19002", route = "node2" },
  { address = "127.0.0.1:19003", route = "node3" },
  { address = "127.0.0.1:19004", route = "node4", backup = true },
]
[upstreams.app.sticky]
${sticky}
`).upstreams.get("app")!;
}

const letter = (server: Server) => "ABCD"[server.address.port - 19001];

function show(decision: StickyDecision): string {
  switch (decision.kind) {
    case "pinned":
      return `${decision.outcome} ${letter(decision.server)}${decision.reissue ? " +cookie" : ""}`;
    case "refuse":
      return `refuse ${letter(decision.server)}`;
    case "balance":
      return `balance ${decision.outcome}`;
  }
}

function statesWithout(app: Upstream, ...unavailable: string[]): ServerStates {
  const isAvailable = (server: Server) => !unavailable.includes(letter(server));
  return { isAvailable, anyPrimaryAvailable: () => app.primaries.some(isAvailable) };
}

const TOMCAT = `route_from = ["cookie:JSESSIONID", "header:X-Route", "query:jsessionid"]`;

describe("routeOf: nginx's variables, first non-empty wins, the part after the last delimiter", () => {
  const sticky = upstream(TOMCAT).sticky!;
  const route = (headers: Record<string, string>, target = "/") =>
    routeOf(sticky, new Headers(headers), target);

  it("a Tomcat session cookie's jvmRoute suffix", () => {
    assert.equal(route({ cookie: "a=1; JSESSIONID=ABC123.node2" }), "node2");
    assert.equal(
      route({ cookie: "jsessionid=x.y.node3" }),
      "node3",
      "name case-insensitive, last dot",
    );
    assert.equal(route({ cookie: "JSESSIONID=node1" }), "node1", "no delimiter: the whole value");
  });

  it("in route_from's order, an empty value skipped", () => {
    assert.equal(route({ cookie: "JSESSIONID=s.node1", "x-route": "node2" }), "node1");
    assert.equal(route({ cookie: "JSESSIONID=", "x-route": "node2" }), "node2");
    assert.equal(route({}, "/p?x=1&JSESSIONID=s.node3"), "node3");
    assert.equal(route({}, "/p"), undefined);
  });

  it("queryArg is ngx_http_arg: at the start or after &, case-insensitive, not decoded", () => {
    assert.equal(queryArg("/?route=a&b=c", "route"), "a");
    assert.equal(queryArg("/?b=c&ROUTE=x%2Ey", "route"), "x%2Ey");
    assert.equal(queryArg("/?myroute=a&route=", "route"), "");
    assert.equal(queryArg("/?xroute=a", "route"), null);
    assert.equal(queryArg("/?route", "route"), null);
    assert.equal(queryArg("/route=a", "route"), null, "no query");
  });

  it('afterDelimiter: the last occurrence; "" keeps the whole value', () => {
    assert.equal(afterDelimiter("a.b.c", "."), "c");
    assert.equal(afterDelimiter("a::b", "::"), "b");
    assert.equal(afterDelimiter("a.b", ""), "a.b");
    assert.equal(afterDelimiter("a.", "."), "");
  });
});

describe("decideSticky: a route first, then the own cookie", () => {
  const app = upstream(TOMCAT);
  const sticky = app.sticky!;
  const cookieOf = (l: string) => app.servers["ABCD".indexOf(l)].cookieValue;
  const decide = (
    headers: Record<string, string>,
    options: { noFallback?: boolean; down?: string[]; target?: string } = {},
  ) =>
    show(decideSticky(
      sticky,
      new Headers(headers),
      options.target ?? "/",
      options.noFallback ?? false,
      statesWithout(app, ...(options.down ?? [])),
      NOW,
    ));

  it("a route naming an available server: outcome route, a Set-Cookie unless the own cookie agrees", () => {
    assert.equal(decide({ cookie: "JSESSIONID=s.node2" }), "route B +cookie");
    assert.equal(decide({ cookie: `JSESSIONID=s.node2; route=${cookieOf("B")}` }), "route B");
    assert.equal(
      decide({ cookie: `JSESSIONID=s.node2; route=${cookieOf("C")}` }),
      "route B +cookie",
    );
    assert.equal(decide({ "x-route": "node3" }), "route C +cookie");
  });

  it("an unknown route falls through to the own cookie, then balancing", () => {
    assert.equal(decide({ cookie: `JSESSIONID=s.node9; route=${cookieOf("C")}` }), "hit C");
    assert.equal(decide({ cookie: "JSESSIONID=s.node9" }), "balance new");
    assert.equal(decide({ cookie: "JSESSIONID=s.node9; route=zzz" }), "balance invalid");
  });

  it("a route naming an unavailable server: fall through; under no_fallback refused", () => {
    assert.equal(
      decide({ cookie: `JSESSIONID=s.node2; route=${cookieOf("A")}` }, { down: ["B"] }),
      "hit A",
    );
    assert.equal(decide({ cookie: "JSESSIONID=s.node2" }, { down: ["B"] }), "balance new");
    assert.equal(
      decide({ cookie: "JSESSIONID=s.node2" }, { down: ["B"], noFallback: true }),
      "refuse B",
    );
    assert.equal(decide({ cookie: "JSESSIONID=s.node9" }, { noFallback: true }), "balance new");
  });

  it("a route naming a backup: used only while no primary is available", () => {
    assert.equal(decide({ "x-route": "node4" }), "balance new");
    assert.equal(decide({ "x-route": "node4" }, { down: ["A", "B", "C"] }), "route D +cookie");
  });

  it("cookie = false: routes only, never a Set-Cookie, the cookie name means nothing", () => {
    const bare = upstream(`cookie = false\nroute_from = ["cookie:route"]`);
    const states = statesWithout(bare);
    const d = (cookie: string) =>
      show(decideSticky(bare.sticky!, new Headers({ cookie }), "/", false, states, NOW));
    assert.equal(d("route=node1"), "route A");
    assert.equal(
      d(`route=${createHash("md5").update("127.0.0.1:19001").digest("hex")}`),
      "balance new",
    );
  });

  it("format = nginx: a route-pinned or cookie-pinned client always gets the cookie again", () => {
    const nginx = upstream(`format = "nginx"\n${TOMCAT}`);
    const states = statesWithout(nginx);
    const d = (cookie: string) =>
      show(decideSticky(nginx.sticky!, new Headers({ cookie }), "/", false, states, NOW));
    assert.equal(d("route=node2"), "hit B +cookie", "nginx's value is the route");
    assert.equal(d("route=node2; JSESSIONID=s.node2"), "route B +cookie");
  });

  it("without route_from the decision is the cookie's alone (resolveSticky)", () => {
    const plain = upstream(`format = "nginx"`);
    const headers = new Headers({ cookie: "route=node3" });
    const states = statesWithout(plain);
    assert.deepEqual(
      decideSticky(plain.sticky!, headers, "/", false, states, NOW),
      resolveSticky(plain.sticky!, "node3", false, states, NOW),
    );
  });
});
