/**
 * What the gateway hands the transport (spec 11): the body length it declares, refusals of
 * GET/HEAD requests that declare a body the runtime did not hand over; and the client's Response
 * built outside the failure handling (spec 14): a response the runtime refuses is a
 * bad_response that does not count against the server.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Server } from "../../src/config/mod.ts";
import { Gateway } from "../../src/proxy/gateway.ts";
import type { FailureCode } from "../../src/proxy/errors.ts";
import type { Transport, UpstreamRequest, UpstreamResponse } from "../../src/proxy/transport.ts";
import { toResponse } from "../../src/runtime/shared/answer.ts";

const CLIENT = { remoteAddress: "192.0.2.1", protocol: "http" as const };

/** A gateway over one server whose transport answers `answer` and records what it was sent. */
function gatewayWith(answer: () => UpstreamResponse) {
  const config = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9"]\n`, "t.toml");
  const sent: UpstreamRequest[] = [];
  const logged: FailureCode[] = [];
  const transport: Transport = {
    send(_server: Server, request: UpstreamRequest) {
      sent.push(request);
      return Promise.resolve(answer());
    },
    close() {},
  };
  const gateway = new Gateway(config, transport, {
    onUpstreamError: (_server, code) => logged.push(code),
  });
  return { gateway, sent, logged };
}

const OK = (): UpstreamResponse => ({ status: 200, statusText: "OK", headers: [], body: null });

describe("the gateway frames what it forwards", () => {
  it("refuses a GET or HEAD whose head declares a body it does not have (400, nothing sent)", async () => {
    const { gateway, sent } = gatewayWith(OK);
    for (
      const [method, headers] of [
        ["GET", { "content-length": "22" }],
        ["HEAD", { "content-length": "1" }],
        ["GET", { "transfer-encoding": "chunked" }],
        ["GET", { "content-length": "x" }],
      ] as const
    ) {
      const request = new Request("http://app.example/", { method, headers });
      assert.equal(request.body, null);
      const response = toResponse(await gateway.handle(request, CLIENT));
      assert.equal(response.status, 400, `${method} ${JSON.stringify(headers)}`);
      assert.equal(response.headers.get("x-gateway-error"), "bad_request");
    }
    assert.equal(sent.length, 0);
  });

  it("forwards a GET with Content-Length: 0 as such, and declares a body's length", async () => {
    const { gateway, sent } = gatewayWith(OK);
    const get = new Request("http://app.example/", { headers: { "content-length": "0" } });
    assert.equal((toResponse(await gateway.handle(get, CLIENT))).status, 200);
    const post = new Request("http://app.example/", {
      method: "POST",
      body: "hello",
      headers: { "content-length": "5" },
    });
    assert.equal((toResponse(await gateway.handle(post, CLIENT))).status, 200);
    const bare = new Request("http://app.example/", { method: "POST" });
    assert.equal((toResponse(await gateway.handle(bare, CLIENT))).status, 200);
    assert.deepEqual(sent.map((r) => [r.body === null, r.bodyLength]), [
      [true, 0],
      [false, 5],
      [true, undefined],
    ]);
  });
});

describe("the client's Response is built outside the failure handling", () => {
  it("a response the runtime refuses: 502 bad_response, logged, the server not marked", async () => {
    let bad = true;
    const { gateway, logged } = gatewayWith(() => ({
      status: 200,
      statusText: "OK",
      // A header value no Headers object takes (a char above U+00FF).
      headers: bad ? [["x-a", "\u0100"]] : [],
      body: null,
    }));
    const response = toResponse(await gateway.handle(new Request("http://app.example/"), CLIENT));
    assert.equal(response.status, 502);
    assert.equal(response.headers.get("x-gateway-error"), "bad_response");
    assert.deepEqual(logged, ["bad_response"]);
    bad = false;
    // max_fails = 1: had it been counted, no server would be left for this one.
    assert.equal(
      (toResponse(await gateway.handle(new Request("http://app.example/"), CLIENT))).status,
      200,
    );
  });
});
