/**
 * The TLS listener beyond content (tls.test.ts) and lengths (content_length.test.ts): on Bun it
 * is the gateway's own server on `node:http2` (src/runtime/bun/tls_server.ts), on Deno
 * `Deno.serve`. Both must:
 *
 * - run wss sessions: client pings answered, close codes both ways, a refused handshake answered
 *   with the upstream's status and body, then the connection closed;
 * - cancel the upstream's response when the client goes away mid-download (HTTP/2 stream reset,
 *   HTTP/1.1 connection dropped): the upstream connection is closed, not left stalled;
 * - refuse what TLS listeners refuse (two Host headers, a GET declaring a body) with 400;
 * - on SIGTERM, finish a download in flight whole while idle connections go at once.
 *
 * Bun only (the gateway's own connection sweep; Deno.serve has no such settings): the upstream's
 * pings relayed to a wss client, `keepalive_timeout` closing idle HTTP/1.1 connections and HTTP/2
 * sessions, `client_header_timeout` closing a connection that never sends a request.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { connect as http2Connect } from "node:http2";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import {
  GATEWAY_RUNTIME,
  sleep,
  startGateway,
  stopAllGateways,
  withTimeout,
} from "../support/gateway.ts";
import { header } from "../support/http.ts";
import { splitResponses } from "../support/raw_client.ts";
import { type RecordingUpstream, startRecordingUpstream } from "../support/recording_upstream.ts";
import { eventually } from "../support/realtime.ts";
import { type Certificates, http2Transfer, makeCertificates } from "../support/tls.ts";
import {
  closeAllUpstreams,
  type NamedUpstream,
  nextEvent,
  patternSha256,
  type RecordedRequest,
  startNamedUpstream,
} from "../support/upstreams.ts";
import {
  startWsUpstreams,
  stopAllNodeUpstreams,
  type WsUpstreams,
} from "../support/node_upstreams.ts";
import { rawWebSocket } from "../support/ws_client.ts";

const onBun = GATEWAY_RUNTIME === "bun";

/** A TLS connection (ALPN http/1.1) that trusts `ca`, connected. */
function tlsSocket(port: number, ca: string): Promise<TLSSocket> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, ca, ALPNProtocols: ["http/1.1"] });
      socket.once("secureConnect", () => resolve(socket));
      socket.once("error", reject);
    }),
    5000,
    "TLS connect",
  );
}

/** Sends `text` on a new TLS connection; what came back once the gateway closed (or `ms`). */
async function tlsConverse(port: number, ca: string, text: string, ms = 5000) {
  const socket = await tlsSocket(port, ca);
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => {});
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.write(Buffer.from(text, "latin1"));
  });
  socket.destroy();
  return { closed, ...splitResponses(Buffer.concat(chunks), [], closed) };
}

/** GET `path` over TLS (HTTP/1.1), hashing a Content-Length body as it streams. */
async function http1Transfer(port: number, ca: string, path: string) {
  const socket = await tlsSocket(port, ca);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  return await withTimeout(
    new Promise<{ status: number; bytes: number; sha256: string }>((resolve, reject) => {
      let head = Buffer.alloc(0);
      let status = 0;
      let length = -1;
      let bytes = 0;
      const hash = createHash("sha256");
      const take = (body: Buffer) => {
        bytes += body.length;
        hash.update(body);
        if (bytes < length) return;
        socket.destroy();
        resolve({ status, bytes, sha256: hash.digest("hex") });
      };
      socket.on("data", (chunk: Buffer) => {
        if (length >= 0) return take(chunk);
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        const text = head.subarray(0, end).toString("latin1");
        status = Number(text.slice(9, 12));
        length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
        take(head.subarray(end + 4));
      });
      socket.on("error", reject);
      socket.on("close", () => reject(new Error(`closed after ${bytes} body bytes`)));
    }),
    20_000,
    `GET ${path}`,
  );
}

/** Resolves once `socket` is closed by the other side; rejects after `ms`. */
function closedWithin(socket: { once(event: "close", f: () => void): unknown }, ms: number) {
  return withTimeout(new Promise<void>((resolve) => socket.once("close", resolve)), ms, "close");
}

const tlsConfig = (certs: Certificates, extra = "") =>
  `[server]\ntls = { cert = ${JSON.stringify(certs.certFile)}, key = ${
    JSON.stringify(certs.keyFile)
  } }\n${extra}\n`;

describe(`TLS listener (${GATEWAY_RUNTIME}): WebSockets, aborts, refusals`, () => {
  let certs: Certificates;
  let ws: WsUpstreams;
  let U: RecordingUpstream;
  let port = 0;
  before(async () => {
    certs = makeCertificates();
    ws = await startWsUpstreams(["A"]);
    U = await startRecordingUpstream();
    port = (await startGateway(`${tlsConfig(certs)}
[upstreams.ws]
servers = ["${ws.address("A")}"]

[upstreams.rec]
servers = ["${U.address}"]

[[routes]]
path = "/length"
upstream = "rec"

[[routes]]
path = "/"
upstream = "ws"
`)).port;
  });
  after(async () => {
    await stopAllGateways();
    await stopAllNodeUpstreams();
    await U?.close();
    certs?.remove();
  });

  it("wss: a client ping is answered; close codes pass both ways", async () => {
    const raw = await rawWebSocket(port, { ca: certs.ca });
    assert.equal(raw.status, 101);
    raw.ping("tls-ping");
    const pong = await raw.next();
    assert.equal(pong.type, "pong");
    assert.equal(Buffer.from((pong as { data: Uint8Array }).data).toString(), "tls-ping");
    raw.send("whoami");
    assert.equal(await raw.nextText(), "A");
    // The client closes: the upstream sees its code and reason.
    const before = ws.lines.length;
    raw.close(4001, "client done");
    const seen = await ws.waitFor(
      (l) => l.event === "close" && ws.lines.indexOf(l) >= before,
      5000,
      "upstream close",
    );
    assert.deepEqual([seen.code, seen.reason], [4001, "client done"]);
    await withTimeout(raw.ended, 5000, "the gateway ends the client's connection");
    // The upstream closes: the client gets its code and reason.
    const other = await rawWebSocket(port, { ca: certs.ca });
    other.send("close 4002 upstream done");
    const frame = await other.next();
    assert.equal(frame.type, "close");
    const close = frame as { code: number; reason: string };
    assert.deepEqual([close.code, close.reason], [4002, "upstream done"]);
  });

  it(
    "wss: the upstream's pings reach the client (the gateway's own WebSocket end)",
    async () => {
      const raw = await rawWebSocket(port, { ca: certs.ca });
      raw.send("ping heartbeat-tls");
      const frame = await raw.next();
      assert.equal(frame.type, "ping");
      assert.equal(Buffer.from((frame as { data: Uint8Array }).data).toString(), "heartbeat-tls");
      raw.destroy();
    },
  );

  it("wss: an upstream refusing the handshake: the client gets its status, headers and body", async () => {
    const raw = await rawWebSocket(port, { ca: certs.ca, path: "/refuse" });
    assert.equal(raw.status, 403);
    assert.equal(raw.body.toString(), "refused by A");
    assert.equal(header(raw, "x-upstream"), "A");
  });

  it("a client resetting an HTTP/2 download midway: the upstream connection is closed", async () => {
    const before = U.connections.length;
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca: certs.ca });
    session.on("error", () => {});
    const stream = session.request({ ":path": `/length/${1 << 30}` });
    stream.on("error", () => {});
    await withTimeout(
      new Promise<void>((resolve) => {
        let bytes = 0;
        stream.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes >= 1 << 20) resolve();
        });
      }),
      10_000,
      "the first MiB",
    );
    stream.close(0x8); // CANCEL
    await eventually(
      () => U.connections.length > before && U.connections.at(-1)!.closed,
      5000,
      "the upstream connection closed after the client's reset",
    );
    session.destroy();
  });

  it("a client dropping an HTTP/1.1 download midway: the upstream connection is closed", async () => {
    const before = U.connections.length;
    const socket = await tlsSocket(port, certs.ca);
    socket.on("error", () => {});
    socket.write(`GET /length/${1 << 30} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await withTimeout(
      new Promise<void>((resolve) => {
        let bytes = 0;
        socket.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes >= 1 << 20) resolve();
        });
      }),
      10_000,
      "the first MiB",
    );
    socket.destroy();
    await eventually(
      () => U.connections.length > before && U.connections.at(-1)!.closed,
      5000,
      "the upstream connection closed after the client left",
    );
  });

  // Without a declared length it may: Bun (1.4.5) reports a client's RST_STREAM on a request
  // body as its end first, and as aborted only up to milliseconds later (README, TLS).
  it("a client resetting an HTTP/2 upload of declared length midway: the upstream never gets it whole", async () => {
    const before = U.connections.length;
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca: certs.ca });
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/length/cut",
      "content-length": String(1 << 20),
    });
    stream.on("error", () => {});
    await withTimeout(
      new Promise((resolve) => stream.write(Buffer.alloc(256 << 10, 1), resolve)),
      5000,
      "the upload written",
    );
    await eventually(
      () => U.connections.length > before && U.connections.at(-1)!.bytes().length > 256 << 10,
      5000,
      "the upload's bytes at the upstream",
    );
    stream.close(0x8); // CANCEL
    await eventually(
      () => U.connections.at(-1)!.closed,
      5000,
      "the upstream connection closed after the client's reset",
    );
    assert.deepEqual(U.requests().filter((r) => r.target === "/length/cut"), []);
    session.destroy();
  });

  it(
    "two Host headers, or a GET declaring a body: 400 bad_request over TLS, connection closed",
    async () => {
      for (
        const request of [
          `GET /length/5 HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n`,
          `GET /length/5 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello`,
        ]
      ) {
        const talk = await tlsConverse(port, certs.ca, request, 5000);
        assert.equal(talk.responses.length, 1, `${JSON.stringify(request)}: ${talk.rest}`);
        assert.equal(talk.responses[0].status, 400, request);
        assert.equal(talk.closed, true, `${JSON.stringify(request)}: connection left open`);
      }
    },
  );
});

describe(`TLS listener (${GATEWAY_RUNTIME}): stopping`, () => {
  let certs: Certificates;
  let N: NamedUpstream;
  before(async () => {
    certs = makeCertificates();
    N = await startNamedUpstream("N");
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    certs?.remove();
  });

  for (const protocol of ["http/1.1", "h2"] as const) {
    // (Deno.serve alone cut an HTTP/2 response in flight at shutdown; the Deno listener now waits
    // for the responses in flight before it shuts its loopback HTTP/2 server down.)
    it(
      `SIGTERM: a download in flight over ${protocol} completes whole; an idle connection is closed; exit 0`,
      async () => {
        const gw = await startGateway(`${tlsConfig(certs)}
[upstreams.app]
servers = ["${N.address}"]
`);
        const idle = await tlsSocket(gw.port, certs.ca);
        idle.on("error", () => {});
        idle.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`);
        await withTimeout(
          new Promise((resolve) => idle.once("data", resolve)),
          5000,
          "the idle connection's answer",
        );
        const total = 4 << 20;
        const path = `/download?bytes=${total}&hold=1`;
        const arrived = nextEvent<RecordedRequest>(N.events, "request", 5000);
        const download = protocol === "h2"
          ? http2Transfer(gw.port, certs.ca, { path })
          : http1Transfer(gw.port, certs.ca, path);
        await arrived;
        const idleClosed = closedWithin(idle, 5000);
        const exit = gw.stop("SIGTERM", 10_000);
        await idleClosed;
        // The download is still held by the upstream: it goes on once released.
        await sleep(200);
        N.release();
        const got = await download;
        assert.equal(got.status, 200);
        assert.equal(got.bytes, total);
        assert.equal(got.sha256, patternSha256(total));
        assert.equal(await exit, 0, gw.stderr());
      },
    );
  }
});

describe(`TLS listener (${GATEWAY_RUNTIME}): connection timeouts`, () => {
  let certs: Certificates;
  let N: NamedUpstream;
  before(async () => {
    certs = makeCertificates();
    N = await startNamedUpstream("N");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    certs?.remove();
  });

  it(
    onBun
      ? "keepalive_timeout closes idle HTTP/1.1 connections and HTTP/2 sessions"
      : "keepalive_timeout closes idle HTTP/1.1 connections (Deno: not HTTP/2 sessions, served by a loopback Deno.serve)",
    async () => {
      const gw = await startGateway(`${tlsConfig(certs, `keepalive_timeout = "1s"`)}
[upstreams.app]
servers = ["${N.address}"]
`);
      const socket = await tlsSocket(gw.port, certs.ca);
      socket.on("error", () => {});
      socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`);
      await withTimeout(new Promise((resolve) => socket.once("data", resolve)), 5000, "answer");
      const session = http2Connect(`https://127.0.0.1:${gw.port}`, { ca: certs.ca });
      session.on("error", () => {});
      const got = await withTimeout(
        new Promise<number>((resolve, reject) => {
          const stream = session.request({ ":path": "/" });
          stream.on("response", (h) => resolve(Number(h[":status"])));
          stream.on("error", reject);
          stream.resume();
        }),
        5000,
        "HTTP/2 answer",
      );
      assert.equal(got, 200);
      await Promise.all([closedWithin(socket, 5000), onBun ? closedWithin(session, 5000) : null]);
      session.destroy();
    },
  );

  it(
    "client_header_timeout closes a TLS connection that never sends a request",
    async () => {
      const gw = await startGateway(`${tlsConfig(certs, `client_header_timeout = "1s"`)}
[upstreams.app]
servers = ["${N.address}"]
`);
      const silent = await tlsSocket(gw.port, certs.ca);
      silent.on("error", () => {});
      const partial = await tlsSocket(gw.port, certs.ca);
      partial.on("error", () => {});
      // Read what comes (a 408 for the partial head): an unread socket never reports its end.
      silent.resume();
      partial.resume();
      partial.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n`);
      await Promise.all([closedWithin(silent, 5000), closedWithin(partial, 5000)]);
    },
  );
});
