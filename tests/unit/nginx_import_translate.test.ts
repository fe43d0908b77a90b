/**
 * The translator: nginx directives → TOML keys (the README's migration table), the module's own
 * validation words for `sticky`, nginx's for its own `sticky`, route sources from variables and
 * maps, listen forms, virtual hosts, settings found at several levels; every TOML it writes
 * passes the gateway's parseConfig.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import {
  importNginxConfig,
  type NginxImport,
  NginxParseError,
} from "../../src/import/nginx/mod.ts";

/** Imports `text` as nginx.conf in a temp dir. */
function importText(text: string): NginxImport {
  const dir = mkdtempSync(join(tmpdir(), "nginx-import-"));
  try {
    writeFileSync(join(dir, "nginx.conf"), text);
    return importNginxConfig(join(dir, "nginx.conf"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An http block with one upstream of `lines` and a server proxying / to it. */
function upstream(lines: string, server = ""): string {
  return `http {
  upstream app {
    ${lines}
  }
  server {
    listen 127.0.0.1:8080;
    ${server}
    location / { proxy_pass http://app; proxy_set_header Host $host; }
  }
}
`;
}

function error(text: string): string {
  try {
    importText(text);
  } catch (e) {
    if (e instanceof NginxParseError) return `${e.line}:${e.column}: ${e.reason}`;
    throw e;
  }
  assert.fail("imported without an error");
}

// deno-lint-ignore no-explicit-any
type Table = Record<string, any>;

function table(result: NginxImport): Table {
  // smol-toml makes null-prototype objects; plain ones compare with deepEqual.
  return JSON.parse(JSON.stringify(parse(result.toml))) as Table;
}

function warnings(result: NginxImport): string[] {
  return result.warnings.filter((w) => w.level === "warning").map((w) =>
    `${w.line}:${w.column}: ${w.message}`
  );
}

describe("nginx import: the module's sticky", () => {
  it("every argument becomes its key (the README's table)", () => {
    const result = importText(upstream(
      `sticky name=srv domain=.example.com path=/app expires=1h secure httponly hash=sha1 no_fallback;
    server 10.0.0.1:8080 weight=3 max_fails=2 fail_timeout=30s;
    server 10.0.0.2:8080 down;`,
    ));
    const t = table(result);
    assert.deepEqual(t.upstreams.app.sticky, {
      name: "srv",
      domain: ".example.com",
      path: "/app",
      expires: "1h",
      secure: true,
      httponly: true,
      hash: "sha1",
      no_fallback: true,
    });
    assert.deepEqual(t.upstreams.app.servers, [
      { address: "10.0.0.1:8080", weight: 3, max_fails: 2, fail_timeout: "30s" },
      { address: "10.0.0.2:8080", down: true },
    ]);
    assert.deepEqual(warnings(result), []);
  });

  it("hmac with its key; text=raw; later duplicates win, as in the module", () => {
    const hmac = table(
      importText(upstream(`sticky hmac=sha1 hmac_key=K name=a name=b; server 127.0.0.1:1;`)),
    );
    assert.deepEqual(hmac.upstreams.app.sticky, { name: "b", hmac: "sha1", hmac_key: "K" });
    const raw = table(importText(upstream(`sticky text=raw; server 127.0.0.1:1;`)));
    assert.deepEqual(raw.upstreams.app.sticky, { text: "raw" });
    const hash = table(importText(upstream(`sticky hash=md5 hash=index; server 127.0.0.1:1;`)));
    assert.deepEqual(hash.upstreams.app.sticky, { hash: "index" });
  });

  it("what the module refuses is an error in the module's words, at the argument", () => {
    const cases: [string, string][] = [
      ["sticky name=;", `3:12: sticky: a value must be provided to "name="`],
      ["sticky domain=;", `3:12: sticky: a value must be provided to "domain="`],
      ["sticky expires=0;", `3:12: sticky: invalid value for "expires="`],
      ["sticky expires=1ms;", `3:12: sticky: invalid value for "expires="`],
      ["sticky Secure;", `3:12: sticky: invalid arguement (Secure)`],
      ["sticky hash=MD5;", `3:12: sticky: wrong value for "hash=": index, md5 or sha1`],
      ["sticky hash=;", `3:12: sticky: a value must be provided to "hash="`],
      ["sticky hmac=sha256 hmac_key=k;", `3:12: sticky: wrong value for "hmac=": md5 or sha1`],
      ["sticky text=md5;", `3:12: sticky: wrong value for "text=": raw`],
      [
        "sticky hash=md5 hmac=md5 hmac_key=k;",
        `3:21: sticky: please choose between "hash=", "hmac=" and "text"`,
      ],
      [
        "sticky hmac=md5 text=raw;",
        `3:21: sticky: please choose between "hash=", "hmac=" and "text="`,
      ],
      [
        "sticky hmac_key=k;",
        `3:5: sticky: "hmac_key=" is meaningless when "hmac" is used. Please remove it.`,
      ],
      [
        "sticky hash=index hmac_key=k;",
        `3:5: sticky: "hmac_key=" is meaningless when "hmac" is used. Please remove it.`,
      ],
      [
        "sticky; sticky;",
        `3:13: sticky: You can't use sticky with another upstream module (a second sticky)`,
      ],
      ["keepalive 8; sticky;", `3:18: sticky: You can't use sticky with another upstream module`],
    ];
    for (const [line, expected] of cases) {
      const got = error(upstream(`${line}\n    server 127.0.0.1:9001;`));
      assert.ok(got.startsWith(expected), `${line}\n  got:      ${got}\n  expected: ${expected}`);
    }
  });

  it("backup or max_conns after the module's sticky: nginx's error; before it: accepted", () => {
    assert.match(
      error(upstream(`sticky;\n    server 127.0.0.1:1 backup;`)),
      /^4:24: balancing method does not support parameter "backup"/,
    );
    assert.match(
      error(upstream(`sticky;\n    server 127.0.0.1:1 max_conns=5;`)),
      /^4:24: balancing method does not support parameter "max_conns"/,
    );
    const t = table(
      importText(upstream(`server 127.0.0.1:2 backup;\n    server 127.0.0.1:1;\n    sticky;`)),
    );
    assert.deepEqual(t.upstreams.app.servers, [
      { address: "127.0.0.1:2", backup: true },
      "127.0.0.1:1",
    ]);
  });

  it("ip_hash after the module's sticky turns it off in nginx: carried without stickiness", () => {
    const result = importText(upstream(`sticky;\n    ip_hash;\n    server 127.0.0.1:1;`));
    assert.equal(table(result).upstreams.app.sticky, undefined);
    assert.match(
      warnings(result)[0],
      /^4:5: ip_hash after sticky: nginx warns "load balancing method redefined"/,
    );
  });

  it("a value the gateway refuses (cookie name a=b) is an error at the sticky line, naming the key", () => {
    assert.match(
      error(upstream(`sticky name=a=b;\n    server 127.0.0.1:1;`)),
      /^3:5: cannot be carried: upstreams\.app\.sticky\.name: "a=b" is not a cookie name/,
    );
  });
});

describe("nginx import: nginx's own sticky", () => {
  it('sticky cookie → format = "nginx" with its attributes as written (samesite\'s case kept)', () => {
    const t = table(importText(upstream(
      `server 127.0.0.1:1 route=a;\n    server 127.0.0.1:2;\n    sticky cookie srv_id expires=max domain=.example.com path=/ samesite=Strict secure httponly;`,
    )));
    assert.deepEqual(t.upstreams.app.sticky, {
      format: "nginx",
      name: "srv_id",
      domain: ".example.com",
      path: "/",
      expires: "max",
      secure: true,
      httponly: true,
      samesite: "Strict",
    });
    assert.deepEqual(t.upstreams.app.servers, [
      { address: "127.0.0.1:1", route: "a" },
      "127.0.0.1:2",
    ]);
  });

  it("nginx's errors: duplicates, unknown parameters, bad values, too few arguments", () => {
    const cases: [string, string][] = [
      ["sticky cookie a path=/ path=/x;", `3:28: sticky: parameter "path" is duplicate`],
      ["sticky cookie a domain=;", `3:21: sticky: no value for "domain"`],
      ["sticky cookie a expires=forever;", `3:21: sticky: invalid "expires" parameter value`],
      ["sticky cookie a samesite=always;", `3:21: sticky: invalid "samesite" parameter value`],
      ["sticky cookie a name=b;", `3:21: sticky: unknown parameter "name=b"`],
      ["sticky cookie;", `3:5: invalid number of arguments in "sticky" directive`],
      ["sticky route route;", `3:18: sticky: invalid variable name "route"`],
      ["sticky cookie a; sticky cookie b;", `3:22: "sticky" directive is duplicate`],
    ];
    for (const [line, expected] of cases) {
      const got = error(upstream(`${line}\n    server 127.0.0.1:9001;`));
      assert.ok(got.startsWith(expected), `${line}\n  got:      ${got}\n  expected: ${expected}`);
    }
  });

  it("sticky route: $cookie_X, $http_x_y, $arg_X, and maps that keep the part after a delimiter", () => {
    const direct = table(importText(upstream(
      `server 127.0.0.1:1 route=a;\n    sticky route $cookie_route $http_x_backend_route $arg_r;`,
    )));
    assert.deepEqual(direct.upstreams.app.sticky, {
      cookie: false,
      route_from: ["cookie:route", "header:X-Backend-Route", "query:r"],
      route_delimiter: "",
    });
    const mapped = importText(`http {
  map $cookie_JSESSIONID $r1 { ~^.+-(?<route>[^-]+)$ $route; default ""; }
  map $http_x_session $r2 { ~.*-(\\w+)$ $1; }
  upstream app { server 127.0.0.1:1 route=n1; sticky route $r1 $r2; }
  server { location / { proxy_pass http://app; proxy_set_header Host $host; } }
}`);
    assert.deepEqual(table(mapped).upstreams.app.sticky, {
      cookie: false,
      route_from: ["cookie:JSESSIONID", "header:X-Session"],
      route_delimiter: "-",
    });
    assert.deepEqual(warnings(mapped), []);
  });

  it("sticky route with nothing the gateway can read, and sticky learn: balanced without stickiness, warned", () => {
    const none = importText(
      upstream(`server 127.0.0.1:1 route=a;\n    sticky route $remote_addr;`),
    );
    assert.equal(table(none).upstreams.app.sticky, undefined);
    assert.deepEqual(table(none).upstreams.app.servers, ["127.0.0.1:1"]);
    assert.equal(warnings(none).length, 2);
    const learn = importText(
      upstream(
        `server 127.0.0.1:1;\n    sticky learn create=$upstream_cookie_s lookup=$cookie_s zone=z:1m;`,
      ),
    );
    assert.equal(table(learn).upstreams.app.sticky, undefined);
    assert.match(warnings(learn)[0], /^4:5: sticky learn is not carried/);
  });
});

describe("nginx import: servers, listeners and routes", () => {
  it("addresses are kept byte for byte (IPv6 case, host names, no port)", () => {
    const t = table(
      importText(
        upstream(`server [2001:DB8::1]:80; server Backend.Example.com; server 10.0.0.1; sticky;`),
      ),
    );
    assert.deepEqual(t.upstreams.app.servers, [
      "[2001:DB8::1]:80",
      "Backend.Example.com",
      "10.0.0.1",
    ]);
  });

  it("proxy_pass names its upstream case-insensitively, as nginx compares it", () => {
    const t = table(
      importText(upstream("server 127.0.0.1:1;").replace("http://app", "http://APP")),
    );
    assert.deepEqual(t.routes, [{ path: "/", upstream: "app" }]);
    assert.deepEqual(Object.keys(t.upstreams), ["app"]);
    assert.match(
      error(upstream("server 127.0.0.1:1;").replace("http://app", "http://app:8080")),
      /^8:29: upstream "app" may not have port 8080/,
    );
    assert.match(
      error(`http { upstream a { server 127.0.0.1:1; } upstream A { server 127.0.0.1:2; } }`),
      /^1:43: duplicate upstream "A"/,
    );
  });

  it("listen forms: port, *:port, [::]:port, address without port, default 80", () => {
    const listen = (l: string) =>
      table(importText(upstream("server 127.0.0.1:1;").replace("listen 127.0.0.1:8080;", l))).server
        .listen;
    assert.equal(listen("listen 8080;"), "0.0.0.0:8080");
    assert.equal(listen("listen *:81;"), "0.0.0.0:81");
    assert.equal(listen("listen [::]:8080 ipv6only=on;"), "[::]:8080");
    assert.equal(listen("listen 127.0.0.2;"), "127.0.0.2:80");
    assert.equal(listen(""), "0.0.0.0:80");
  });

  it("sticky_no_fallback on the server applies to its locations; on a location to it and those inside", () => {
    const t = table(importText(`http {
  upstream app { sticky; server 127.0.0.1:1; }
  proxy_set_header Host $host;
  server { listen 8080; location / { proxy_pass http://app; }
    location /a { sticky_no_fallback; proxy_pass http://app; location /a/b { proxy_pass http://app; } } }
}`));
    assert.deepEqual(t.routes.map((r: Table) => [r.path, r.no_fallback ?? false]), [["/", false], [
      "/a",
      true,
    ], ["/a/b", true]]);
    assert.match(
      error(
        `http { upstream app { server 127.0.0.1:1; } server { sticky_no_fallback; sticky_no_fallback; location / { proxy_pass http://app; } } }`,
      ),
      /^1:74: "sticky_no_fallback" directive is duplicate/,
    );
    assert.match(
      error(
        `http { upstream app { server 127.0.0.1:1; } server { location / { sticky_no_fallback x; proxy_pass http://app; } } }`,
      ),
      /invalid number of arguments in "sticky_no_fallback"/,
    );
  });

  it("an exact location is carried as a prefix (warned); next to a prefix of the same path it is left out", () => {
    const result = importText(
      upstream(
        "server 127.0.0.1:1;",
        "location = /x { proxy_pass http://app; proxy_set_header Host $host; }",
      ),
    );
    assert.deepEqual(table(result).routes.map((r: Table) => r.path), ["/x", "/"]);
    assert.match(warnings(result)[0], /location = \/x is carried as the prefix route \/x/);
    const both = importText(
      upstream(
        "server 127.0.0.1:1;",
        "location = / { proxy_pass http://app; proxy_set_header Host $host; }",
      ),
    );
    assert.deepEqual(table(both).routes.map((r: Table) => r.path), ["/"]);
    assert.equal(warnings(both).length, 1);
    assert.match(
      warnings(both)[0],
      /location = \/ is not carried: the prefix location \/ of the same server/,
    );
  });

  it("settings: the largest of several levels is used and the others warned about; nginx's defaults where the gateway's differ", () => {
    const result = importText(`http {
  client_max_body_size 10m;
  upstream app { server 127.0.0.1:1; }
  server { proxy_set_header Host $host;
    location / { proxy_pass http://app; client_max_body_size 50m; proxy_connect_timeout 500ms; } }
}`);
    const server = table(result).server;
    assert.equal(server.client_max_body_size, "50m");
    assert.equal(server.connect_timeout, "500ms");
    assert.equal(server.read_timeout, undefined);
    assert.match(
      warnings(result)[0],
      /^2:3: client_max_body_size 10m: the gateway has one client_max_body_size for every route; the largest, 50m \(line 5\)/,
    );
    const defaults = table(importText(upstream("server 127.0.0.1:1;"))).server;
    assert.equal(defaults.connect_timeout, "60s");
    assert.equal(defaults.client_max_body_size, "1m");
  });

  it("several upstreams and no location to say which gets what: exit-2 error; one upstream: it takes everything", () => {
    assert.match(
      error(`http { upstream a { server 127.0.0.1:1; } upstream b { server 127.0.0.1:2; } }`),
      /2 upstreams but no location proxies/,
    );
    const one = importText(`http { upstream a { server 127.0.0.1:1; } }`);
    assert.equal(table(one).routes, undefined);
    assert.match(
      warnings(one)[0],
      /no location proxies to upstream "a": the gateway sends every request to it/,
    );
  });

  it("a server block on UNIX sockets only is not carried; the next one's listen is the gateway's", () => {
    const result = importText(`http {
  upstream app { server 127.0.0.1:1; }
  proxy_set_header Host $host;
  server { listen unix:/run/app.sock; location / { proxy_pass http://app; } }
  server { listen 127.0.0.1:8081; location /b { proxy_pass http://app; } }
}`);
    const t = table(result);
    assert.equal(t.server.listen, "127.0.0.1:8081");
    assert.deepEqual(t.routes.map((r: Table) => r.path), ["/b"]);
    assert.deepEqual(warnings(result).map((w) => w.split(": ").slice(0, 2).join(": ")), [
      "4:3: server block listening on UNIX sockets only",
      "4:12: listen unix:/run/app.sock is not carried",
    ]);
  });

  it("control characters in what a comment quotes (a \\n in an argument) cannot break the TOML", () => {
    const result = importText(
      upstream("server 127.0.0.1:1;", `add_header X-A "line\\none\\rtwo";`),
    );
    assert.doesNotThrow(() => parse(result.toml));
    assert.match(result.toml, /add_header X-A line\?one\?two/);
  });

  it("every TOML comment line names a place, and the TOML always parses", () => {
    const result = importText(
      upstream(`sticky "name=x y";\n    server 127.0.0.1:1;`).replace(
        'sticky "name=x y";',
        'sticky name=ok; # comment "quoted"\n    zone z 64k;',
      ),
    );
    for (const line of result.toml.split("\n").filter((l) => l.startsWith("#   "))) {
      assert.match(line, /^# {3}\S+nginx\.conf:\d+:\d+: /);
    }
    assert.doesNotThrow(() => parse(result.toml));
  });
});
