/**
 * The per-request record the gateway hands `onRequestDone` (the coming access log and metrics):
 * upstream, server id, attempts, sticky outcome, status and error code, for every row of the
 * sticky decision table, with drain and maint servers, through Gateway.handle and a transport
 * that refuses connections to chosen servers.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Server } from "../../src/config/mod.ts";
import { Gateway } from "../../src/proxy/gateway.ts";
import { UpstreamError } from "../../src/proxy/errors.ts";
import type { Transport, UpstreamRequest, UpstreamResponse } from "../../src/proxy/transport.ts";
import type { RequestRecord } from "../../src/proxy/request_record.ts";
import { md5 } from "../support/http.ts";
import { toResponse } from "../../src/runtime/shared/answer.ts";

const CLIENT = { remoteAddress: "192.0.2.1", protocol: "http" as const };

// A, B ready; C maint; D draining. Ports name them: 127.0.0.1:1 is A … :4 is D.
const CONFIG = `
[upstreams.app]
servers = [
  { address = "127.0.0.1:1", id = "web-a" },
  "127.0.0.1:2",
  { address = "127.0.0.1:3", id = "web-c", state = "maint" },
  { address = "127.0.0.1:4", id = "web-d", state = "drain" },
]
[upstreams.app.sticky]

[upstreams.plain]
servers = [{ address = "127.0.0.1:5", id = "plain-1" }]

[[routes]]
path = "/app/"
upstream = "app"

[[routes]]
path = "/nf/"
upstream = "app"
no_fallback = true

[[routes]]
path = "/plain/"
upstream = "plain"
`;

/** A gateway whose transport refuses the ports in `refusing` and answers 200 elsewhere. */
function setup() {
  const refusing = new Set<number>();
  const records: RequestRecord[] = [];
  const transport: Transport = {
    send(server: Server): Promise<UpstreamResponse> {
      if (refusing.has(server.address.port)) {
        return Promise.reject(new UpstreamError("connect_refused", "test"));
      }
      return Promise.resolve({ status: 200, statusText: "OK", headers: [], body: null });
    },
    close() {},
  };
  const gateway = new Gateway(parseConfig(CONFIG, "t.toml"), transport, {
    now: () => 1_000_000,
    onRequestDone: (record) => records.push(record),
  });
  /** One request; its record and the Set-Cookie it got. */
  async function ask(path: string, port?: number) {
    const headers = port === undefined
      ? undefined
      : { cookie: `route=${md5(`127.0.0.1:${port}`)}` };
    const response = toResponse(
      await gateway.handle(
        new Request(`http://gw.test${path}`, { headers }),
        CLIENT,
      ),
    );
    assert.equal(records.length, 1, "one record per request");
    const record = routing(records.pop()!);
    return { record, setCookie: response.headers.get("set-cookie"), status: response.status };
  }
  return { ask, refusing };
}

/** The routing facts of a record (the fields these tests are about). */
function routing(record: RequestRecord) {
  const { upstream, server, attempts, sticky, status, error } = record;
  return { upstream, server, attempts, sticky, status, error };
}

const served = (server: string, sticky: RequestRecord["sticky"], attempts = 1) => ({
  upstream: server === "plain-1" ? "plain" : "app",
  server,
  attempts,
  sticky,
  status: 200,
  error: undefined,
});

describe("onRequestDone: the record of every request", () => {
  it("none: an upstream without stickiness", async () => {
    const { ask } = setup();
    assert.deepEqual((await ask("/plain/x")).record, served("plain-1", "none"));
  });

  it("new: no cookie, balanced over ready servers only (drain and maint never), with a Set-Cookie", async () => {
    const { ask } = setup();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { record, setCookie } = await ask("/app/");
      assert.equal(record.sticky, "new");
      assert.ok(setCookie?.startsWith("route="));
      ids.push(record.server!);
    }
    assert.deepEqual(ids, ["web-a", "127.0.0.1:2", "web-a", "127.0.0.1:2"]);
  });

  it("hit: a valid cookie for a ready or a draining server, served there, no Set-Cookie", async () => {
    const { ask } = setup();
    for (const [port, id] of [[2, "127.0.0.1:2"], [4, "web-d"]] as const) {
      const { record, setCookie } = await ask("/app/", port);
      assert.deepEqual(record, served(id, "hit"));
      assert.equal(setCookie, null);
    }
    const underNoFallback = await ask("/nf/", 4);
    assert.deepEqual(underNoFallback.record, served("web-d", "hit"));
  });

  it("repin: a cookie for a maint server is balanced anew with a Set-Cookie", async () => {
    const { ask } = setup();
    const { record, setCookie } = await ask("/app/", 3);
    assert.deepEqual(record, served("web-a", "repin"));
    assert.equal(setCookie?.split(";")[0], `route=${md5("127.0.0.1:1")}`);
  });

  it("repin: the pinned server refuses during the request and another answers", async () => {
    const { ask, refusing } = setup();
    refusing.add(4);
    const { record, setCookie } = await ask("/app/", 4);
    assert.deepEqual(record, served("web-a", "repin", 2));
    assert.equal(setCookie?.split(";")[0], `route=${md5("127.0.0.1:1")}`);
  });

  it("invalid: a value naming no server, balanced", async () => {
    const { ask } = setup();
    const { record, setCookie } = await ask("/app/", 99);
    assert.deepEqual(record, served("web-a", "invalid"));
    assert.ok(setCookie !== null);
  });

  it("refused: no_fallback and a maint server (502 pinned_unavailable, no attempt)", async () => {
    const { ask } = setup();
    const { record, status } = await ask("/nf/", 3);
    assert.equal(status, 502);
    assert.deepEqual(record, {
      upstream: "app",
      server: undefined,
      attempts: 0,
      sticky: "refused",
      status: 502,
      error: "pinned_unavailable",
    });
  });

  it("failures carry the catalogue code: every server refusing, and no route", async () => {
    const { ask, refusing } = setup();
    for (const port of [1, 2, 3, 4]) refusing.add(port);
    assert.deepEqual((await ask("/app/")).record, {
      upstream: "app",
      server: undefined,
      attempts: 2,
      sticky: "new",
      status: 502,
      error: "connect_refused",
    });
    assert.deepEqual((await ask("/elsewhere")).record, {
      upstream: undefined,
      server: undefined,
      attempts: 0,
      sticky: "none",
      status: 404,
      error: "no_route",
    });
  });
});

describe("onRequestDone: the request's own facts, and when the record goes out", () => {
  /** A gateway whose upstream answers with `body`; records and the requests it sent. */
  function gatewayWith(body: () => UpstreamResponse["body"]) {
    const records: RequestRecord[] = [];
    const sent: UpstreamRequest[] = [];
    const transport: Transport = {
      async send(_server: Server, request: UpstreamRequest): Promise<UpstreamResponse> {
        sent.push(request);
        // As the real transport does: the body goes upstream before the answer comes.
        const upload = request.body;
        if (upload !== null) {
          for (
            let r = await upload.read();
            !r.done;
            r = await upload.read()
          );
        }
        return { status: 201, statusText: "Created", headers: [], body: body() };
      },
      close() {},
    };
    const gateway = new Gateway(parseConfig(CONFIG, "t.toml"), transport, {
      onRequestDone: (record) => records.push(record),
    });
    return { gateway, records, sent };
  }

  it("client, method, target as sent, protocol, UA, referer, upstream status and timings", async () => {
    const { gateway, records, sent } = gatewayWith(() => new Uint8Array(7));
    const before = Date.now();
    const response = toResponse(
      await gateway.handle(
        new Request("http://gw.test/plain/a?b=1", {
          method: "POST",
          body: "hello",
          headers: { "user-agent": "ua/1", referer: "http://r.test/", "x-request-id": "rid-1" },
        }),
        CLIENT,
      ),
    );
    assert.equal(response.status, 201);
    const record = records[0];
    assert.equal(record.kind, "http");
    assert.ok(record.startMs >= before && record.startMs <= Date.now());
    assert.equal(record.clientAddress, "192.0.2.1");
    assert.equal(record.method, "POST");
    assert.equal(record.target, "/plain/a?b=1");
    assert.equal(record.protocol, "HTTP/1.1");
    assert.equal(record.userAgent, "ua/1");
    assert.equal(record.referer, "http://r.test/");
    assert.equal(record.upstreamStatus, 201);
    assert.equal(record.bytesOut, 7);
    assert.ok(record.upstreamHeaderMs! >= 0 && record.upstreamHeaderMs! <= record.durationMs);
    // The client's sane request id is kept, and sent upstream.
    assert.equal(record.requestId, "rid-1");
    assert.deepEqual(sent[0].headers.filter(([n]) => n === "x-request-id"), [[
      "x-request-id",
      "rid-1",
    ]]);
  });

  it("a request id is made when the client sent none or an unsafe one, and goes upstream", async () => {
    const { gateway, records, sent } = gatewayWith(() => null);
    for (const id of [undefined, 'a "quoted" id', "x".repeat(200)]) {
      toResponse(
        await gateway.handle(
          new Request("http://gw.test/plain/", {
            headers: id === undefined ? {} : { "x-request-id": id },
          }),
          CLIENT,
        ),
      );
    }
    const ids = records.map((r) => r.requestId);
    assert.equal(new Set(ids).size, 3, "unique");
    for (const [i, id] of ids.entries()) {
      assert.match(id, /^[0-9a-f]{12}-[0-9a-z]+$/);
      assert.deepEqual(sent[i].headers.filter(([n]) => n === "x-request-id"), [[
        "x-request-id",
        id,
      ]]);
    }
  });

  it("a streamed body: the record goes out when the body has ended, with the bytes sent", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const { gateway, records } = gatewayWith(() =>
      new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
    );
    const response = toResponse(await gateway.handle(new Request("http://gw.test/plain/"), CLIENT));
    assert.equal(records.length, 0, "not before the body is over");
    const reading = new Response(response.body).arrayBuffer();
    controller.enqueue(new Uint8Array(1000));
    controller.enqueue(new Uint8Array(24));
    controller.close();
    assert.equal((await reading).byteLength, 1024);
    assert.equal(records.length, 1);
    assert.equal(records[0].bytesOut, 1024);
    assert.equal(records[0].status, 201);
  });

  it("a body the client stops reading: the record goes out at the cancel, once", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const { gateway, records } = gatewayWith(() =>
      new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
    );
    const response = toResponse(await gateway.handle(new Request("http://gw.test/plain/"), CLIENT));
    const reader = response.body!.getReader();
    controller.enqueue(new Uint8Array(10));
    await reader.read();
    await reader.cancel();
    assert.equal(records.length, 1);
    assert.equal(records[0].bytesOut, 10);
  });

  it("bytes in: the request body as read from the client", async () => {
    const { gateway, records } = gatewayWith(() => null);
    toResponse(
      await gateway.handle(
        new Request("http://gw.test/plain/", { method: "PUT", body: "x".repeat(300) }),
        CLIENT,
      ),
    );
    assert.equal(records[0].bytesIn, 300);
  });
});
