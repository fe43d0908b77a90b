/**
 * The proxy around the sticky decision, with the default upstream client: Set-Cookie handling,
 * hop-by-hop headers both ways, X-Forwarded-*, Host, redirects, HEAD, status pass-through, gzip
 * byte-exact, 502/504 answers, and surviving a malformed request.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { startGateway, stopAllGateways } from "../support/gateway.ts";
import {
  ask,
  header,
  headerValues,
  md5,
  rawExchange,
  rawRequest,
  type RawResponse,
} from "../support/http.ts";
import {
  closeAllUpstreams,
  closedPort,
  GZIP_BODY,
  GZIP_TEXT,
  type HangingServer,
  type NamedUpstream,
  requestHeaderValues,
  startHangingServer,
  startNamedUpstream,
} from "../support/upstreams.ts";

/** Hop-by-hop response headers the /hop upstream sends (and X-Upstream-Hop, listed in its Connection). */
const HOP_RESPONSE = [
  "keep-alive",
  "x-upstream-hop",
  "proxy-connection",
  "trailer",
  "upgrade",
  "proxy-authenticate",
];
/** Hop-by-hop request headers the client sends (and X-Client-Hop, listed in its Connection). */
const HOP_REQUEST: [string, string][] = [
  ["Connection", "keep-alive, X-Client-Hop"],
  ["X-Client-Hop", "must-not-pass"],
  ["Keep-Alive", "timeout=7, max=7"],
  ["Proxy-Connection", "keep-alive"],
  ["TE", "trailers"],
  ["Trailer", "X-Client-Trailer"],
  ["Upgrade", "example/1"],
  ["Proxy-Authorization", "Basic dXNlcjpwYXNz"],
  ["X-End-To-End", "kept"],
];

const names = (response: RawResponse) => response.headers.map(([n]) => n.toLowerCase());

/** A Connection header the gateway's own hop may carry: only close / keep-alive. */
function assertOwnConnection(values: string[], where: string) {
  for (const value of values) {
    for (const token of value.split(",")) {
      assert.match(
        token.trim().toLowerCase(),
        /^(close|keep-alive)$/,
        `${where}: Connection: ${value}`,
      );
    }
  }
}

describe("proxying (default upstream client)", () => {
  let U: NamedUpstream;
  let port = 0;
  before(async () => {
    U = await startNamedUpstream("U");
    const gw = await startGateway(`
[upstreams.app]
servers = ["${U.address}"]
[upstreams.app.sticky]
`);
    port = gw.port;
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });
  const last = () => U.requests[U.requests.length - 1];

  it("the upstream's own Set-Cookie for the sticky name is dropped; its others pass as separate lines after ours", async () => {
    // The upstream really sends them (so the check below can fail).
    const direct = await rawRequest(U.port, { path: "/set-cookie" });
    assert.equal(headerValues(direct, "set-cookie").length, 4);

    const fresh = await ask(port, { path: "/set-cookie" });
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.setCookies, [
      `route=${md5(U.address)}; Path=/`,
      "session=s1; Path=/; HttpOnly",
      "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
    ]);
    const pinned = await ask(port, { path: "/set-cookie", cookies: [`route=${md5(U.address)}`] });
    assert.deepEqual(pinned.setCookies, [
      "session=s1; Path=/; HttpOnly",
      "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
    ]);
  });

  it("hop-by-hop request headers (and those Connection lists) do not reach the upstream; end-to-end ones do", async () => {
    const answer = await ask(port, { path: "/echo", headers: HOP_REQUEST });
    assert.equal(answer.status, 200);
    const received = last();
    assert.equal(received.url, "/echo");
    for (
      const name of [
        "x-client-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
      ]
    ) {
      assert.deepEqual(requestHeaderValues(received, name), [], `${name} reached the upstream`);
    }
    assertOwnConnection(requestHeaderValues(received, "connection"), "upstream request");
    assert.deepEqual(requestHeaderValues(received, "x-end-to-end"), ["kept"]);
  });

  it("hop-by-hop response headers (and those Connection lists) do not reach the client; end-to-end ones do", async () => {
    const direct = await rawRequest(U.port, { path: "/hop" });
    for (const name of HOP_RESPONSE) {
      assert.ok(names(direct).includes(name), `the upstream sends ${name}`);
    }

    const answer = await ask(port, { path: "/hop" });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "U");
    for (const name of HOP_RESPONSE) {
      if (name === "keep-alive") {
        // The gateway may describe its own connection; never with the upstream's values.
        assert.ok(
          !headerValues(answer.response, name).includes("timeout=5, max=100"),
          "upstream Keep-Alive passed",
        );
        continue;
      }
      assert.ok(!names(answer.response).includes(name), `${name} reached the client`);
    }
    assertOwnConnection(headerValues(answer.response, "connection"), "client response");
    assert.equal(header(answer.response, "x-end-to-end"), "kept");
  });

  it("X-Forwarded-For is appended to, X-Forwarded-Proto set, X-Forwarded-Host and Host as the client sent them", async () => {
    await ask(port, {
      path: "/xf?q=1&r=%20s",
      headers: [["Host", "App.Example.com:8443"], ["X-Forwarded-For", "203.0.113.7"], [
        "X-Forwarded-Proto",
        "https",
      ], ["X-Forwarded-Host", "spoofed.example"]],
    });
    const withChain = last();
    assert.equal(withChain.url, "/xf?q=1&r=%20s", "the target passes as sent");
    assert.deepEqual(requestHeaderValues(withChain, "host"), ["App.Example.com:8443"]);
    assert.deepEqual(requestHeaderValues(withChain, "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"]);
    assert.deepEqual(requestHeaderValues(withChain, "x-forwarded-proto"), ["http"]);
    assert.deepEqual(requestHeaderValues(withChain, "x-forwarded-host"), ["App.Example.com:8443"]);

    await ask(port, { path: "/xf" });
    const plain = last();
    assert.deepEqual(requestHeaderValues(plain, "host"), [`127.0.0.1:${port}`]);
    assert.deepEqual(requestHeaderValues(plain, "x-forwarded-for"), ["127.0.0.1"]);
    assert.deepEqual(requestHeaderValues(plain, "x-forwarded-proto"), ["http"]);
    assert.deepEqual(requestHeaderValues(plain, "x-forwarded-host"), [`127.0.0.1:${port}`]);
  });

  it("redirects pass through unchanged (status, Location, body)", async () => {
    const relative = await ask(port, { path: "/redirect" });
    assert.equal(relative.status, 302);
    assert.equal(header(relative.response, "location"), "/landing?from=redirect&x=%20y");
    assert.equal(relative.servedBy, "U");
    assert.deepEqual(
      relative.sticky,
      [`route=${md5(U.address)}; Path=/`],
      "a new client gets its cookie on a redirect too",
    );
    const absolute = await ask(port, {
      path: "/redirect-abs",
      cookies: [`route=${md5(U.address)}`],
    });
    assert.equal(absolute.status, 301);
    assert.equal(header(absolute.response, "location"), "http://other.example:8443/p?q=1#frag");
    assert.equal(absolute.body, "moved\n");
    assert.deepEqual(absolute.setCookies, []);
  });

  it("HEAD works: the upstream's status and headers, no body, the sticky cookie", async () => {
    const answer = await ask(port, { method: "HEAD", path: "/download?bytes=12345" });
    assert.equal(answer.status, 200);
    assert.equal(answer.servedBy, "U");
    assert.equal(answer.body, "");
    assert.equal(last().method, "HEAD");
    assert.deepEqual(answer.sticky, [`route=${md5(U.address)}; Path=/`]);
    assert.equal(
      header(answer.response, "content-length"),
      "12345",
      "the upstream's Content-Length",
    );
    // The connection is still usable for the next request (no body bytes were left over).
    const next = await ask(port, { path: "/" });
    assert.equal(next.body, "U");
  });

  it("the upstream's error statuses pass through; they do not mark the server failed", async () => {
    for (const status of [404, 500, 503]) {
      const answer = await ask(port, {
        path: `/status/${status}`,
        cookies: [`route=${md5(U.address)}`],
      });
      assert.equal(answer.status, status);
      assert.equal(answer.body, "U");
    }
    const after = await ask(port, { cookies: [`route=${md5(U.address)}`] });
    assert.equal(after.status, 200);
    assert.deepEqual(after.setCookies, []);
  });

  it("gzip: Accept-Encoding: gzip gets the upstream's exact gzip bytes and Content-Encoding", async () => {
    const answer = await ask(port, { path: "/gzip", headers: [["Accept-Encoding", "gzip"]] });
    assert.equal(answer.status, 200);
    assert.equal(header(answer.response, "content-encoding"), "gzip");
    assert.ok(
      Buffer.compare(answer.response.body, GZIP_BODY) === 0,
      `gzip bytes differ (${answer.response.body.length} vs ${GZIP_BODY.length})`,
    );
    assert.equal(gunzipSync(answer.response.body).toString(), GZIP_TEXT);
    assert.equal(header(answer.response, "content-length"), String(GZIP_BODY.length));
    assert.deepEqual(
      requestHeaderValues(last(), "accept-encoding"),
      ["gzip"],
      "the client's Accept-Encoding reaches the upstream",
    );
  });

  it("a client that sends Accept-Encoding: identity gets what the upstream sends, labelled truthfully", async () => {
    const answer = await ask(port, { path: "/gzip", headers: [["Accept-Encoding", "identity"]] });
    assert.equal(answer.status, 200);
    const encoding = header(answer.response, "content-encoding");
    const text = encoding === "gzip"
      ? gunzipSync(answer.response.body).toString()
      : answer.response.body.toString();
    assert.equal(text, GZIP_TEXT);
  });

  it("a malformed request gets a 4xx and the gateway keeps serving", async () => {
    const bad = await rawExchange(port, "THIS IS NOT HTTP\r\n\r\n");
    assert.ok(bad.status >= 400 && bad.status < 500, `status ${bad.status}`);
    const badHeader = await rawExchange(port, "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n");
    assert.ok(badHeader.status >= 400 && badHeader.status < 500, `status ${badHeader.status}`);
    const good = await ask(port);
    assert.equal(good.status, 200);
    assert.equal(good.body, "U");
  });
});

describe("upstream failures", () => {
  let hanging: HangingServer;
  let refusingPort = 0;
  let port = 0;
  before(async () => {
    hanging = await startHangingServer();
    refusingPort = await closedPort();
    const gw = await startGateway(`
[server]
read_timeout = "1s"

[upstreams.refused]
servers = ["127.0.0.1:${refusingPort}"]

[upstreams.silent]
servers = ["${hanging.address}"]
[upstreams.silent.sticky]

[[routes]]
path = "/refused"
upstream = "refused"

[[routes]]
path = "/silent"
upstream = "silent"
`);
    port = gw.port;
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("an upstream refusing connections → 502 with a short plain-text body saying so", async () => {
    const answer = await ask(port, { path: "/refused" });
    assert.equal(answer.status, 502);
    assert.match(header(answer.response, "content-type") ?? "", /^text\/plain/);
    assert.match(answer.body, /^502 Bad Gateway: .*refused the connection\n$/);
    assert.ok(answer.body.length < 200);
    assert.deepEqual(answer.setCookies, []);
  });

  it("an upstream that never answers, read_timeout = 1s → 504 after about a second, saying so", async () => {
    const start = Date.now();
    const answer = await ask(port, { path: "/silent", timeoutMs: 8000 });
    const elapsed = Date.now() - start;
    assert.equal(answer.status, 504);
    assert.match(header(answer.response, "content-type") ?? "", /^text\/plain/);
    assert.match(answer.body, /^504 Gateway Timeout: .*(did not answer in time|timed out)/);
    assert.ok(answer.body.length < 200);
    assert.deepEqual(answer.setCookies, [], "no cookie on the gateway's own 504");
    assert.ok(elapsed >= 900 && elapsed < 4000, `504 after ${elapsed} ms`);
    assert.ok(hanging.connections() >= 1, "the request did reach the silent upstream");
  });
});

describe("routes", () => {
  let port = 0;
  let x: NamedUpstream;
  let y: NamedUpstream;
  before(async () => {
    let z: NamedUpstream;
    [x, y, z] = [
      await startNamedUpstream("X"),
      await startNamedUpstream("Y"),
      await startNamedUpstream("Z"),
    ];
    port = (await startGateway(`
[upstreams.x]
servers = ["${x.address}"]
[upstreams.y]
servers = ["${y.address}"]
[upstreams.z]
servers = ["${z.address}"]

[[routes]]
path = "/"
upstream = "x"

[[routes]]
path = "/api"
upstream = "y"

[[routes]]
path = "/"
host = "admin.example.com"
upstream = "z"
`)).port;
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("the longest path prefix wins; a host route beats host-less ones (Host case and port ignored)", async () => {
    const cases: [host: string, path: string, expected: string][] = [
      ["www.example.com", "/", "X"],
      ["www.example.com", "/apix", "Y"],
      ["www.example.com", "/api/v1?q=1", "Y"],
      ["www.example.com", "/ap", "X"],
      ["Admin.Example.COM:8443", "/api/v1", "Z"],
      ["admin.example.com", "/", "Z"],
    ];
    for (const [host, path, expected] of cases) {
      const answer = await ask(port, { path, headers: [["Host", host]] });
      assert.equal(answer.servedBy, expected, `${host} ${path}`);
    }
  });

  it("routes match the path with dot segments resolved; the target goes upstream as sent", async () => {
    const cases: [path: string, expected: NamedUpstream][] = [
      ["/api/../admin", x],
      ["/api/%2e%2e/admin?q=1", x],
      ["/x/./../api/v1", y],
      ["/.well-known/a", x],
    ];
    for (const [path, upstream] of cases) {
      const before = upstream.requests.length;
      const answer = await ask(port, { path, headers: [["Host", "www.example.com"]] });
      assert.equal(answer.servedBy, upstream === x ? "X" : "Y", path);
      assert.equal(upstream.requests[before]?.url, path, "forwarded byte for byte");
    }
  });
});
