/**
 * TLS both ways, with certificates made by openssl at test time (tests/support/tls.ts):
 *
 * - `[server] tls`: HTTPS termination, stickiness and `secure` cookies over it, X-Forwarded-Proto
 *   https, HTTP/2 by ALPN (Deno: always with a certificate; Bun ≥ 1.4.1: `http2: true`, which the
 *   gateway sets with TLS), and HTTP/1.1 for clients that offer only that.
 * - `[upstreams.NAME] tls = true`: verification with `ca`, refusal (502 upstream_tls) without it
 *   or with the wrong CA, `insecure`, `sni`, a TLS upstream pointed at a plain port, pools kept
 *   apart from plain connections, and the cookie still computed from the address text; with
 *   each upstream client (`http1`, `fetch`).
 */
import { eventually } from "../support/realtime.ts";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  GATEWAY_RUNTIME,
  runGateway,
  startGateway,
  stopAllGateways,
  withEphemeralListen,
  writeTempFile,
} from "../support/gateway.ts";
import { ask, header, md5 } from "../support/http.ts";
import {
  closeAllUpstreams,
  type NamedUpstream,
  PATTERN,
  patternSha256,
  requestHeaderValues,
  startNamedUpstream,
} from "../support/upstreams.ts";
import {
  type Certificates,
  http2Get,
  http2Transfer,
  httpsGet,
  makeCertificates,
  startTlsUpstream,
  type TlsUpstream,
  values,
} from "../support/tls.ts";

/** A TOML string for a path. */
const toml = (text: string) => JSON.stringify(text);

describe("[server] tls: HTTPS termination", () => {
  let certs: Certificates;
  let A: NamedUpstream;
  let B: NamedUpstream;
  let C: NamedUpstream;
  let port = 0;
  let url = "";
  before(async () => {
    certs = makeCertificates();
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    C = await startNamedUpstream("C");
    const gw = await startGateway(`
[server]
tls = { cert = ${toml(certs.certFile)}, key = ${toml(certs.keyFile)} }

[upstreams.app]
servers = ["${A.address}", "${B.address}", "${C.address}"]
[upstreams.app.sticky]
secure = true
httponly = true
`);
    port = gw.port;
    url = gw.url;
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    certs?.remove();
  });

  it("announces an https:// address", () => {
    assert.equal(url, `https://127.0.0.1:${port}`);
  });

  it("balances new clients with a Secure cookie, which then pins them over HTTPS", async () => {
    const cookies: string[] = [];
    for (const u of [A, B, C]) {
      const answer = await httpsGet(port, { ca: certs.ca });
      assert.equal(answer.status, 200);
      assert.equal(answer.protocol, "http/1.1");
      assert.equal(answer.body, u.name);
      assert.deepEqual(values(answer, "set-cookie"), [
        `route=${md5(u.address)}; Path=/; Secure; HttpOnly`,
      ]);
      cookies.push(values(answer, "set-cookie")[0].split(";")[0]);
    }
    for (const [i, u] of [[2, C], [0, A], [1, B], [2, C]] as const) {
      const answer = await httpsGet(port, { ca: certs.ca, cookie: cookies[i] });
      assert.equal(answer.body, u.name);
      assert.deepEqual(values(answer, "set-cookie"), [], "a pinned client gets no new cookie");
    }
  });

  it("tells the upstream X-Forwarded-Proto: https and passes Host", async () => {
    const before = B.requests.length;
    const answer = await httpsGet(port, { ca: certs.ca, cookie: `route=${md5(B.address)}` });
    assert.equal(answer.body, "B");
    const seen = B.requests[before];
    assert.deepEqual(requestHeaderValues(seen, "x-forwarded-proto"), ["https"]);
    assert.deepEqual(requestHeaderValues(seen, "host"), [`127.0.0.1:${port}`]);
    assert.deepEqual(requestHeaderValues(seen, "x-forwarded-host"), [`127.0.0.1:${port}`]);
  });

  // README: Deno.serve offers h2 by ALPN whenever it has a certificate; Bun.serve does with
  // `http2: true` (Bun ≥ 1.4.1), which the gateway sets with TLS. So every way runs HTTP/2.
  it(`negotiates HTTP/2 by ALPN (${GATEWAY_RUNTIME}), sticky over one multiplexed connection`, async () => {
    const [first] = await http2Get(port, certs.ca, [{}]);
    assert.equal(first.protocol, "h2");
    assert.equal(first.status, 200);
    const setCookie = values(first, "set-cookie");
    assert.equal(setCookie.length, 1);
    const served = first.body;
    const upstream = served === "A" ? A : served === "B" ? B : C;
    assert.equal(setCookie[0], `route=${md5(upstream.address)}; Path=/; Secure; HttpOnly`);
    const cookie = setCookie[0].split(";")[0];
    const again = await http2Get(port, certs.ca, [{ cookie }, { cookie }, { cookie }]);
    for (const answer of again) {
      assert.equal(answer.protocol, "h2");
      assert.equal(answer.status, 200);
      assert.equal(answer.body, served, "the cookie pins HTTP/2 requests too");
      assert.deepEqual(values(answer, "set-cookie"), []);
    }
    // HTTP/2 has :authority instead of Host (Deno drops it): the upstream must still get Host.
    const last = upstream.requests.at(-1)!;
    assert.deepEqual(requestHeaderValues(last, "host"), [`127.0.0.1:${port}`]);
    assert.deepEqual(requestHeaderValues(last, "x-forwarded-proto"), ["https"]);
  });

  it("8 MiB down and up over HTTP/2, sha256 intact", async () => {
    const cookie = `route=${md5(C.address)}`;
    const total = 8 << 20;
    const down = await http2Transfer(port, certs.ca, {
      path: `/download?bytes=${total}`,
      cookie,
    });
    assert.equal(down.protocol, "h2");
    assert.equal(down.status, 200);
    assert.equal(down.bytes, total);
    assert.equal(down.sha256, patternSha256(total));
    const up = await http2Transfer(port, certs.ca, {
      method: "POST",
      path: "/upload",
      cookie,
      upload: Array.from({ length: 8 }, () => PATTERN),
    });
    assert.equal(up.status, 200, up.text);
    assert.deepEqual(JSON.parse(up.text), { bytes: total, sha256: patternSha256(total) });
  });

  it("a client that does not trust the certificate cannot connect", async () => {
    const other = makeCertificates();
    try {
      await assert.rejects(httpsGet(port, { ca: other.ca }));
    } finally {
      other.remove();
    }
  });
});

describe("[server] tls: bad files are config errors (exit 2)", () => {
  let certs: Certificates;
  before(() => {
    certs = makeCertificates();
  });
  after(async () => {
    await stopAllGateways();
    certs?.remove();
  });

  it("a missing certificate file names server.tls.cert", async () => {
    const file = writeTempFile(
      "missing-cert.toml",
      `[server]
tls = { cert = "/nonexistent/gw.pem", key = ${toml(certs.keyFile)} }

[upstreams.app]
servers = ["127.0.0.1:9001"]
`,
    );
    const result = await runGateway(["--config", file]);
    assert.equal(result.code, 2);
    assert.deepEqual(result.stderr.trim().split("\n"), [
      `${file}: server.tls.cert: cannot read "/nonexistent/gw.pem": no such file`,
    ]);
  });

  it("a key that is not the certificate's names server.tls.key", async () => {
    const file = writeTempFile(
      "wrong-key.toml",
      `[server]
tls = { cert = ${toml(certs.certFile)}, key = ${toml(certs.nameKeyFile)} }

[upstreams.app]
servers = ["127.0.0.1:9001"]
`,
    );
    const result = await runGateway(["--config", file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /: server\.tls\.key: ".*named\.key" is not the private key of/);
  });

  it("--check shows the certificate and each upstream's TLS", async () => {
    const file = writeTempFile(
      "check.toml",
      `[server]
tls = { cert = ${toml(certs.certFile)}, key = ${toml(certs.keyFile)} }

[upstreams.app]
servers = ["127.0.0.1:9443"]
tls = true
ca = ${toml(certs.caFile)}
sni = "app.internal"
[upstreams.app.sticky]
`,
    );
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`^tls cert ${certs.certFile}, key ${certs.keyFile}`, "m"),
    );
    assert.match(
      result.stdout,
      new RegExp(`^  https: certificate verified against ${certs.caFile}, sni app.internal$`, "m"),
    );
    // The cookie value is the address text's, TLS or not.
    assert.match(
      result.stdout,
      new RegExp(`127\\.0\\.0\\.1:9443 .*route=${md5("127.0.0.1:9443")}`),
    );
  });
});

for (const client of ["http1", "fetch"] as const) {
  // Deno's fetch can neither skip verification nor send an SNI other than the URL's host: with
  // it, insecure and sni are config errors (tested below), so those routes are left out.
  const denoFetch = client === "fetch" && GATEWAY_RUNTIME === "deno";

  describe(`[upstreams.NAME] tls = true, upstream_client = "${client}"`, () => {
    let certs: Certificates;
    let T1: TlsUpstream;
    let T2: TlsUpstream;
    let N: TlsUpstream;
    let P: NamedUpstream;
    let port = 0;
    let stderr: () => string = () => "";
    before(async () => {
      certs = makeCertificates();
      T1 = await startTlsUpstream("T1", certs.certFile, certs.keyFile);
      T2 = await startTlsUpstream("T2", certs.certFile, certs.keyFile);
      N = await startTlsUpstream("N", certs.nameCertFile, certs.nameKeyFile);
      P = await startNamedUpstream("P");
      const optional = denoFetch ? "" : `
[upstreams.insecure]
servers = ["${T1.address}"]
tls = true
insecure = true

[upstreams.named]
servers = ["${N.address}"]
tls = true
ca = ${toml(certs.caFile)}
sni = "app.internal"

[[routes]]
path = "/insecure"
upstream = "insecure"

[[routes]]
path = "/named"
upstream = "named"
`;
      const gw = await startGateway(`
[server]
upstream_client = "${client}"
connect_timeout = "2s"
read_timeout = "5s"

[upstreams.verified]
servers = ["${T1.address}", "${T2.address}"]
tls = true
ca = ${toml(certs.caFile)}
[upstreams.verified.sticky]

[upstreams.untrusted]
servers = ["${T1.address}"]
tls = true

[upstreams.wrongca]
servers = ["${T2.address}"]
tls = true
ca = ${toml(certs.otherCaFile)}

[upstreams.nosni]
servers = ["${N.address}"]
tls = true
ca = ${toml(certs.caFile)}

[upstreams.plainport]
servers = ["${P.address}"]
tls = true
ca = ${toml(certs.caFile)}

[upstreams.plain]
servers = ["${T1.address}"]

[[routes]]
path = "/"
upstream = "verified"

[[routes]]
path = "/untrusted"
upstream = "untrusted"

[[routes]]
path = "/wrongca"
upstream = "wrongca"

[[routes]]
path = "/nosni"
upstream = "nosni"

[[routes]]
path = "/plainport"
upstream = "plainport"

[[routes]]
path = "/plain"
upstream = "plain"
${optional}`);
      port = gw.port;
      stderr = gw.stderr;
    });
    after(async () => {
      await stopAllGateways();
      await closeAllUpstreams();
      await Promise.all([T1, T2, N].map((u) => u?.close()));
      certs?.remove();
    });

    it("verifies with ca; stickiness works; the cookie is the address text's", async () => {
      const served: string[] = [];
      for (const u of [T1, T2]) {
        const answer = await ask(port);
        assert.equal(answer.status, 200, answer.body);
        served.push(answer.body);
        // Same value as for a plain server at that address: migration compatibility.
        assert.deepEqual(answer.sticky, [`route=${md5(u.address)}; Path=/`]);
        assert.deepEqual(answer.setCookies.slice(1), [`upstream=${u.name}; Path=/`]);
      }
      assert.deepEqual(served, ["T1", "T2"]);
      for (const u of [T2, T1, T2]) {
        const answer = await ask(port, { cookies: [`route=${md5(u.address)}`] });
        assert.equal(answer.body, u.name);
        assert.deepEqual(answer.sticky, []);
      }
      const seen = T2.requests.at(-1)!;
      assert.deepEqual(requestHeaderValues(seen, "x-forwarded-proto"), ["http"]);
      assert.deepEqual(requestHeaderValues(seen, "host"), [`127.0.0.1:${port}`]);
    });

    it("a certificate not signed by a trusted CA: 502 upstream_tls (no ca, or another ca)", async () => {
      for (const path of ["/untrusted", "/wrongca"]) {
        const answer = await ask(port, { path });
        assert.equal(answer.status, 502, `${path}: ${answer.body}`);
        assert.equal(header(answer.response, "x-gateway-error"), "upstream_tls", path);
        assert.equal(answer.servedBy, undefined);
      }
      // The structured event (stderr, written soon after the answer).
      const event = /"event":"upstream_error".*"address":"127\.0\.0\.1:\d+","code":"upstream_tls"/;
      await eventually(() => event.test(stderr()), 2000, "the upstream_error event");
    });

    it("a certificate for another name (address is an IP, no sni): 502 upstream_tls", async () => {
      const answer = await ask(port, { path: "/nosni" });
      assert.equal(answer.status, 502, answer.body);
      assert.equal(header(answer.response, "x-gateway-error"), "upstream_tls");
    });

    it("tls = true on a plain HTTP port: 502 upstream_tls", async () => {
      const answer = await ask(port, { path: "/plainport" });
      assert.equal(answer.status, 502, answer.body);
      assert.equal(header(answer.response, "x-gateway-error"), "upstream_tls");
    });

    it("a plain upstream on a TLS server's address never gets a pooled TLS connection", async () => {
      // The verified upstream has just left kept-alive TLS connections to T1 in the pool.
      assert.equal((await ask(port, { cookies: [`route=${md5(T1.address)}`] })).body, "T1");
      const answer = await ask(port, { path: "/plain" });
      assert.notEqual(answer.status, 200, "plain HTTP reached a TLS port and got an answer");
      assert.equal(answer.servedBy, undefined);
    });

    it(
      denoFetch
        ? "insecure = true: not possible with Deno's fetch (see the config-error test)"
        : "insecure = true: an untrusted certificate is accepted",
      { skip: denoFetch },
      async () => {
        const answer = await ask(port, { path: "/insecure" });
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.body, "T1");
      },
    );

    it(
      denoFetch
        ? "sni: not possible with Deno's fetch (see the config-error test)"
        : "sni: the name is sent and checked, so an IP address reaches a name-only certificate",
      { skip: denoFetch },
      async () => {
        const answer = await ask(port, { path: "/named" });
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.body, "N");
      },
    );
  });
}

describe(`upstream TLS options the runtime's fetch cannot honour (${GATEWAY_RUNTIME})`, () => {
  after(stopAllGateways);

  it(
    GATEWAY_RUNTIME === "deno"
      ? `Deno: insecure and sni with upstream_client = "fetch" exit 2, naming the keys`
      : `Bun: insecure and sni work with upstream_client = "fetch" (the gateway starts)`,
    async () => {
      const config = `[server]
upstream_client = "fetch"

[upstreams.app]
servers = ["127.0.0.1:9443"]
tls = true
insecure = true

[upstreams.named]
servers = ["127.0.0.1:9444"]
tls = true
sni = "app.internal"

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/named"
upstream = "named"
`;
      if (GATEWAY_RUNTIME === "deno") {
        const file = writeTempFile("deno-fetch-tls.toml", withEphemeralListen(config));
        const result = await runGateway(["--config", file]);
        assert.equal(result.code, 2, result.stderr);
        const lines = result.stderr.trim().split("\n");
        assert.equal(lines.length, 2, result.stderr);
        assert.match(
          lines[0],
          new RegExp(
            `^${file}: upstreams\\.app\\.insecure: true is not possible with Deno's fetch`,
          ),
        );
        assert.match(
          lines[1],
          new RegExp(`^${file}: upstreams\\.named\\.sni: is not possible with Deno's fetch`),
        );
      } else {
        // It starts (startGateway waits for the listening line); requests are covered above.
        const gw = await startGateway(config);
        assert.match(gw.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      }
    },
  );
});
