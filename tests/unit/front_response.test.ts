/**
 * Response framing and heads of the HTTP/1.1 front (src/runtime/front/response.ts): the handler's
 * Content-Length kept, chunked on HTTP/1.1 and close-delimited on HTTP/1.0 without one, no body
 * for HEAD/1xx/204/304, Set-Cookie one per line, a Date, Connection; latin1 values byte for byte.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CHUNKED_BODY,
  currentDateLine,
  encodeChunk,
  encodeHead,
  LENGTH,
  NO_BODY,
  responseFraming,
  responseHead,
  UNTIL_CLOSE,
} from "../../src/runtime/front/response.ts";

const text = (data: Uint8Array) => String.fromCharCode(...data);

describe("front response framing", () => {
  it("a Content-Length is kept exactly; 0 means no body", () => {
    assert.deepEqual(responseFraming("GET", 1, 200, "16384", true), {
      kind: LENGTH,
      length: 16384,
    });
    assert.deepEqual(responseFraming("GET", 0, 200, "5", true), { kind: LENGTH, length: 5 });
    assert.equal(responseFraming("GET", 1, 200, "0", true).kind, NO_BODY);
  });

  it("without a length: chunked on HTTP/1.1, until close on HTTP/1.0, none without a body", () => {
    assert.equal(responseFraming("GET", 1, 200, null, true).kind, CHUNKED_BODY);
    assert.equal(responseFraming("GET", 0, 200, null, true).kind, UNTIL_CLOSE);
    assert.equal(responseFraming("GET", 1, 200, null, false).kind, NO_BODY);
    assert.equal(responseFraming("GET", 1, 200, "abc", true).kind, CHUNKED_BODY);
  });

  it("no body for HEAD, 1xx, 204, 304", () => {
    assert.equal(responseFraming("HEAD", 1, 200, "100", true).kind, NO_BODY);
    assert.equal(responseFraming("GET", 1, 204, null, true).kind, NO_BODY);
    assert.equal(responseFraming("GET", 1, 304, "100", true).kind, NO_BODY);
    assert.equal(responseFraming("GET", 1, 103, null, true).kind, NO_BODY);
  });
});

describe("front response head", () => {
  it("status line, headers, Set-Cookie per line, date, framing, connection", () => {
    const response = new Response("hello", { status: 201, headers: { "x-a": "1" } });
    response.headers.append("set-cookie", "a=1; Path=/");
    response.headers.append("set-cookie", "b=2");
    response.headers.set("content-length", "5");
    response.headers.set("connection", "keep-alive");
    response.headers.set("transfer-encoding", "chunked");
    const head = responseHead(response, { kind: LENGTH, length: 5 }, true, false);
    const lines = head.split("\r\n");
    assert.equal(lines[0], "HTTP/1.1 201 Created");
    assert.ok(lines.includes("x-a: 1"));
    assert.ok(lines.includes("set-cookie: a=1; Path=/") && lines.includes("set-cookie: b=2"));
    assert.ok(lines.includes("content-length: 5"));
    assert.ok(lines.includes("connection: close"));
    assert.ok(
      !lines.includes("transfer-encoding: chunked") && !lines.includes("connection: keep-alive"),
    );
    assert.equal(lines.filter((line) => line.startsWith("content-length")).length, 1);
    assert.ok(
      lines.some((line) => /^date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/.test(line)),
    );
    assert.ok(head.endsWith("\r\n\r\n"));
  });

  it("a statusText is kept; a Date from the handler is not doubled", () => {
    const response = new Response(null, {
      status: 299,
      statusText: "Fine Thanks",
      headers: { date: "Thu, 01 Jan 1970 00:00:00 GMT" },
    });
    const head = responseHead(response, { kind: NO_BODY, length: 0 }, false, true);
    assert.match(head, /^HTTP\/1\.1 299 Fine Thanks\r\n/);
    assert.equal(head.match(/date:/g)?.length, 1);
    assert.match(head, /content-length: 0\r\n/);
    assert.match(head, /connection: keep-alive\r\n/);
  });

  it("HEAD keeps the handler's Content-Length and makes none up", () => {
    const withLength = new Response(null, { headers: { "content-length": "1234" } });
    assert.match(
      responseHead(withLength, { kind: NO_BODY, length: 0 }, false, false, true),
      /content-length: 1234\r\n/,
    );
    const without = new Response(null);
    assert.doesNotMatch(
      responseHead(without, { kind: NO_BODY, length: 0 }, false, false, true),
      /content-length/,
    );
    const chunked = responseHead(
      new Response("x"),
      { kind: CHUNKED_BODY, length: -1 },
      false,
      false,
    );
    assert.match(chunked, /transfer-encoding: chunked\r\n/);
  });

  it("the date line is made once a second", () => {
    assert.equal(currentDateLine(1_000_000_000_000), "date: Sun, 09 Sep 2001 01:46:40 GMT\r\n");
    assert.equal(currentDateLine(1_000_000_000_999), "date: Sun, 09 Sep 2001 01:46:40 GMT\r\n");
  });

  it("encodes latin1 values byte for byte, the head and the first body bytes in one array", () => {
    const out = encodeHead("x: caf\xe9\r\n\r\n", new Uint8Array([1, 2, 3]), 2);
    assert.deepEqual([...out], [...new TextEncoder().encode("x: caf"), 0xe9, 13, 10, 13, 10, 1, 2]);
    assert.equal(
      text(encodeChunk(new TextEncoder().encode("0123456789abcdefX"))),
      "11\r\n0123456789abcdefX\r\n",
    );
  });
});
