import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { ConfigError, matchRoute, parseConfig } from "../../src/config/mod.ts";
import { renderSetCookie, setCookieTemplate } from "../../src/cookie/set_cookie.ts";
import { setCookieProblem } from "../../src/config/sticky.ts";

type Problem = ConfigError["problems"][number];

const TWO_SERVERS = `
[upstreams.app]
servers = ["127.0.0.1:9001", "127.0.0.1:9002"]
`;

/** The problems a config is rejected with (fails the test when it is accepted). */
function problemsOf(text: string, file = "gw.toml"): readonly Problem[] {
  try {
    parseConfig(text, file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assert.equal(error.file, file);
    return error.problems;
  }
  assert.fail(`config was accepted:\n${text}`);
}

/** Asserts the config is rejected with exactly this one problem. */
function assertOnlyProblem(text: string, path: string, message: string): void {
  assert.deepEqual(problemsOf(text), [{ path, message }]);
}

/** A TOML basic string, with every control character (DEL too) as a \\u escape. */
function tomlString(value: string): string {
  // deno-lint-ignore no-control-regex
  const needsEscape = /[\u0000-\u001f\u007f"\\]/g;
  const escaped = value.replace(
    needsEscape,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return `"${escaped}"`;
}

/** A config with two servers and this body in its `[upstreams.app.sticky]` table. */
function withSticky(body: string): string {
  return `${TWO_SERVERS}[upstreams.app.sticky]\n${body}\n`;
}

describe("parseConfig: accepted configs", () => {
  it("fills in every default for the smallest config", () => {
    const config = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`, "min.toml");
    assert.equal(config.file, "min.toml");
    assert.deepEqual(config.server, {
      listen: { text: "127.0.0.1:8080", host: "127.0.0.1", port: 8080 },
      connectTimeoutMs: 5000,
      readTimeoutMs: 60_000,
      gracePeriodMs: 10_000,
      reloadMaxAgeMs: 0,
      reloadThrottleMs: 1000,
      reusePort: true,
      upstreamClient: "auto",
      workers: availableParallelism(),
      idleTimeoutMs: 300_000,
      clientMaxBodySize: 100 * 1024 * 1024,
      clientMaxHeaderSize: 32 * 1024,
      clientHeaderTimeoutMs: 60_000,
      keepaliveTimeoutMs: 75_000,
      maxConnections: 10_000,
    });
    const app = config.upstreams.get("app");
    assert.ok(app);
    assert.equal(app.sticky, undefined);
    const [server] = app.servers;
    assert.deepEqual(
      { ...server, address: { ...server.address } },
      {
        index: 0,
        id: "127.0.0.1:9001",
        address: { text: "127.0.0.1:9001", host: "127.0.0.1", port: 9001 },
        weight: 1,
        maxFails: 1,
        failTimeoutMs: 10_000,
        backup: false,
        state: "ready",
        down: false,
        cookieValue: "",
      },
    );
  });

  it("reads [server] settings in nginx time syntax", () => {
    const config = parseConfig(`
[server]
listen = "[::]:8443"
connect_timeout = "250ms"
read_timeout = "2m"
grace_period = "0"
upstream_client = "fetch"
${TWO_SERVERS}`);
    assert.deepEqual(config.server.listen, { text: "[::]:8443", host: "::", port: 8443 });
    assert.equal(config.server.connectTimeoutMs, 250);
    assert.equal(config.server.readTimeoutMs, 120_000);
    assert.equal(config.server.gracePeriodMs, 0);
    assert.equal(config.server.upstreamClient, "fetch");
  });

  it("reads string and table servers, keeping the address text byte-exact", () => {
    const config = parseConfig(`
[upstreams.app]
servers = [
  "127.0.0.1:9001",
  { address = "127.0.0.1:9002", weight = 3 },
  { address = "127.0.0.1:9003", max_fails = 3, fail_timeout = "30s" },
  { address = "127.0.0.1:9004", backup = true },
  { address = "127.0.0.1:9005", down = true },
  "[::1]:9006",
  "backend.internal",
  "127.0.0.1:019007",
]
`);
    const app = config.upstreams.get("app")!;
    assert.deepEqual(
      app.servers.map((s) => [s.index, s.address.text, s.address.host, s.address.port]),
      [
        [0, "127.0.0.1:9001", "127.0.0.1", 9001],
        [1, "127.0.0.1:9002", "127.0.0.1", 9002],
        [2, "127.0.0.1:9003", "127.0.0.1", 9003],
        [3, "127.0.0.1:9004", "127.0.0.1", 9004],
        [4, "127.0.0.1:9005", "127.0.0.1", 9005],
        [5, "[::1]:9006", "::1", 9006],
        [6, "backend.internal", "backend.internal", 80],
        [7, "127.0.0.1:019007", "127.0.0.1", 19007],
      ],
    );
    assert.equal(app.servers[1].weight, 3);
    assert.equal(app.servers[2].maxFails, 3);
    assert.equal(app.servers[2].failTimeoutMs, 30_000);
    assert.equal(app.servers[3].backup, true);
    assert.equal(app.servers[4].down, true);
    assert.deepEqual(app.primaries.map((s) => s.index), [0, 1, 2, 4, 5, 6, 7]);
    assert.deepEqual(app.backups.map((s) => s.index), [3]);
  });

  it("turns stickiness on with an empty sticky table, with the module's defaults", () => {
    const config = parseConfig(withSticky(""));
    const app = config.upstreams.get("app")!;
    assert.ok(app.sticky);
    assert.equal(app.sticky.name, "route");
    assert.equal(app.sticky.lowerName, "route");
    assert.equal(app.sticky.mode, "md5");
    assert.equal(app.sticky.noFallback, false);
    assert.equal(app.servers[0].cookieValue, "422db4e6da7b4bba46bd476612df0469");
    assert.equal(
      renderSetCookie(app.servers[0].setCookie!, 0),
      "route=422db4e6da7b4bba46bd476612df0469; Path=/",
    );
    assert.equal(app.sticky.serverByValue.get("f29316d06d7f5c505bf92924ef4c7ba4"), app.servers[1]);
  });

  it("reads every sticky option", () => {
    const config = parseConfig(withSticky(`
name = "SRV"
hmac = "sha1"
hmac_key = "secret"
domain = ".example.com"
path = "/app"
expires = "1h"
secure = true
httponly = true
samesite = "None"
partitioned = true
no_fallback = true`));
    const sticky = config.upstreams.get("app")!.sticky!;
    assert.equal(sticky.name, "SRV");
    assert.equal(sticky.lowerName, "srv");
    assert.equal(sticky.mode, "hmac-sha1");
    assert.equal(sticky.noFallback, true);
    const server = config.upstreams.get("app")!.servers[0];
    assert.equal(server.cookieValue, "04d7b051d306450275c2367976c3d66b3607fc80");
    assert.equal(
      renderSetCookie(server.setCookie!, Date.UTC(2026, 10, 21, 12, 12, 2)),
      "SRV=04d7b051d306450275c2367976c3d66b3607fc80; Domain=.example.com; Expires=Sat, 21-Nov-2026 13:12:02 GMT; " +
        "Path=/app; Secure; HttpOnly; SameSite=None; Partitioned",
    );
  });

  it("takes expires as a whole number of seconds too", () => {
    const server = parseConfig(withSticky("expires = 90")).upstreams.get("app")!.servers[0];
    assert.equal(
      renderSetCookie(server.setCookie!, Date.UTC(2026, 10, 21, 12, 12, 2)),
      "route=422db4e6da7b4bba46bd476612df0469; Expires=Sat, 21-Nov-2026 12:13:32 GMT; Path=/",
    );
  });

  it('takes nginx\'s spaced time form, expires = "1h 30m" (quoted in nginx.conf)', () => {
    const server = parseConfig(withSticky(`expires = "1h 30m"`)).upstreams.get("app")!.servers[0];
    assert.equal(
      renderSetCookie(server.setCookie!, Date.UTC(2026, 10, 21, 12, 12, 2)),
      "route=422db4e6da7b4bba46bd476612df0469; Expires=Sat, 21-Nov-2026 13:42:02 GMT; Path=/",
    );
  });

  it("takes the spaced form in every duration key", () => {
    const config = parseConfig(`[server]
connect_timeout = "1s 500ms"
read_timeout = "1m 30s"
grace_period = "10s "
idle_timeout = "1h 5m"
client_header_timeout = "1m 1s"
keepalive_timeout = "1m 15s"
[upstreams.app]
servers = [{ address = "127.0.0.1:9001", fail_timeout = "1m 10s" }]
`);
    const s = config.server;
    assert.deepEqual(
      [
        s.connectTimeoutMs,
        s.readTimeoutMs,
        s.gracePeriodMs,
        s.idleTimeoutMs,
        s.clientHeaderTimeoutMs,
        s.keepaliveTimeoutMs,
      ],
      [1500, 90_000, 10_000, 3_900_000, 61_000, 75_000],
    );
    assert.equal(config.upstreams.get("app")!.servers[0].failTimeoutMs, 70_000);
  });

  it("routes everything to the only upstream when there are no [[routes]]", () => {
    const config = parseConfig(TWO_SERVERS);
    const app = config.upstreams.get("app")!;
    assert.equal(config.routes.list.length, 1);
    assert.deepEqual(config.routes.list[0], { path: "/", upstream: app, noFallback: false });
    assert.equal(matchRoute(config.routes, "", "/"), config.routes.list[0]);
    assert.equal(matchRoute(config.routes, "any.example", "/deep/path"), config.routes.list[0]);
  });

  it("reads routes with host and no_fallback; longest prefix wins, host routes first", () => {
    const config = parseConfig(`
[upstreams.web]
servers = ["127.0.0.1:9001"]
[upstreams.api]
servers = ["127.0.0.1:9002"]
[[routes]]
path = "/"
upstream = "web"
[[routes]]
path = "/api"
upstream = "api"
no_fallback = true
[[routes]]
path = "/"
host = "App.Example.COM"
upstream = "api"
`);
    const [root, api, hosted] = config.routes.list;
    assert.equal(root.upstream, config.upstreams.get("web"));
    assert.equal(root.noFallback, false);
    assert.equal(api.upstream, config.upstreams.get("api"));
    assert.equal(api.noFallback, true);
    assert.equal(hosted.host, "app.example.com");
    assert.equal(matchRoute(config.routes, "", "/index.html"), root);
    assert.equal(matchRoute(config.routes, "", "/api/users"), api);
    assert.equal(matchRoute(config.routes, "other.example", "/api"), api);
    assert.equal(matchRoute(config.routes, "app.example.com", "/index.html"), hosted);
  });

  it("answers no route (404) when no prefix matches", () => {
    const config = parseConfig(`
[upstreams.app]
servers = ["127.0.0.1:9001"]
[[routes]]
path = "/api"
upstream = "app"
`);
    assert.equal(matchRoute(config.routes, "", "/"), undefined);
    assert.equal(matchRoute(config.routes, "", "/ap"), undefined);
    assert.equal(matchRoute(config.routes, "", "/api2")?.path, "/api");
  });

  it("keeps an upstream without sticky table non-sticky next to a sticky one", () => {
    const config = parseConfig(`
[upstreams.plain]
servers = ["127.0.0.1:9001"]
[upstreams.sticky]
servers = ["127.0.0.1:9002"]
[upstreams.sticky.sticky]
[[routes]]
path = "/"
upstream = "plain"
[[routes]]
path = "/s"
upstream = "sticky"
`);
    assert.equal(config.upstreams.get("plain")!.sticky, undefined);
    assert.equal(config.upstreams.get("plain")!.servers[0].setCookie, undefined);
    assert.equal(
      config.upstreams.get("sticky")!.servers[0].cookieValue,
      "f29316d06d7f5c505bf92924ef4c7ba4",
    );
  });
});

describe("parseConfig: rejected configs name the key path and what is allowed", () => {
  it("rejects an unknown hash", () => {
    assertOnlyProblem(
      withSticky(`hash = "md55"`),
      "upstreams.app.sticky.hash",
      `"md55" is not one of md5, sha1, index`,
    );
  });

  it("rejects enum values by exact match (no prefix match, case-sensitive)", () => {
    assertOnlyProblem(
      withSticky(`hash = "MD5"`),
      "upstreams.app.sticky.hash",
      `"MD5" is not one of md5, sha1, index`,
    );
    assertOnlyProblem(
      withSticky(`text = "rawfoo"`),
      "upstreams.app.sticky.text",
      `"rawfoo" is not one of raw`,
    );
    assertOnlyProblem(
      withSticky(`hmac = "sha256"`),
      "upstreams.app.sticky.hmac",
      `"sha256" is not one of md5, sha1`,
    );
    assertOnlyProblem(
      withSticky(`samesite = "lax"`),
      "upstreams.app.sticky.samesite",
      `"lax" is not one of Strict, Lax, None`,
    );
  });

  it("rejects a value of the wrong type", () => {
    assertOnlyProblem(
      withSticky(`secure = "yes"`),
      "upstreams.app.sticky.secure",
      `"yes" is not true or false`,
    );
    assertOnlyProblem(
      withSticky(`name = 5`),
      "upstreams.app.sticky.name",
      `5 is not a string; write it in quotes`,
    );
    assertOnlyProblem(
      `[upstreams.app]\nservers = [{ address = "127.0.0.1:9001", weight = 0 }]\n`,
      "upstreams.app.servers[0].weight",
      "0 is not a whole number from 1 to 1000000",
    );
    assertOnlyProblem(
      `[upstreams.app]\nservers = [5]\n`,
      "upstreams.app.servers[0]",
      `must be "host:port" or a table with address, weight, max_fails, fail_timeout, backup, down, id, state, route`,
    );
  });

  describe("unknown keys (typos) at every level", () => {
    it("at the top level", () => {
      assertOnlyProblem(
        `route = 1\n${TWO_SERVERS}`,
        "route",
        "unknown key; allowed here: server, upstreams, routes, log, admin",
      );
    });

    it("in [server]", () => {
      const problems = problemsOf(`[server]\nlisten_on = "127.0.0.1:80"\n${TWO_SERVERS}`);
      assert.deepEqual(problems.map((p) => p.path), ["server.listen_on"]);
      assert.match(
        problems[0].message,
        /^unknown key; allowed here: listen, connect_timeout, read_timeout, grace_period, reload_max_age, reload_throttle, reuse_port, upstream_client\b/,
      );
    });

    it("in an upstream", () => {
      assertOnlyProblem(
        `${TWO_SERVERS}weight = 2\n`,
        "upstreams.app.weight",
        "unknown key; allowed here: servers, sticky, tls, ca, insecure, sni, health",
      );
    });

    it("in a server table", () => {
      assertOnlyProblem(
        `[upstreams.app]\nservers = [{ address = "127.0.0.1:9001", wieght = 2 }]\n`,
        "upstreams.app.servers[0].wieght",
        "unknown key; allowed here: address, weight, max_fails, fail_timeout, backup, down, id, state, route",
      );
    });

    it("in the sticky table", () => {
      const problems = problemsOf(withSticky(`http_only = true`));
      assert.equal(problems.length, 1);
      assert.equal(problems[0].path, "upstreams.app.sticky.http_only");
      assert.match(
        problems[0].message,
        /^unknown key; allowed here: name, hash, hmac, hmac_key, text, domain, path, expires, secure, httponly, samesite, partitioned, no_fallback, format, accept_legacy, route_from, route_delimiter, cookie, mode, keys_file, keys_env, max_idle, max_life, clock_skew, header, indirect, hmac_key_file, hmac_key_env$/,
      );
    });

    it("in a route", () => {
      assertOnlyProblem(
        `${TWO_SERVERS}[[routes]]\npath = "/"\nupstream = "app"\nnofallback = true\n`,
        "routes[0].nofallback",
        "unknown key; allowed here: path, host, upstream, no_fallback",
      );
    });
  });

  it("rejects hash together with hmac (and any other pair of modes)", () => {
    assertOnlyProblem(
      withSticky(`hash = "md5"\nhmac = "sha1"\nhmac_key = "k"`),
      "upstreams.app.sticky",
      "hash and hmac are exclusive; choose one of hash, hmac and text",
    );
    assertOnlyProblem(
      withSticky(`text = "raw"\nhash = "md5"`),
      "upstreams.app.sticky",
      "hash and text are exclusive; choose one of hash, hmac and text",
    );
  });

  it("rejects hmac without hmac_key, or with an empty one", () => {
    assertOnlyProblem(
      withSticky(`hmac = "md5"`),
      "upstreams.app.sticky.hmac_key",
      `is required with hmac = "md5"; set a secret key`,
    );
    assertOnlyProblem(
      withSticky(`hmac = "sha1"\nhmac_key = ""`),
      "upstreams.app.sticky.hmac_key",
      `is required with hmac = "sha1"; set a secret key`,
    );
  });

  it("rejects hmac_key without hmac", () => {
    const message = `is only used with hmac = "md5" or "sha1"; remove it or set hmac`;
    assertOnlyProblem(withSticky(`hmac_key = "k"`), "upstreams.app.sticky.hmac_key", message);
    assertOnlyProblem(
      withSticky(`hash = "index"\nhmac_key = "k"`),
      "upstreams.app.sticky.hmac_key",
      message,
    );
  });

  it("rejects expires below one second, with ms, or not a duration", () => {
    const path = "upstreams.app.sticky.expires";
    const syntax = `use nginx time syntax such as "90", "30s", "1h30m" (units s, m, h, d, w, M, y)`;
    assertOnlyProblem(
      withSticky(`expires = "0"`),
      path,
      `"0" is too short; the least allowed is 1s`,
    );
    assertOnlyProblem(withSticky(`expires = 0`), path, `0 is too short; the least allowed is 1s`);
    assertOnlyProblem(withSticky(`expires = "1ms"`), path, `"1ms" is not a duration; ${syntax}`);
    assertOnlyProblem(withSticky(`expires = "10x"`), path, `"10x" is not a duration; ${syntax}`);
    assertOnlyProblem(withSticky(`expires = "-1"`), path, `"-1" is not a duration; ${syntax}`);
    assertOnlyProblem(
      withSticky(`expires = "max"`),
      path,
      `"max" is nginx's own sticky cookie's (format = "nginx"); the module's cookie needs a duration such as "1y"`,
    );
    assertOnlyProblem(withSticky(`expires = "1 h"`), path, `"1 h" is not a duration; ${syntax}`);
    assertOnlyProblem(withSticky(`expires = 1.5`), path, `1.5 is not a duration; ${syntax}`);
  });

  it("rejects SameSite=None without secure", () => {
    assertOnlyProblem(
      withSticky(`samesite = "None"`),
      "upstreams.app.sticky.samesite",
      `"None" needs secure = true (browsers drop SameSite=None cookies without Secure)`,
    );
  });

  it('rejects partitioned without both secure = true and samesite = "None", naming what to set', () => {
    const path = "upstreams.app.sticky.partitioned";
    const why =
      `needs secure = true and samesite = "None": a partitioned cookie is for cross-site ` +
      `iframes, where browsers send only SameSite=None cookies, and they drop Partitioned ones ` +
      `without Secure;`;
    assertOnlyProblem(
      withSticky(`partitioned = true`),
      path,
      `${why} set secure = true and samesite = "None", or remove partitioned`,
    );
    assertOnlyProblem(
      withSticky(`partitioned = true\nsecure = true`),
      path,
      `${why} set samesite = "None", or remove partitioned`,
    );
    assertOnlyProblem(
      withSticky(`partitioned = true\nsecure = true\nsamesite = "Lax"`),
      path,
      `${why} set samesite = "None" (not "Lax"), or remove partitioned`,
    );
    assertOnlyProblem(
      withSticky(`partitioned = true\nsecure = true\nsamesite = "Strict"`),
      path,
      `${why} set samesite = "None" (not "Strict"), or remove partitioned`,
    );
    assert.deepEqual(problemsOf(withSticky(`partitioned = true\nsamesite = "None"`)), [
      {
        path: "upstreams.app.sticky.samesite",
        message: `"None" needs secure = true (browsers drop SameSite=None cookies without Secure)`,
      },
      { path, message: `${why} set secure = true, or remove partitioned` },
    ]);
    assert.doesNotThrow(() =>
      parseConfig(withSticky(`samesite = "None"\npartitioned = true\nsecure = true`))
    );
    assert.doesNotThrow(() => parseConfig(withSticky(`partitioned = false`)));
  });

  describe("header injection through name, domain and path", () => {
    const unsafe: readonly [string, string][] = [
      ["a semicolon", "x;Secure"],
      ["CR", "x\rSet-Cookie: y=1"],
      ["LF", "x\nSet-Cookie: y=1"],
      ["a NUL", "x\u0000"],
      ["a tab", "x\ty"],
      ["DEL", "x\u007f"],
      ["an escape", "x\u001b"],
    ];
    for (const [what, value] of unsafe) {
      for (const key of ["domain", "path"]) {
        it(`rejects ${what} in ${key}`, () => {
          const text = key === "path" ? `/${value}` : value;
          assertOnlyProblem(
            withSticky(`${key} = ${tomlString(text)}`),
            `upstreams.app.sticky.${key}`,
            `${
              JSON.stringify(text)
            } contains ";" or a control character, which would end or split the Set-Cookie attribute`,
          );
        });
      }
      it(`rejects ${what} in name`, () => {
        const problems = problemsOf(withSticky(`name = ${tomlString(value)}`));
        assert.deepEqual(problems.map((p) => p.path), ["upstreams.app.sticky.name"]);
        assert.match(problems[0].message, /is not a cookie name; use letters, digits and/);
      });
    }

    it('rejects "=", space, comma and an empty cookie name', () => {
      for (const name of ["a=b", "my route", "a,b", ""]) {
        assertOnlyProblem(
          withSticky(`name = ${JSON.stringify(name)}`),
          "upstreams.app.sticky.name",
          `${
            JSON.stringify(name)
          } is not a cookie name; use letters, digits and !#$%&'*+-.^_\`|~ (no spaces, "=", ";" or ",")`,
        );
      }
    });

    it("rejects a domain that is not a host name, saying what to write", () => {
      for (
        const domain of [
          "example.com:8080",
          "https://example.com",
          "exa mple.com",
          "a..b",
          "example.com.",
          "/x",
        ]
      ) {
        assertOnlyProblem(
          withSticky(`domain = ${JSON.stringify(domain)}`),
          "upstreams.app.sticky.domain",
          `${
            JSON.stringify(domain)
          } is not a domain name; write a host name such as "example.com" or ".example.com" (letters, digits, "-", "_" and "."; no scheme, port or path)`,
        );
      }
      for (
        const domain of [
          "example.com",
          ".example.com",
          "EXAMPLE.com",
          "localhost",
          "a_b.example",
          "10.0.0.1",
        ]
      ) {
        assert.doesNotThrow(
          () => parseConfig(withSticky(`domain = ${JSON.stringify(domain)}`)),
          domain,
        );
      }
    });

    it("rejects a path ending in a space (browsers strip it), giving the trimmed path", () => {
      assertOnlyProblem(
        withSticky(`path = "/app "`),
        "upstreams.app.sticky.path",
        `"/app " ends with a space, which browsers strip; write path = "/app"`,
      );
      assert.doesNotThrow(() => parseConfig(withSticky(`path = "/a b"`)));
    });

    it("rejects an empty domain or path, and a path not starting with /", () => {
      assertOnlyProblem(
        withSticky(`domain = ""`),
        "upstreams.app.sticky.domain",
        "is empty; give a value or remove the key",
      );
      assertOnlyProblem(
        withSticky(`path = ""`),
        "upstreams.app.sticky.path",
        "is empty; give a value or remove the key",
      );
      assertOnlyProblem(
        withSticky(`path = "app"`),
        "upstreams.app.sticky.path",
        `"app" must start with "/"`,
      );
    });
  });

  describe("non-ASCII in name, domain and path: refused at load with the ASCII to write", () => {
    // Header values are ByteStrings: "/日本" made every Set-Cookie throw (each first visit a 502),
    // and Latin-1 "/café" went out as one byte per character where nginx sends UTF-8.
    const pathFixes: readonly [string, string][] = [
      ["/日本", "/%E6%97%A5%E6%9C%AC"],
      ["/café", "/caf%C3%A9"],
      ["/app/über/x y", "/app/%C3%BCber/x y"],
      ["/a%20ü", "/a%20%C3%BC"],
      ["/😀", "/%F0%9F%98%80"],
    ];
    for (const [path, fixed] of pathFixes) {
      it(`path ${JSON.stringify(path)} → ${JSON.stringify(fixed)}`, () => {
        assertOnlyProblem(
          withSticky(`path = ${JSON.stringify(path)}`),
          "upstreams.app.sticky.path",
          `${
            JSON.stringify(path)
          } has characters outside ASCII, which a Set-Cookie header cannot carry (browsers match it against the percent-encoded request path); write path = ${
            JSON.stringify(fixed)
          }`,
        );
        const server = parseConfig(withSticky(`path = ${JSON.stringify(fixed)}`))
          .upstreams.get("app")!.servers[0];
        assert.equal(
          renderSetCookie(server.setCookie!, 0),
          `route=422db4e6da7b4bba46bd476612df0469; Path=${fixed}`,
        );
      });
    }

    const domainFixes: readonly [string, string][] = [
      ["bücher.example", "xn--bcher-kva.example"],
      [".bücher.example", ".xn--bcher-kva.example"],
      ["café.example", "xn--caf-dma.example"],
      ["例え.テスト", "xn--r8jz45g.xn--zckzah"],
    ];
    for (const [domain, fixed] of domainFixes) {
      it(`domain ${JSON.stringify(domain)} → ${JSON.stringify(fixed)}`, () => {
        assertOnlyProblem(
          withSticky(`domain = ${JSON.stringify(domain)}`),
          "upstreams.app.sticky.domain",
          `${
            JSON.stringify(domain)
          } has characters outside ASCII, which a Set-Cookie header cannot carry; write it in punycode: domain = ${
            JSON.stringify(fixed)
          }`,
        );
        assert.doesNotThrow(() => parseConfig(withSticky(`domain = ${JSON.stringify(fixed)}`)));
      });
    }

    it("a non-ASCII domain with no punycode form is refused without a suggestion", () => {
      const problems = problemsOf(withSticky(`domain = "ü b.example"`));
      assert.deepEqual(problems.map((p) => p.path), ["upstreams.app.sticky.domain"]);
      assert.match(problems[0].message, /^"ü b\.example" has characters outside ASCII/);
      assert.doesNotMatch(problems[0].message, /domain = /);
    });

    for (const name of ["routé", "日本", "r\u00a0"]) {
      it(`name ${JSON.stringify(name)} is not a cookie name`, () => {
        const problems = problemsOf(withSticky(`name = "${name}"`));
        assert.deepEqual(problems.map((p) => p.path), ["upstreams.app.sticky.name"]);
        assert.match(problems[0].message, /is not a cookie name; use letters, digits and/);
      });
    }
  });

  describe("no config value can make a Set-Cookie throw", () => {
    const hostile = [
      "/日本",
      "/café",
      "é",
      "\u00a0",
      "\u2028",
      "\u0085",
      "/a ",
      " /a",
      "/\u007f",
      "/x\u0000",
      "x;y",
      "/%",
      "a=b",
      "/a,b",
      ".example.com",
      "😀",
      '/"q"',
    ];
    const clocks = [0, Date.UTC(2026, 10, 21, 12, 12, 2), Date.UTC(2999, 11, 31, 23, 59, 59)];
    for (const key of ["name", "domain", "path"]) {
      it(`in ${key}: refused naming the key, or every Set-Cookie is a valid header value`, () => {
        for (const value of hostile) {
          const text = withSticky(
            `${key} = ${tomlString(value)}\nexpires = "1000y"\nsecure = true`,
          );
          let config;
          try {
            config = parseConfig(text);
          } catch (error) {
            assert.ok(error instanceof ConfigError, String(error));
            assert.deepEqual(
              error.problems.map((p) => p.path),
              [`upstreams.app.sticky.${key}`],
              value,
            );
            continue;
          }
          for (const server of config.upstreams.get("app")!.servers) {
            for (const now of clocks) {
              const header = renderSetCookie(server.setCookie!, now);
              assert.match(header, /^[\x20-\x7e]+$/, `${key} = ${JSON.stringify(value)}`);
              const headers = new Headers();
              headers.append("set-cookie", header);
              assert.equal(headers.get("set-cookie"), header);
            }
          }
        }
      });
    }
  });

  it("checks the whole rendered Set-Cookie too, as the runtime will see it", () => {
    const template = (path: string) =>
      setCookieTemplate({
        name: "route",
        path,
        expiresSeconds: 60,
        secure: false,
        httpOnly: false,
        partitioned: false,
      }, "v");
    assert.equal(setCookieProblem(template("/")), undefined);
    assert.equal(
      setCookieProblem(template("/日本")),
      `the Set-Cookie would be "route=v; Expires=Thu, 01-Jan-2026 00:01:00 GMT; Path=/日本", which is not a valid header value (character U+65E5 at 54 is not visible ASCII)`,
    );
  });

  it("rejects expires over 1000y (the Expires year could pass 9999)", () => {
    for (const value of ["1001y", "280000y"]) {
      assertOnlyProblem(
        withSticky(`expires = "${value}"`),
        "upstreams.app.sticky.expires",
        `"${value}" is too long; the most allowed is 1000y (browsers keep a cookie at most 400 days anyway)`,
      );
    }
    const server = parseConfig(withSticky(`expires = "1000y"`)).upstreams.get("app")!.servers[0];
    assert.match(
      renderSetCookie(server.setCookie!, Date.UTC(2026, 0, 1)),
      /Expires=\w{3}, \d\d-\w{3}-3\d{3} /,
    );
  });

  it("rejects a server listed twice", () => {
    assertOnlyProblem(
      `[upstreams.app]\nservers = ["127.0.0.1:9001", { address = "127.0.0.1:9001", weight = 2 }]\n`,
      "upstreams.app.servers[1]",
      `"127.0.0.1:9001" is listed twice; each server's cookie value must be its own`,
    );
  });

  it("rejects an upstream whose servers are all backups", () => {
    assertOnlyProblem(
      `[upstreams.app]\nservers = [{ address = "127.0.0.1:9001", backup = true }]\n`,
      "upstreams.app.servers",
      "every server is a backup; at least one must be a primary (backup = false)",
    );
  });

  it("rejects an upstream without servers, and a config without upstreams", () => {
    assertOnlyProblem(
      `[upstreams.app]\nservers = []\n`,
      "upstreams.app.servers",
      `needs at least one server, e.g. servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 }]`,
    );
    assertOnlyProblem(
      `[server]\n`,
      "upstreams",
      `no upstream defined; add one such as [upstreams.app] with servers = ["127.0.0.1:9001"]`,
    );
  });

  it("rejects bad server addresses at the entry (string) or at .address (table)", () => {
    assertOnlyProblem(
      `[upstreams.app]\nservers = ["::1:9001"]\n`,
      "upstreams.app.servers[0]",
      `"::1:9001" looks like an IPv6 address without brackets; write "[::1:9001]:PORT"`,
    );
    assertOnlyProblem(
      `[upstreams.app]\nservers = [{ address = "127.0.0.1:65536" }]\n`,
      "upstreams.app.servers[0].address",
      `port "65536" in "127.0.0.1:65536" is not a number from 0 to 65535`,
    );
    assertOnlyProblem(
      `[upstreams.app]\nservers = [{ weight = 2 }]\n`,
      "upstreams.app.servers[0].address",
      `is required, e.g. address = "127.0.0.1:9001"`,
    );
  });

  it("rejects two upstreams without routes", () => {
    assertOnlyProblem(
      `[upstreams.a]\nservers = ["127.0.0.1:9001"]\n[upstreams.b]\nservers = ["127.0.0.1:9002"]\n`,
      "routes",
      "with 2 upstreams, add [[routes]] entries (path, upstream) to say which requests go where",
    );
  });

  it("rejects a route to an unknown upstream, or without one", () => {
    assertOnlyProblem(
      `${TWO_SERVERS}[[routes]]\npath = "/"\nupstream = "ap"\n`,
      "routes[0].upstream",
      `"ap" is not defined; defined upstreams: app`,
    );
    assertOnlyProblem(
      `${TWO_SERVERS}[[routes]]\npath = "/"\n`,
      "routes[0].upstream",
      "is required; one of app",
    );
  });

  it("rejects a route path without leading /, a bad host, and a duplicate route", () => {
    assertOnlyProblem(
      `${TWO_SERVERS}[[routes]]\npath = "api"\nupstream = "app"\n`,
      "routes[0].path",
      `"api" must start with "/"`,
    );
    assertOnlyProblem(
      `${TWO_SERVERS}[[routes]]\nhost = "app.example.com:8080"\nupstream = "app"\n`,
      "routes[0].host",
      `"app.example.com:8080" is not a host name; write it without port or scheme, e.g. "app.example.com"`,
    );
    assertOnlyProblem(
      `${TWO_SERVERS}[[routes]]\npath = "/a"\nhost = "x.example"\nupstream = "app"\n[[routes]]\npath = "/a"\nhost = "X.example"\nupstream = "app"\n`,
      "routes[1]",
      `another route already has path "/a" and host "x.example"`,
    );
  });

  it("rejects a bad listen address", () => {
    assertOnlyProblem(
      `[server]\nlisten = "localhost"\n${TWO_SERVERS}`,
      "server.listen",
      `"localhost" has no port; expected "host:port" such as "127.0.0.1:8080" or "[::1]:8080"`,
    );
    assertOnlyProblem(
      `[server]\nlisten = "http://0.0.0.0:80"\n${TWO_SERVERS}`,
      "server.listen",
      `"http://0.0.0.0:80" looks like an IPv6 address without brackets; write "[http://0.0.0.0:80]:PORT"`,
    );
    assertOnlyProblem(
      `[server]\nlisten = "[::1]8080"\n${TWO_SERVERS}`,
      "server.listen",
      `"[::1]8080" is not an address; expected "host:port" such as "127.0.0.1:8080" or "[::1]:8080"`,
    );
  });

  it("rejects bad durations in [server] and servers", () => {
    assertOnlyProblem(
      `[server]\nconnect_timeout = "5 s"\n${TWO_SERVERS}`,
      "server.connect_timeout",
      `"5 s" is not a duration; use nginx time syntax such as "90", "30s", "1h30m" (units ms, s, m, h, d, w, M, y)`,
    );
    assertOnlyProblem(
      `[upstreams.app]\nservers = [{ address = "127.0.0.1:9001", fail_timeout = "0" }]\n`,
      "upstreams.app.servers[0].fail_timeout",
      `"0" is too short; the least allowed is 0.001s`,
    );
  });

  it("takes reload_throttle from 0 to a minute", () => {
    const throttle = (value: string) =>
      parseConfig(`[server]\nreload_throttle = ${value}\n${TWO_SERVERS}`).server.reloadThrottleMs;
    assert.equal(throttle(`"0"`), 0);
    assert.equal(throttle(`"200ms"`), 200);
    assert.equal(throttle(`"1m"`), 60_000);
    assertOnlyProblem(
      `[server]\nreload_throttle = "61s"\n${TWO_SERVERS}`,
      "server.reload_throttle",
      "61s is too long; the most allowed is 60s",
    );
  });

  it("reports invalid TOML with its line and column", () => {
    assert.deepEqual(problemsOf(`[server]\n\nlisten = = "x"\n${TWO_SERVERS}`), [
      {
        path: "",
        message: "line 3, column 10: not valid TOML: Invalid TOML document: invalid value",
      },
    ]);
    assert.deepEqual(problemsOf(`[server]\nlisten = "a"\nlisten = "b"\n`), [
      {
        path: "",
        message:
          "line 3, column 1: not valid TOML: Invalid TOML document: trying to redefine an already defined table or value",
      },
    ]);
  });

  it("reports several problems at once, in the order of the file", () => {
    const problems = problemsOf(`
[server]
listen = "nowhere"
[upstreams.app]
servers = ["127.0.0.1:9001", "127.0.0.1:9001"]
[upstreams.app.sticky]
hash = "md55"
samesite = "None"
colour = "blue"
`);
    assert.deepEqual(problems.map((p) => p.path), [
      "server.listen",
      "upstreams.app.servers[1]",
      "upstreams.app.sticky.hash",
      "upstreams.app.sticky.samesite",
      "upstreams.app.sticky.colour",
    ]);
  });

  it("formats ConfigError.message as one `FILE: key.path: message` line per problem", () => {
    let caught: unknown;
    try {
      parseConfig(withSticky(`hash = "md55"\nsecure = 1`), "/etc/gw.toml");
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.name, "ConfigError");
    assert.equal(
      caught.message,
      `/etc/gw.toml: upstreams.app.sticky.hash: "md55" is not one of md5, sha1, index\n` +
        `/etc/gw.toml: upstreams.app.sticky.secure: 1 is not true or false`,
    );
  });

  it("formats a problem without a key path as `FILE: message`", () => {
    assert.throws(() => parseConfig(`x = [`, "bad.toml"), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(
        error.message,
        "bad.toml: line 1, column 5: not valid TOML: Invalid TOML document: unfinished array",
      );
      return true;
    });
  });
});
