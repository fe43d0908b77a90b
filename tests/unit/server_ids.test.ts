/**
 * Server ids and states in the config (issue 9 points 1 and 5): `id` (default: the address text,
 * unique in its upstream, restricted characters), `state` (ready, drain, maint; nginx's
 * `down = true` is maint), what `--check` shows of them, and that neither changes a cookie value.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseConfig, type Upstream } from "../../src/config/mod.ts";
import { checkSummary } from "../../src/config/summary.ts";
import { md5 } from "../support/http.ts";

type Problem = ConfigError["problems"][number];

/** An upstream `app` with these server entries (TOML), sticky when `sticky` is given. */
function toml(servers: readonly string[], sticky?: string): string {
  const table = sticky === undefined ? "" : `\n[upstreams.app.sticky]\n${sticky}\n`;
  return `[upstreams.app]\nservers = [\n  ${servers.join(",\n  ")},\n]\n${table}`;
}

function app(servers: readonly string[], sticky?: string): Upstream {
  return parseConfig(toml(servers, sticky), "gw.toml").upstreams.get("app")!;
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

describe("server ids", () => {
  it("default to the address text, as written", () => {
    const upstream = app([`"127.0.0.1:9001"`, `"[::1]:9002"`, `"backend.internal"`]);
    assert.deepEqual(upstream.servers.map((s) => s.id), [
      "127.0.0.1:9001",
      "[::1]:9002",
      "backend.internal",
    ]);
    assert.deepEqual(upstream.servers.map((s) => s.index), [0, 1, 2]);
  });

  it("are read from `id`, and leave the cookie value the address's", () => {
    const upstream = app([
      `{ address = "127.0.0.1:9001", id = "web-1" }`,
      `{ address = "127.0.0.1:9002", id = "web_2.eu@rack:3" }`,
      `"127.0.0.1:9003"`,
    ], "");
    assert.deepEqual(upstream.servers.map((s) => s.id), [
      "web-1",
      "web_2.eu@rack:3",
      "127.0.0.1:9003",
    ]);
    assert.equal(upstream.servers[0].cookieValue, md5("127.0.0.1:9001"));
    assert.equal(upstream.sticky!.serverByValue.get(md5("127.0.0.1:9001")), upstream.servers[0]);
  });

  it("must be unique in the upstream: the duplicate's key path and the fix", () => {
    assert.deepEqual(
      problemsOf(toml([
        `{ address = "127.0.0.1:9001", id = "web-1" }`,
        `{ address = "127.0.0.1:9002", id = "web-2" }`,
        `{ address = "127.0.0.1:9003", id = "web-1" }`,
      ])),
      [{
        path: "upstreams.app.servers[2].id",
        message:
          `"web-1" is already the id of upstreams.app.servers[0]; give each server its own id = "…"`,
      }],
    );
  });

  it("clash with another server's default id too", () => {
    const problems = problemsOf(toml([
      `{ address = "127.0.0.1:9001", id = "127.0.0.1:9002" }`,
      `"127.0.0.1:9002"`,
    ]));
    assert.deepEqual(problems.map((p) => p.path), ["upstreams.app.servers[1].id"]);
  });

  it("may repeat across upstreams", () => {
    const config = parseConfig(
      `[upstreams.a]\nservers = [{ address = "127.0.0.1:9001", id = "web-1" }]\n` +
        `[upstreams.b]\nservers = [{ address = "127.0.0.1:9002", id = "web-1" }]\n` +
        `[[routes]]\npath = "/"\nupstream = "a"\n[[routes]]\npath = "/b/"\nupstream = "b"\n`,
    );
    assert.equal(config.upstreams.get("b")!.servers[0].id, "web-1");
  });

  it("are printable ASCII without spaces: letters, digits and . _ : @ - [ ] only", () => {
    for (const bad of ["web 1", "", "web/1", "web%201", "wéb", "web\t1", "a?b", "x".repeat(129)]) {
      const problems = problemsOf(
        toml([`{ address = "127.0.0.1:9001", id = ${JSON.stringify(bad)} }`]),
      );
      assert.equal(problems.length, 1, JSON.stringify(bad));
      assert.equal(problems[0].path, "upstreams.app.servers[0].id");
      assert.match(
        problems[0].message,
        /is not a server id: use 1 to 128 of A-Z a-z 0-9 \. _ : @ - \[ \]/,
      );
    }
    const longest = "x".repeat(128);
    assert.equal(app([`{ address = "127.0.0.1:9001", id = "${longest}" }`]).servers[0].id, longest);
  });

  it("must be a string", () => {
    assert.deepEqual(problemsOf(toml([`{ address = "127.0.0.1:9001", id = 1 }`])), [{
      path: "upstreams.app.servers[0].id",
      message: "1 is not a string; write it in quotes",
    }]);
  });
});

describe("server states", () => {
  it("default to ready; state = drain / maint; down = true is maint", () => {
    const upstream = app([
      `"127.0.0.1:9001"`,
      `{ address = "127.0.0.1:9002", state = "drain" }`,
      `{ address = "127.0.0.1:9003", state = "maint" }`,
      `{ address = "127.0.0.1:9004", down = true }`,
      `{ address = "127.0.0.1:9005", down = true, state = "maint" }`,
      `{ address = "127.0.0.1:9006", state = "ready" }`,
    ]);
    assert.deepEqual(upstream.servers.map((s) => s.state), [
      "ready",
      "drain",
      "maint",
      "maint",
      "maint",
      "ready",
    ]);
    assert.deepEqual(upstream.servers.map((s) => s.down), [false, false, true, true, true, false]);
  });

  it("refuse an unknown state, and down = true with another state", () => {
    assert.deepEqual(problemsOf(toml([`{ address = "127.0.0.1:9001", state = "drained" }`])), [{
      path: "upstreams.app.servers[0].state",
      message: `"drained" is not one of ready, drain, maint`,
    }]);
    assert.deepEqual(
      problemsOf(toml([`{ address = "127.0.0.1:9001", down = true, state = "drain" }`])),
      [{
        path: "upstreams.app.servers[0].state",
        message: `"drain" contradicts down = true (which is state = "maint"); keep one of them`,
      }],
    );
  });
});

describe("--check shows ids and states", () => {
  it("an id only where it differs from the address, and drain / maint beside the flags", () => {
    const config = parseConfig(
      toml([
        `{ address = "127.0.0.1:9001", id = "web-1" }`,
        `{ address = "127.0.0.1:9002", state = "drain" }`,
        `{ address = "127.0.0.1:9003", down = true }`,
      ], ""),
      "gw.toml",
    );
    const lines = checkSummary(config).split("\n").filter((l) => l.startsWith("  127."));
    assert.deepEqual(lines, [
      `  127.0.0.1:9001 (id web-1)  weight=1 max_fails=1 fail_timeout=10s  route=${
        md5("127.0.0.1:9001")
      }`,
      `  127.0.0.1:9002  weight=1 max_fails=1 fail_timeout=10s drain  route=${
        md5("127.0.0.1:9002")
      }`,
      `  127.0.0.1:9003  weight=1 max_fails=1 fail_timeout=10s maint  route=${
        md5("127.0.0.1:9003")
      }`,
    ]);
  });

  it("--check names each dns entry (it asks no DNS itself)", () => {
    const summary = checkSummary(parseConfig(
      `[upstreams.app]\nservers = [{ dns = "app.internal:8080", type = "A", interval = "2s", vanish_grace = "30s" }, { dns = "_http._tcp.api.internal", type = "SRV" }]\n`,
      "gw.toml",
    )).split("\n");
    assert.ok(
      summary.includes(
        "  dns A app.internal:8080 every 2s, vanish_grace 30s, max_servers 256 (resolved when serving: --check asks no DNS)",
      ),
      summary.join("\n"),
    );
    assert.ok(summary.some((l) => l.startsWith("  dns SRV _http._tcp.api.internal every 5s")));
  });

  it("--check shows the nginx format, legacy values, route sources and server routes", () => {
    const summary = checkSummary(parseConfig(
      `[upstreams.a]
servers = [{ address = "127.0.0.1:9001", route = "n1" }, "127.0.0.1:9002"]
[upstreams.a.sticky]
format = "nginx"
name = "srv"
accept_legacy = true
route_from = ["cookie:JSESSIONID"]
[upstreams.b]
servers = [{ address = "127.0.0.1:9003", route = "x" }]
[upstreams.b.sticky]
cookie = false
route_from = ["header:X-Route", "query:r"]
no_fallback = true
[[routes]]
path = "/"
upstream = "a"
[[routes]]
path = "/b"
upstream = "b"
`,
      "gw.toml",
    )).split("\n");
    assert.ok(summary.includes(
      `upstream a: sticky cookie "srv" (nginx format, accept_legacy, route_from cookie:JSESSIONID)`,
    ));
    assert.ok(
      summary.includes("  127.0.0.1:9001  weight=1 max_fails=1 fail_timeout=10s route=n1  srv=n1"),
    );
    assert.ok(summary.includes(
      "upstream b: sticky route (no cookie of its own, route_from header:X-Route, query:r, no_fallback)",
    ));
    assert.ok(summary.includes("  127.0.0.1:9003  weight=1 max_fails=1 fail_timeout=10s route=x"));
  });
});
