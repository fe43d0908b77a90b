/**
 * Issue 11's keys: format, accept_legacy, route_from, route_delimiter, cookie, and a server's
 * route. Each problem names its key path and the fix; a good config builds the lookup maps.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";

type Problem = ConfigError["problems"][number];

function problemsOf(text: string): readonly Problem[] {
  try {
    parseConfig(text, "gw.toml");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
  assert.fail(`config was accepted:\n${text}`);
}

const md5 = (text: string | Uint8Array) => createHash("md5").update(text).digest("hex");
const config = (servers: string, sticky?: string) =>
  `[upstreams.app]\nservers = [${servers}]\n${
    sticky === undefined ? "" : `[upstreams.app.sticky]\n${sticky}\n`
  }`;
const TWO = `"127.0.0.1:9001", "127.0.0.1:9002"`;
const ROUTED =
  `{ address = "127.0.0.1:9001", route = "node1" }, { address = "127.0.0.1:9002", route = "node2" }`;

/** [what, config, [key path, message pattern]…] */
const REJECTED: [string, string, [string, RegExp][]][] = [
  [
    "the module's keys under format = nginx",
    config(TWO, `format = "nginx"\nhash = "sha1"\nhmac_key = "k"\npartitioned = true`),
    [
      ["upstreams.app.sticky.hash", /^does not apply under format = "nginx" .*remove it/],
      ["upstreams.app.sticky.hmac_key", /^does not apply under format = "nginx"/],
      ["upstreams.app.sticky.partitioned", /^does not apply under format = "nginx"/],
    ],
  ],
  ["an unknown format", config(TWO, `format = "plus"`), [
    ["upstreams.app.sticky.format", /^"plus" is not one of module, nginx$/],
  ]],
  [
    "nginx's samesite outside strict/lax/none",
    config(TWO, `format = "nginx"\nsamesite = "loose"`),
    [
      ["upstreams.app.sticky.samesite", /not one of strict, lax, none \(any case/],
    ],
  ],
  ["expires = max under the module format", config(TWO, `expires = "max"`), [
    ["upstreams.app.sticky.expires", /"max" is nginx's own .*format = "nginx".*"1y"/],
  ]],
  [
    "a route with a space",
    config(`{ address = "127.0.0.1:9001", route = "node 1" }`, `route_from = ["cookie:J"]`),
    [
      [
        "upstreams.app.servers[0].route",
        /^"node 1" is not a route: use 1 to 64 of A-Z a-z 0-9 \. _ ~ -/,
      ],
    ],
  ],
  [
    "a route of 65 characters",
    config(
      `{ address = "127.0.0.1:9001", route = "${"x".repeat(65)}" }`,
      `route_from = ["cookie:J"]`,
    ),
    [
      ["upstreams.app.servers[0].route", /is not a route: use 1 to 64/],
    ],
  ],
  [
    "two servers with one route",
    config(
      `{ address = "127.0.0.1:9001", route = "n" }, { address = "127.0.0.1:9002", route = "n" }`,
      `route_from = ["cookie:J"]`,
    ),
    [
      [
        "upstreams.app.servers[1].route",
        /^"n" is already the route of upstreams\.app\.servers\[0\]/,
      ],
    ],
  ],
  ["routes nothing reads (module format, no route_from)", config(ROUTED, ``), [
    ["upstreams.app.servers[0].route", /used only with route_from or format = "nginx"/],
    ["upstreams.app.servers[1].route", /used only with route_from or format = "nginx"/],
  ]],
  ["routes in an upstream without stickiness", config(ROUTED), [
    ["upstreams.app.servers[0].route", /add \[upstreams\.app\.sticky\] or remove route/],
    ["upstreams.app.servers[1].route", /add \[upstreams\.app\.sticky\] or remove route/],
  ]],
  [
    "route_from entries of every wrong kind",
    config(
      ROUTED,
      `route_from = ["cookie:J", "arg:x", "header:X Route", 3, "query:a&b", "cookie:j"]`,
    ),
    [
      [
        "upstreams.app.sticky.route_from[1]",
        /"arg:x" is not a route source; write "cookie:NAME", "query:NAME" or "header:NAME"/,
      ],
      ["upstreams.app.sticky.route_from[2]", /"X Route" in "header:X Route" is not a header name/],
      ["upstreams.app.sticky.route_from[3]", /^3 is not a string/],
      ["upstreams.app.sticky.route_from[4]", /is not a query parameter name/],
      ["upstreams.app.sticky.route_from[5]", /is listed twice/],
    ],
  ],
  ["an empty route_from", config(ROUTED, `route_from = []`), [
    ["upstreams.app.sticky.route_from", /^must be a non-empty array/],
  ]],
  ["route_from without any server route", config(TWO, `route_from = ["cookie:J"]`), [
    ["upstreams.app.sticky.route_from", /^no server has a route; give servers one/],
  ]],
  [
    "a route containing the delimiter",
    config(`{ address = "127.0.0.1:9001", route = "a.b" }`, `route_from = ["cookie:J"]`),
    [
      ["upstreams.app.servers[0].route", /contains route_delimiter "\.", so no value can name it/],
    ],
  ],
  ["a delimiter of spaces", config(ROUTED, `route_from = ["cookie:J"]\nroute_delimiter = "  "`), [
    ["upstreams.app.sticky.route_delimiter", /is not a delimiter; use up to 8 visible ASCII/],
  ]],
  [
    "route_delimiter without route_from",
    config(ROUTED, `format = "nginx"\nroute_delimiter = "."`),
    [
      ["upstreams.app.sticky.route_delimiter", /^is used only with route_from/],
    ],
  ],
  ["cookie = false alone", config(TWO, `cookie = false`), [
    [
      "upstreams.app.sticky.cookie",
      /^false leaves the upstream without stickiness; add route_from/,
    ],
  ]],
  [
    "own-cookie keys with cookie = false",
    config(
      ROUTED,
      `cookie = false\nroute_from = ["cookie:J"]\nname = "x"\nformat = "nginx"\naccept_legacy = true`,
    ),
    [
      ["upstreams.app.sticky.name", /^does not apply with cookie = false/],
      ["upstreams.app.sticky.format", /^does not apply with cookie = false/],
      ["upstreams.app.sticky.accept_legacy", /^does not apply with cookie = false/],
    ],
  ],
  [
    "a host name nginx would have resolved by DNS (format = nginx)",
    config(`"db.invalid:80", "127.0.0.1:9002"`, `format = "nginx"`),
    [
      [
        "upstreams.app.servers[0].address",
        /^"db\.invalid" is not an IP address and not in the hosts file; format = "nginx" .*write that address .*id = "db\.invalid"/,
      ],
    ],
  ],
  [
    "the same, with accept_legacy",
    config(`"db.invalid:80", "127.0.0.1:9002"`, `accept_legacy = true`),
    [
      [
        "upstreams.app.servers[0].address",
        /accept_legacy makes the 1\.2\.x values from the address nginx resolved/,
      ],
    ],
  ],
  [
    "two servers on one resolved address (format = nginx)",
    config(`"localhost:9001", "127.0.0.1:9001"`, `format = "nginx"`),
    [
      [
        "upstreams.app.servers[1]",
        /^has the nginx cookie value "422db4e6da7b4bba46bd476612df0469" of upstreams\.app\.servers\[0\]/,
      ],
    ],
  ],
  [
    "a route equal to another server's nginx value",
    config(
      `"127.0.0.1:9001", { address = "127.0.0.1:9002", route = "422db4e6da7b4bba46bd476612df0469" }`,
      `format = "nginx"`,
    ),
    [
      ["upstreams.app.servers[1]", /^has the nginx cookie value/],
    ],
  ],
];

describe("issue 11 keys: problems name the key and the fix", () => {
  for (const [what, text, expected] of REJECTED) {
    it(what, () => {
      const problems = problemsOf(text);
      assert.deepEqual(
        problems.map((p) => p.path),
        expected.map(([path]) => path),
        JSON.stringify(problems),
      );
      expected.forEach(([, pattern], i) => assert.match(problems[i].message, pattern));
    });
  }
});

describe("issue 11 keys: what a good config builds", () => {
  it("format = nginx: values by resolved address and route, Set-Cookie every time", () => {
    const app = parseConfig(config(
      `"localhost:9001", { address = "127.0.0.1:9002", route = "node2" }`,
      `format = "nginx"\nsamesite = "LAX"\nexpires = "0"`,
    )).upstreams.get("app")!;
    const sticky = app.sticky!;
    assert.equal(sticky.format, "nginx");
    assert.equal(sticky.alwaysSetCookie, true);
    assert.equal(app.servers[0].cookieValue, md5("127.0.0.1:9001"));
    assert.equal(app.servers[1].cookieValue, "node2");
    assert.equal(app.servers[1].route, "node2");
    assert.equal(sticky.serverByValue.get(md5("127.0.0.1:9001")), app.servers[0]);
    assert.equal(sticky.serverByValue.get("node2"), app.servers[1]);
    assert.equal(sticky.legacyServerByValue, undefined);
  });

  it("accept_legacy: the 1.2.x values of every server, not those that are current already", () => {
    const app = parseConfig(config(TWO, `accept_legacy = true`)).upstreams.get("app")!;
    const legacy = app.sticky!.legacyServerByValue!;
    const sockaddr9002 = new Uint8Array([2, 0, 0x23, 0x2a, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(legacy.get("2b46daf0ba503cbe30c3b46dfad73e0a"), app.servers[0]);
    assert.equal(legacy.get(md5(sockaddr9002)), app.servers[1]);
    assert.equal(legacy.get("82dba0069e11a9a9f84bdd31dc768621"), app.servers[1]);
    assert.equal(legacy.get("127.0.0.1:9001"), app.servers[0], "text=raw");
    // md5 of the text is v1.3.0's current value: a hit, not legacy.
    assert.equal(legacy.has(md5("127.0.0.1:9001")), false);
  });

  it("route_from: sources in order, names lower-cased for lookups, routes mapped", () => {
    const app = parseConfig(
      config(
        ROUTED,
        `route_from = ["cookie:JSESSIONID", "header:X-Route", "query:Route"]\nroute_delimiter = "~"`,
      ),
    )
      .upstreams.get("app")!;
    const sticky = app.sticky!;
    assert.deepEqual(sticky.routeFrom, [
      { kind: "cookie", name: "JSESSIONID", lowerName: "jsessionid" },
      { kind: "header", name: "X-Route", lowerName: "x-route" },
      { kind: "query", name: "Route", lowerName: "route" },
    ]);
    assert.equal(sticky.routeDelimiter, "~");
    assert.equal(sticky.serverByRoute!.get("node2"), app.servers[1]);
    assert.equal(sticky.cookie, true);
  });

  it("cookie = false: no cookie value, no Set-Cookie template", () => {
    const app = parseConfig(
      config(ROUTED, `cookie = false\nroute_from = ["cookie:route"]\nno_fallback = true`),
    )
      .upstreams.get("app")!;
    assert.equal(app.sticky!.cookie, false);
    assert.equal(app.sticky!.noFallback, true);
    assert.deepEqual(app.servers.map((s) => [s.cookieValue, s.setCookie]), [["", undefined], [
      "",
      undefined,
    ]]);
  });
});
