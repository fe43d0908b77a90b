/**
 * Limits with clear answers (issue 3, point 7): `client_max_body_size` → 413 (a declared length
 * before any upstream is contacted; a chunked body counted as it streams, the upstream request
 * cut), `0` = no limit; `client_max_header_size` → 431 with the gateway's own short body on both
 * runtimes (Bun's 16 KiB parser default is raised); malformed requests get the runtime's 400 or
 * a closed connection (Deno closes on invalid chunked framing), and the process keeps serving; a
 * client silent mid-upload past `idle_timeout` gets 408.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "node:net";
import {
  runGateway,
  type RunningGateway,
  startGateway,
  stopAllGateways,
} from "../support/gateway.ts";
import { header, rawExchange, rawRequest, type RawResponse } from "../support/http.ts";
import { eventually, type RealtimeUpstream, startRealtimeUpstream } from "../support/realtime.ts";

/** A chunked body of `pieces` chunks of `size` bytes each, with the last chunk. */
function chunked(pieces: number, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < pieces; i++) {
    parts.push(
      Buffer.from(`${size.toString(16)}\r\n`),
      Buffer.alloc(size, 98),
      Buffer.from("\r\n"),
    );
  }
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}

function assertGatewayAnswer(response: RawResponse, status: number, code: string): void {
  assert.equal(response.status, status, response.body.toString());
  assert.equal(header(response, "x-gateway-error"), code);
  assert.equal(header(response, "content-type"), "text/plain; charset=utf-8");
  const text = response.body.toString();
  assert.ok(text.startsWith(`${status} `) && text.length < 200, text);
}

describe("limits", () => {
  let U: RealtimeUpstream;
  let small: RunningGateway;
  let defaults: RunningGateway;
  let unlimited: RunningGateway;
  before(async () => {
    U = await startRealtimeUpstream();
    const upstream = `[upstreams.app]\nservers = ["${U.address}"]\n`;
    small = await startGateway(
      `[server]\nclient_max_body_size = "1k"\nclient_max_header_size = "4k"\nidle_timeout = "1s"\n${upstream}`,
    );
    defaults = await startGateway(upstream);
    unlimited = await startGateway(`[server]\nclient_max_body_size = 0\n${upstream}`);
  });
  after(async () => {
    await stopAllGateways();
    await U.close();
  });

  describe("client_max_body_size", () => {
    it("a Content-Length over the limit → 413 before the upstream is contacted", async () => {
      const before = U.requests();
      const response = await rawRequest(small.port, {
        method: "POST",
        path: "/upload",
        body: Buffer.alloc(1025, 97),
      });
      assertGatewayAnswer(response, 413, "body_too_large");
      assert.match(response.body.toString(), /client_max_body_size/);
      assert.equal(U.requests(), before, "the upstream never saw the request");
    });

    it("after a 413 the connection goes on with the next request; the refused body is never read as one", async () => {
      const before = U.requests();
      const body = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n".padEnd(2000, "x");
      const socket = connect({ host: "127.0.0.1", port: small.port });
      socket.on("error", () => {});
      let received = "";
      socket.on("data", (chunk: Buffer) => received += chunk.toString("latin1"));
      socket.write(
        `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
          "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      try {
        await eventually(
          () => /HTTP\/1\.1 200[^]*\r\n\r\n(2\r\n)?ok/.test(received),
          5000,
          "2nd answer",
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}; got ${JSON.stringify(received)}`);
      } finally {
        socket.destroy();
      }
      assert.match(received, /^HTTP\/1\.1 413 /);
      assert.equal(U.requests() - before, 1, "only GET /second reached the upstream");
    });

    it("a body of exactly the limit passes (Content-Length and chunked)", async () => {
      const exact = await rawRequest(small.port, {
        method: "POST",
        path: "/upload",
        body: Buffer.alloc(1024, 97),
      });
      assert.equal(exact.status, 200);
      assert.equal(exact.body.toString(), "1024");
      const streamed = await rawRequest(small.port, {
        method: "POST",
        path: "/upload",
        headers: [["Transfer-Encoding", "chunked"]],
        body: chunked(4, 256),
      });
      assert.equal(streamed.status, 200);
      assert.equal(streamed.body.toString(), "1024");
    });

    it("a chunked body is counted as it streams: past the limit the upstream request is cut and the client gets 413", async () => {
      const closedBefore = U.closedEarly();
      const response = await rawRequest(small.port, {
        method: "POST",
        path: "/upload",
        headers: [["Transfer-Encoding", "chunked"]],
        body: chunked(3, 512),
      });
      assertGatewayAnswer(response, 413, "body_too_large");
      await eventually(
        () => U.closedEarly() > closedBefore,
        5000,
        "the upstream sees the request's connection close",
      );
    });

    it("the default (100m) refuses a declared 100 GB at once, without waiting for the body", async () => {
      const response = await rawExchange(
        defaults.port,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n",
      );
      assertGatewayAnswer(response, 413, "body_too_large");
    });

    it("client_max_body_size = 0 is no limit: 3 MiB chunked and a declared 100 GB are let through", async () => {
      const response = await rawRequest(unlimited.port, {
        method: "POST",
        path: "/upload",
        headers: [["Transfer-Encoding", "chunked"]],
        body: chunked(48, 65536),
      });
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), String(3 << 20));
      // Not refused: the upstream sees it arrive (the test does not send 100 GB).
      const before = U.requests();
      const socket = connect({ host: "127.0.0.1", port: unlimited.port });
      socket.on("error", () => {});
      socket.write(
        "POST /upload-hold HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\nabc",
      );
      try {
        await eventually(() => U.requests() > before, 5000, "the upstream receives the request");
      } finally {
        socket.destroy();
      }
    });
  });

  describe("idle_timeout on uploads", () => {
    it("a client silent mid-upload for longer than idle_timeout (1s) gets 408, and the upstream request is cut", async () => {
      const closedBefore = U.closedEarly();
      const response = await rawExchange(
        small.port,
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        10_000,
      );
      assertGatewayAnswer(response, 408, "client_timeout");
      await eventually(
        () => U.closedEarly() > closedBefore,
        5000,
        "the upstream sees the request's connection close",
      );
    });
  });

  describe("client_max_header_size", () => {
    it("a head over the limit → 431 with a short body, the upstream not contacted (one big header, many headers, a long URL)", async () => {
      const before = U.requests();
      const many: [string, string][] = [];
      for (let i = 0; i < 60; i++) many.push([`X-Header-${i}`, "v".repeat(60)]);
      for (
        const request of [
          { headers: [["X-Big", "a".repeat(5000)]] as [string, string][] },
          { headers: many },
          { path: `/${"p".repeat(5000)}` },
        ]
      ) {
        const response = await rawRequest(small.port, request);
        assertGatewayAnswer(response, 431, "headers_too_large");
        assert.match(response.body.toString(), /client_max_header_size/);
      }
      assert.equal(U.requests(), before, "the upstream never saw them");
    });

    it("a head under the limit passes", async () => {
      const response = await rawRequest(small.port, { headers: [["X-Big", "a".repeat(3500)]] });
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), "ok");
    });

    it("the default (32k): a 20 KiB header passes (over Bun's own 16 KiB default), a 40 KiB one gets the gateway's 431", async () => {
      const passes = await rawRequest(defaults.port, { headers: [["X-Big", "a".repeat(20_000)]] });
      assert.equal(passes.status, 200);
      const refused = await rawRequest(defaults.port, {
        headers: [["X-Big", "a".repeat(40_000)]],
      });
      assertGatewayAnswer(refused, 431, "headers_too_large");
    });
  });

  it("--check shows the limits", async () => {
    const result = await runGateway(["--config", small.configFile, "--check"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /limits: idle_timeout 1s, client_max_body_size 1k, client_max_header_size 4k, client_header_timeout 1m, keepalive_timeout 1m15s, max_connections 10000\n/,
    );
  });

  describe("malformed requests", () => {
    const MALFORMED: Record<string, string> = {
      "a request line that is not HTTP": "GARBAGE\r\n\r\n",
      "a header line without a colon": "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
      "a NUL byte in a header value": "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
      "a Content-Length that is not a number":
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "two different Content-Lengths":
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
      "a chunk size that is not hex":
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      "a chunk longer than its size":
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
    };
    for (const [what, bytes] of Object.entries(MALFORMED)) {
      it(`${what}: 400 or a closed connection, and the next request is served`, async () => {
        for (const gateway of [small, defaults]) {
          let response: RawResponse | undefined;
          try {
            response = await rawExchange(gateway.port, bytes, 5000);
          } catch (error) {
            // The runtime may close the connection without an answer.
            assert.match((error as Error).message, /closed|reset|ECONNRESET|EPIPE/i);
          }
          if (response !== undefined) assert.equal(response.status, 400);
          const next = await rawRequest(gateway.port);
          assert.equal(next.status, 200);
          assert.equal(next.body.toString(), "ok");
          assert.equal(gateway.process.exitCode, null, "the gateway is still running");
        }
      });
    }
  });
});
