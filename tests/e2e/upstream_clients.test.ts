/**
 * The key proxy behaviours with each upstream client set explicitly (`upstream_client = "http1"`
 * and `"fetch"`), so both are covered on each runtime: stickiness, streaming both ways,
 * hop-by-hop headers, Host/X-Forwarded-*, Set-Cookie lines, gzip, 502 with retry, 504.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { GATEWAY_RUNTIME, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, header, headerValues, md5 } from "../support/http.ts";
import { streamedDownload, streamedUpload } from "../support/streams.ts";
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

for (const client of ["http1", "fetch"] as const) {
  describe(`upstream_client = "${client}"`, () => {
    let A: NamedUpstream;
    let B: NamedUpstream;
    let C: NamedUpstream;
    let hanging: HangingServer;
    let refusing = "";
    let port = 0;
    let url = "";
    before(async () => {
      A = await startNamedUpstream("A");
      B = await startNamedUpstream("B");
      C = await startNamedUpstream("C");
      hanging = await startHangingServer();
      refusing = `127.0.0.1:${await closedPort()}`;
      const gw = await startGateway(`
[server]
upstream_client = "${client}"
connect_timeout = "1s"
read_timeout = "1s"

[upstreams.app]
servers = ["${A.address}", "${B.address}", "${C.address}"]
[upstreams.app.sticky]

[upstreams.retry]
servers = ["${refusing}", "${B.address}"]
[upstreams.retry.sticky]

[upstreams.dead]
servers = ["${refusing}"]

[upstreams.silent]
servers = ["${hanging.address}"]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/retry"
upstream = "retry"

[[routes]]
path = "/dead"
upstream = "dead"

[[routes]]
path = "/silent"
upstream = "silent"
`);
      port = gw.port;
      url = gw.url;
    });
    after(async () => {
      await stopAllGateways();
      await closeAllUpstreams();
    });

    it("stickiness: new clients round robin with a Set-Cookie each; a cookie pins with none", async () => {
      const served: string[] = [];
      for (const u of [A, B, C]) {
        const answer = await ask(port);
        served.push(answer.body);
        assert.deepEqual(answer.sticky, [`route=${md5(u.address)}; Path=/`]);
      }
      assert.deepEqual(served, ["A", "B", "C"]);
      for (const u of [C, A, B]) {
        const answer = await ask(port, { cookies: [`route=${md5(u.address)}`] });
        assert.equal(answer.body, u.name);
        assert.deepEqual(answer.setCookies, []);
      }
    });

    it("16 MiB download and chunked upload stream through, sha256 intact", async () => {
      const cookie = `route=${md5(B.address)}`;
      const down = await streamedDownload(url, B, 16, cookie);
      assert.equal(down.bytes, 16 << 20);
      assert.equal(down.sha256, down.expectedSha256);
      const up = await streamedUpload(url, B, 16, cookie);
      assert.equal(up.bytes, 16 << 20);
      assert.equal(up.sha256, up.expectedSha256);
    });

    it("hop-by-hop headers are stripped both ways; Host and X-Forwarded-* are right", async () => {
      const cookie = `route=${md5(A.address)}`;
      const before = A.requests.length;
      const answer = await ask(port, {
        path: "/hop",
        cookies: [cookie],
        headers: [
          ["Host", "shop.example:8080"],
          ["Connection", "keep-alive, X-Client-Hop"],
          ["X-Client-Hop", "no"],
          ["Keep-Alive", "timeout=7"],
          ["Proxy-Connection", "keep-alive"],
          ["TE", "trailers"],
          ["Proxy-Authorization", "Basic eDp5"],
          ["X-Forwarded-For", "198.51.100.1"],
          ["X-End-To-End", "kept"],
        ],
      });
      assert.equal(answer.status, 200);
      assert.equal(A.requests.length, before + 1);
      const seen = A.requests[before];
      for (const name of ["x-client-hop", "proxy-connection", "te", "proxy-authorization"]) {
        assert.deepEqual(requestHeaderValues(seen, name), [], `${name} reached the upstream`);
      }
      assert.ok(
        !requestHeaderValues(seen, "keep-alive").includes("timeout=7"),
        "the client's Keep-Alive reached the upstream",
      );
      for (const value of requestHeaderValues(seen, "connection")) {
        assert.doesNotMatch(value, /x-client-hop/i);
      }
      assert.deepEqual(requestHeaderValues(seen, "x-end-to-end"), ["kept"]);
      assert.deepEqual(requestHeaderValues(seen, "host"), ["shop.example:8080"]);
      assert.deepEqual(requestHeaderValues(seen, "x-forwarded-for"), ["198.51.100.1, 127.0.0.1"]);
      assert.deepEqual(requestHeaderValues(seen, "x-forwarded-host"), ["shop.example:8080"]);
      assert.deepEqual(requestHeaderValues(seen, "x-forwarded-proto"), ["http"]);

      const got = answer.response.headers.map(([n]) => n.toLowerCase());
      for (
        const name of [
          "x-upstream-hop",
          "proxy-connection",
          "trailer",
          "upgrade",
          "proxy-authenticate",
        ]
      ) {
        assert.ok(!got.includes(name), `${name} reached the client`);
      }
      assert.ok(
        !headerValues(answer.response, "keep-alive").includes("timeout=5, max=100"),
        "the upstream's Keep-Alive reached the client",
      );
      assert.equal(header(answer.response, "x-end-to-end"), "kept");
    });

    it("the upstream's Set-Cookie lines stay separate; its sticky-name ones are dropped", async () => {
      const answer = await ask(port, { path: "/set-cookie", cookies: [`route=${md5(C.address)}`] });
      assert.equal(answer.body, "C");
      assert.deepEqual(answer.setCookies, [
        "session=s1; Path=/; HttpOnly",
        "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
      ]);
    });

    it("gzip from the upstream", async () => {
      const answer = await ask(port, { path: "/gzip", headers: [["Accept-Encoding", "gzip"]] });
      assert.equal(answer.status, 200);
      const encoding = header(answer.response, "content-encoding");
      if (client === "fetch" && GATEWAY_RUNTIME === "deno") {
        // Deno's fetch always decompresses, so this client asks upstreams for identity: the body
        // must be right and must not claim an encoding it does not have.
        const text = encoding === "gzip"
          ? gunzipSync(answer.response.body).toString()
          : answer.response.body.toString();
        assert.equal(text, GZIP_TEXT);
        assert.ok(
          encoding === undefined || encoding === "gzip" || encoding === "identity",
          `Content-Encoding: ${encoding}`,
        );
        const length = header(answer.response, "content-length");
        if (length !== undefined) assert.equal(Number(length), answer.response.body.length);
      } else {
        assert.equal(encoding, "gzip");
        assert.ok(
          Buffer.compare(answer.response.body, GZIP_BODY) === 0,
          "the upstream's gzip bytes, byte-exact",
        );
      }
    });

    it("a refusing server: a request without a body is retried on the next (cookie names it); alone → 502", async () => {
      const retried = await ask(port, { path: "/retry", cookies: [`route=${md5(refusing)}`] });
      assert.equal(retried.status, 200);
      assert.equal(retried.body, "B");
      assert.deepEqual(retried.sticky, [`route=${md5(B.address)}; Path=/`]);
      const dead = await ask(port, { path: "/dead" });
      assert.equal(dead.status, 502);
      assert.match(dead.body, /^502 Bad Gateway: .*refused/);
    });

    it("an upstream that never answers → 504", async () => {
      const start = Date.now();
      const answer = await ask(port, { path: "/silent", timeoutMs: 8000 });
      assert.equal(answer.status, 504);
      assert.match(answer.body, /^504 Gateway Timeout: /);
      assert.ok(Date.now() - start < 5000);
    });
  });
}
