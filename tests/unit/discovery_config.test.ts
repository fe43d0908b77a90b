/**
 * DNS discovery's pure parts (issue 13 point 1): a `dns` server entry in the config (its keys and
 * their problems), its expansion with answers into servers (ids and cookie inputs `ip:port`, the
 * same on every parse; SRV priorities as primary/backup tiers and weights; `max_servers` bounding
 * 10,000 addresses; vanishing addresses in `drain`), an upstream of `dns` entries before they
 * resolve (no server), and `[server] resolver`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseConfig, type Upstream } from "../../src/config/mod.ts";
import type { Discovered, DiscoveredAddress } from "../../src/discovery/types.ts";
import { expandDnsEntry } from "../../src/discovery/expand.ts";
import { matchRoute } from "../../src/config/routes.ts";
import { md5 } from "../support/http.ts";

type Problem = ConfigError["problems"][number];

function toml(servers: readonly string[], extra = ""): string {
  return `[upstreams.app]\nservers = [\n  ${servers.join(",\n  ")},\n]\n${extra}`;
}

function app(servers: readonly string[], discovered?: Discovered, extra = ""): Upstream {
  return parseConfig(toml(servers, extra), "gw.toml", discovered).upstreams.get("app")!;
}

function problemsOf(text: string): readonly Problem[] {
  try {
    parseConfig(text, "gw.toml");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
  assert.fail(`config was accepted:\n${text}`);
}

const A = `{ dns = "app.internal:8080" }`;
const answers = (query: string, addresses: DiscoveredAddress[]): Discovered =>
  new Map([[query, addresses]]);

describe("a dns server entry", () => {
  it("gives no server before an answer: the upstream exists (502 no_server) and routes to it", () => {
    const config = parseConfig(toml([A]), "gw.toml");
    const upstream = config.upstreams.get("app")!;
    assert.equal(upstream.servers.length, 0);
    assert.equal(upstream.dns?.[0].query, "A app.internal");
    assert.equal(matchRoute(config.routes, "x", "/")?.upstream, upstream);
  });

  it("expands to one server per address; id and cookie input are ip:port, the same on every parse", () => {
    const found = answers("A app.internal", [{ ip: "10.0.0.2" }, { ip: "10.0.0.1" }]);
    const one = app([A, `"10.0.0.9:80"`], found, "[upstreams.app.sticky]\n");
    const two = app([A, `"10.0.0.9:80"`], found, "[upstreams.app.sticky]\n");
    assert.deepEqual(one.servers.map((s) => [s.id, s.address.text, s.cookieValue]), [
      ["10.0.0.9:80", "10.0.0.9:80", md5("10.0.0.9:80")],
      ["10.0.0.1:8080", "10.0.0.1:8080", md5("10.0.0.1:8080")],
      ["10.0.0.2:8080", "10.0.0.2:8080", md5("10.0.0.2:8080")],
    ]);
    assert.deepEqual(
      two.servers.map((s) => s.cookieValue),
      one.servers.map((s) => s.cookieValue),
    );
    assert.deepEqual(one.servers.map((s) => s.index), [0, 1, 2]);
  });

  it("writes IPv6 addresses as [v6]:port", () => {
    const upstream = app(
      [`{ dns = "app.internal:8080", type = "AAAA" }`],
      answers("AAAA app.internal", [{ ip: "FD00::2" }]),
    );
    assert.deepEqual(upstream.servers.map((s) => [s.id, s.address.host]), [[
      "[fd00::2]:8080",
      "fd00::2",
    ]]);
  });

  it("takes the entry's weight, max_fails, fail_timeout and backup for every address", () => {
    const upstream = app(
      [
        `"10.0.0.9:80"`,
        `{ dns = "app.internal:8080", weight = 3, max_fails = 2, fail_timeout = "5s", backup = true }`,
      ],
      answers("A app.internal", [{ ip: "10.0.0.1" }]),
    );
    const s = upstream.servers[1];
    assert.deepEqual([s.weight, s.maxFails, s.failTimeoutMs, s.backup], [3, 2, 5000, true]);
    assert.deepEqual(upstream.backups.map((b) => b.id), ["10.0.0.1:8080"]);
  });

  it("leaves out an address already listed (answers change; a problem would refuse the swap)", () => {
    const upstream = app(
      [`"10.0.0.1:8080"`, A],
      answers("A app.internal", [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }]),
    );
    assert.deepEqual(upstream.servers.map((s) => s.id), ["10.0.0.1:8080", "10.0.0.2:8080"]);
  });

  it("SRV: the best priority is primary, the others backup; weights from the records (0 counts as 1)", () => {
    const upstream = app(
      [`{ dns = "_http._tcp.app.internal", type = "SRV" }`],
      answers("SRV _http._tcp.app.internal", [
        { ip: "10.0.0.3", port: 8003, priority: 20, weight: 5 },
        { ip: "10.0.0.1", port: 8001, priority: 10, weight: 3 },
        { ip: "10.0.0.2", port: 8002, priority: 10, weight: 0 },
        { ip: "10.0.0.4", port: 8004, priority: 30, weight: 1 },
      ]),
    );
    assert.deepEqual(upstream.servers.map((s) => [s.id, s.backup, s.weight]), [
      ["10.0.0.1:8001", false, 3],
      ["10.0.0.2:8002", false, 1],
      ["10.0.0.3:8003", true, 5],
      ["10.0.0.4:8004", true, 1],
    ]);
  });

  it("keeps a vanishing address in drain (vanish_grace), the live ones ready", () => {
    const upstream = app(
      [A],
      answers("A app.internal", [{ ip: "10.0.0.1" }, { ip: "10.0.0.2", vanishing: true }]),
    );
    assert.deepEqual(upstream.servers.map((s) => [s.id, s.state]), [
      ["10.0.0.1:8080", "ready"],
      ["10.0.0.2:8080", "drain"],
    ]);
  });

  it("bounds 10,000 addresses of one answer by max_servers (default 256), the preferred first", () => {
    const many: DiscoveredAddress[] = [];
    for (let i = 0; i < 10_000; i++) {
      many.push({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
    }
    const upstream = app([A], answers("A app.internal", many));
    assert.equal(upstream.servers.length, 256);
    const entry = upstream.dns![0];
    assert.equal(expandDnsEntry(entry, many).leftOut, 10_000 - 256);
    const small = app(
      [`{ dns = "app.internal:8080", max_servers = 3 }`],
      answers("A app.internal", many),
    );
    // In address-text order: the same three whatever order the answer came in.
    const texts = many.map((a) => `${a.ip}:8080`).sort();
    assert.deepEqual(small.servers.map((s) => s.id), texts.slice(0, 3));
    const reversed = app(
      [`{ dns = "app.internal:8080", max_servers = 3 }`],
      answers("A app.internal", [...many].reverse()),
    );
    assert.deepEqual(reversed.servers.map((s) => s.id), texts.slice(0, 3));
  });

  it("drops garbage from an answer (not an IP, bad port) rather than failing the parse", () => {
    const upstream = app(
      [`{ dns = "_x._tcp.app.internal", type = "SRV" }`],
      answers("SRV _x._tcp.app.internal", [
        { ip: "not-an-ip", port: 80 },
        { ip: "10.0.0.1", port: 0 },
        { ip: "10.0.0.1", port: 70_000 },
        { ip: "10.0.0.2", port: 80 },
      ]),
    );
    assert.deepEqual(upstream.servers.map((s) => s.id), ["10.0.0.2:80"]);
  });

  it("names the key and the fix for every bad value", () => {
    const at = "upstreams.app.servers[0]";
    const cases: [string, string, RegExp][] = [
      [`{ dns = "app.internal" }`, `${at}.dns`, /is not "name:port"; .*dns = "app.internal:8080"/],
      [
        `{ dns = "10.0.0.1:80" }`,
        `${at}.dns`,
        /is an IP address, not a name to resolve; list it as a server/,
      ],
      [
        `{ dns = "_http._tcp.x:80", type = "SRV" }`,
        `${at}.dns`,
        /not an SRV record name; write the name alone/,
      ],
      [`{ dns = "a.b:80", type = "MX" }`, `${at}.type`, /is not one of A, AAAA, SRV/],
      [
        `{ dns = "a.b:80", interval = "1s", max_interval = "500ms" }`,
        at,
        /min_interval ≤ interval ≤ max_interval/,
      ],
      [
        `{ dns = "a.b:80", interval = "10ms" }`,
        `${at}.interval`,
        /too short; the least allowed is 0.1s/,
      ],
      [
        `{ dns = "_h._tcp.a.b", type = "SRV", weight = 2 }`,
        `${at}.weight`,
        /each record brings its weight/,
      ],
      [`{ dns = "a.b:80", max_servers = 0 }`, `${at}.max_servers`, /from 1 to 4096/],
      [`{ dns = "a.b:80", id = "x" }`, `${at}.id`, /unknown key; allowed here: dns, type/],
      [`{ dns = "a.b:80", backup = true }`, "upstreams.app.servers", /every server is a backup/],
    ];
    for (const [entry, path, message] of cases) {
      const problems = problemsOf(toml([entry]));
      assert.equal(problems.length, 1, `${entry}: ${JSON.stringify(problems)}`);
      assert.equal(problems[0].path, path, entry);
      assert.match(problems[0].message, message, entry);
    }
  });

  it('refuses hash = "index" with dns servers (positions change with answers)', () => {
    const problems = problemsOf(toml([A], `[upstreams.app.sticky]\nhash = "index"\n`));
    assert.equal(problems[0].path, "upstreams.app.sticky.hash");
    assert.match(problems[0].message, /use hash = "md5"/);
  });
});

describe("[server] resolver", () => {
  it("takes ip, ip:port, [v6]:port or a list of them", () => {
    const read = (value: string) =>
      parseConfig(`[server]\nresolver = ${value}\n${toml([A])}`).server.resolver;
    assert.deepEqual(read(`"127.0.0.1:5353"`), ["127.0.0.1:5353"]);
    assert.deepEqual(read(`["10.0.0.53", "[::1]:53"]`), ["10.0.0.53", "[::1]:53"]);
    assert.equal(parseConfig(toml([A])).server.resolver, undefined);
  });

  it("refuses anything else, naming the key", () => {
    for (const value of [`"dns.internal:53"`, `"127.0.0.1:99999"`, `[]`, `53`, `"[::1]"`]) {
      const problems = problemsOf(`[server]\nresolver = ${value}\n${toml([A])}`);
      assert.equal(problems[0].path, "server.resolver", value);
      assert.match(problems[0].message, /is not a DNS server; write "ip" or "ip:port"/, value);
    }
  });
});
