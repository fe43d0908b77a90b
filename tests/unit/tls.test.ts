/**
 * Upstream TLS below the end-to-end level: the HTTP/1.1 client over `connectTlsSocket` (node:tls
 * on both runtimes) against a real HTTPS server, its pool kept apart from plain connections,
 * handshake failures told apart from refused connections; the fetch-TLS config check; the Host
 * an HTTP/2 request gets from its authority; the error mapping of fetch's TLS failures.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { parseConfig, type Server, type UpstreamTls } from "../../src/config/mod.ts";
import { toUpstreamError, UpstreamError } from "../../src/proxy/errors.ts";
import { unsupportedFetchTls } from "../../src/proxy/fetch.ts";
import { upstreamRequestHeaders } from "../../src/proxy/headers.ts";
import type { ClientInfo, Connect } from "../../src/runtime/contracts.ts";
import { Http1Transport } from "../../src/proxy/http1.ts";
import type { UpstreamRequest } from "../../src/proxy/transport.ts";
import { connectNodeSocket } from "../../src/runtime/shared/node_socket.ts";
import { connectTlsSocket } from "../../src/runtime/shared/tls.ts";
import {
  type Certificates,
  makeCertificates,
  startTlsUpstream,
  type TlsUpstream,
} from "../support/tls.ts";

const LIMITS = { connectTimeoutMs: 2000, readTimeoutMs: 5000 };
const GET: UpstreamRequest = {
  method: "GET",
  target: "/",
  headers: [["host", "test"]],
  body: null,
};

function tlsOptions(options: Partial<UpstreamTls> = {}): UpstreamTls {
  const insecure = options.insecure ?? false;
  return {
    insecure,
    ...options,
    poolKey: `tls ${insecure} ${options.sni ?? ""} ${options.caFile ?? ""} `,
  };
}

function server(port: number, tls?: UpstreamTls): Server {
  const text = `127.0.0.1:${port}`;
  return {
    index: 0,
    id: text,
    address: { text, host: "127.0.0.1", port },
    weight: 1,
    maxFails: 1,
    failTimeoutMs: 10_000,
    backup: false,
    state: "ready",
    down: false,
    cookieValue: "",
    ...(tls === undefined ? {} : { tls }),
  };
}

/** The client as the runtime seam wires it: TLS through node:tls, plain through node:net. */
const connect: Connect = (host, port, tls) =>
  tls === undefined ? connectNodeSocket(host, port) : connectTlsSocket(host, port, tls);

async function text(body: ReadableStream<Uint8Array> | Uint8Array | null): Promise<string> {
  if (body === null) return "";
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  return await new Response(body).text();
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UpstreamError, `not an UpstreamError: ${error}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe("HTTP/1.1 client over TLS (node:tls)", () => {
  let certs: Certificates;
  let T: TlsUpstream;
  let named: TlsUpstream;
  let plain: NetServer;
  let plainPort = 0;
  const plainSockets = new Set<Socket>();
  before(async () => {
    certs = makeCertificates();
    T = await startTlsUpstream("T", certs.certFile, certs.keyFile);
    named = await startTlsUpstream("N", certs.nameCertFile, certs.nameKeyFile);
    // A plain HTTP/1.1 server that answers anything with "plain".
    plain = createServer((socket) => {
      plainSockets.add(socket);
      socket.on("error", () => {});
      socket.on(
        "data",
        () =>
          socket.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nplain"),
      );
    });
    plainPort = await new Promise<number>((resolve) =>
      plain.listen(0, "127.0.0.1", () => resolve((plain.address() as AddressInfo).port))
    );
  });
  after(async () => {
    await Promise.all([T?.close(), named?.close()]);
    for (const socket of plainSockets) socket.destroy();
    await new Promise<void>((resolve) => plain.close(() => resolve()));
    certs?.remove();
  });

  it("verifies against ca, answers, and keeps the connection for the next request", async () => {
    const transport = new Http1Transport(connect);
    const target = server(T.port, tlsOptions({ ca: certs.ca, caFile: certs.caFile }));
    const before = T.connections();
    for (let i = 0; i < 3; i++) {
      const response = await transport.send(target, GET, LIMITS);
      assert.equal(response.status, 200);
      assert.equal(await text(response.body), "T");
    }
    assert.equal(T.connections() - before, 1, "one TLS connection, kept alive");
    assert.equal(transport.idleCount(), 1);
    transport.close();
  });

  it("keeps TLS and plain connections to one address apart", async () => {
    const transport = new Http1Transport(connect);
    const address = T.port;
    const secure = server(address, tlsOptions({ ca: certs.ca, caFile: certs.caFile }));
    assert.equal(await text((await transport.send(secure, GET, LIMITS)).body), "T");
    assert.equal(transport.idleCount(), 1);
    // Plain HTTP to the TLS port must open its own connection (which the TLS server rejects),
    // not borrow the idle TLS one.
    await assert.rejects(transport.send(server(address), GET, LIMITS));
    assert.equal(transport.idleCount(), 1, "the TLS connection is still idle, unused");
    // And settings differ → a separate pool too: insecure does not reuse a verified connection.
    const before = T.connections();
    const insecure = server(address, tlsOptions({ insecure: true }));
    assert.equal(await text((await transport.send(insecure, GET, LIMITS)).body), "T");
    assert.equal(T.connections() - before, 1);
    assert.equal(transport.idleCount(), 2);
    transport.close();
  });

  it("an untrusted certificate is upstream_tls (a refused port stays connect_refused)", async () => {
    const transport = new Http1Transport(connect);
    const error = await rejectsWith(
      transport.send(server(T.port, tlsOptions()), GET, LIMITS),
      "upstream_tls",
    );
    assert.match(error.message, /^the TLS handshake with the upstream server failed: /);
    const other = makeCertificates();
    try {
      await rejectsWith(
        transport.send(
          server(T.port, tlsOptions({ ca: other.ca, caFile: other.caFile })),
          GET,
          LIMITS,
        ),
        "upstream_tls",
      );
    } finally {
      other.remove();
    }
    // A port nobody listens on: the TCP connect fails before any TLS.
    const closed = createServer();
    const port = await new Promise<number>((resolve) =>
      closed.listen(0, "127.0.0.1", () => resolve((closed.address() as AddressInfo).port))
    );
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await rejectsWith(transport.send(server(port, tlsOptions()), GET, LIMITS), "connect_refused");
    transport.close();
  });

  it("insecure accepts any certificate", async () => {
    const transport = new Http1Transport(connect);
    const response = await transport.send(
      server(T.port, tlsOptions({ insecure: true })),
      GET,
      LIMITS,
    );
    assert.equal(await text(response.body), "T");
    transport.close();
  });

  it("sni names the certificate to check when the address is an IP", async () => {
    const transport = new Http1Transport(connect);
    const ca = { ca: certs.ca, caFile: certs.caFile };
    await rejectsWith(
      transport.send(server(named.port, tlsOptions(ca)), GET, LIMITS),
      "upstream_tls",
    );
    const ok = await transport.send(
      server(named.port, tlsOptions({ ...ca, sni: "app.internal" })),
      GET,
      LIMITS,
    );
    assert.equal(await text(ok.body), "N");
    await rejectsWith(
      transport.send(server(named.port, tlsOptions({ ...ca, sni: "other.internal" })), GET, LIMITS),
      "upstream_tls",
    );
    transport.close();
  });

  it("TLS spoken to a plain HTTP port is upstream_tls", async () => {
    const transport = new Http1Transport(connect);
    await rejectsWith(
      transport.send(
        server(plainPort, tlsOptions({ ca: certs.ca, caFile: certs.caFile })),
        GET,
        LIMITS,
      ),
      "upstream_tls",
    );
    transport.close();
  });
});

describe("fetch TLS limits are config errors at start", () => {
  const config = parseConfig(`
[upstreams.a]
servers = ["127.0.0.1:9001"]
tls = true
insecure = true

[upstreams.b]
servers = ["127.0.0.1:9002"]
tls = true
sni = "b.example"

[upstreams.c]
servers = ["127.0.0.1:9003"]

[[routes]]
path = "/"
upstream = "a"

[[routes]]
path = "/b"
upstream = "b"

[[routes]]
path = "/c"
upstream = "c"
`);

  it("names each key the runtime's fetch cannot honour, with its reason", () => {
    const problems = unsupportedFetchTls(config, {
      init: {},
      decompresses: true,
      tlsUnsupported: { insecure: "no insecure here", sni: "no sni here" },
    });
    assert.deepEqual(problems, [
      { path: "upstreams.a.insecure", message: "no insecure here" },
      { path: "upstreams.b.sni", message: "no sni here" },
    ]);
  });

  it("nothing when the runtime's fetch can do it all (Bun)", () => {
    assert.deepEqual(unsupportedFetchTls(config, { init: {}, decompresses: false }), []);
  });
});

describe("HTTP/2 requests without Host", () => {
  const CLIENT: ClientInfo = { remoteAddress: "192.0.2.7", protocol: "https" };

  it("get Host (first) and X-Forwarded-Host from the authority", () => {
    const out = upstreamRequestHeaders(new Headers({ accept: "*/*" }), CLIENT, "app.example:8443");
    assert.deepEqual(out, [
      ["host", "app.example:8443"],
      ["accept", "*/*"],
      ["x-forwarded-for", "192.0.2.7"],
      ["x-forwarded-proto", "https"],
      ["x-forwarded-host", "app.example:8443"],
    ]);
  });

  it("a Host header wins over the authority", () => {
    const out = upstreamRequestHeaders(new Headers({ host: "h.example" }), CLIENT, "other:1");
    assert.deepEqual(out.filter(([n]) => n === "host"), [["host", "h.example"]]);
  });
});

describe("fetch's TLS failures map to upstream_tls", () => {
  it("Deno's and Bun's messages", () => {
    const deno = new TypeError("fetch failed", {
      cause: new Error(
        "error sending request for url (https://127.0.0.1:1/): client error (Connect): invalid peer certificate: UnknownIssuer",
      ),
    });
    assert.equal(toUpstreamError(deno, "connect").code, "upstream_tls");
    const bun = Object.assign(new TypeError("unable to verify the first certificate"), {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
    assert.equal(toUpstreamError(bun, "connect").code, "upstream_tls");
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
      code: "ECONNREFUSED",
    });
    assert.equal(toUpstreamError(refused, "connect").code, "connect_refused");
  });
});
