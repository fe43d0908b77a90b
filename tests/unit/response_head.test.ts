import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { findHeadEnd, parseResponseHead } from "../../src/proxy/response_head.ts";
import { UpstreamError } from "../../src/proxy/errors.ts";

function badResponse(text: string): void {
  assert.throws(
    () => parseResponseHead(text),
    (error: unknown) => error instanceof UpstreamError && error.code === "bad_response",
    JSON.stringify(text),
  );
}

describe("parseResponseHead", () => {
  it("reads the status line and headers, names lower-cased, values trimmed", () => {
    const head = parseResponseHead(
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length:16\r\nX-Pad: \t a b \t",
    );
    assert.equal(head.http10, false);
    assert.equal(head.status, 200);
    assert.equal(head.statusText, "OK");
    assert.deepEqual(head.headers, [["server", "nginx"], ["content-length", "16"], [
      "x-pad",
      "a b",
    ]]);
  });

  it("reads HTTP/1.0, an empty or missing reason, and a reason with spaces", () => {
    assert.equal(parseResponseHead("HTTP/1.0 204 No Content").http10, true);
    assert.equal(parseResponseHead("HTTP/1.0 204 No Content").statusText, "No Content");
    assert.equal(parseResponseHead("HTTP/1.1 404").statusText, "");
    assert.equal(parseResponseHead("HTTP/1.1 404 ").statusText, "");
    assert.deepEqual(parseResponseHead("HTTP/1.1 500").headers, []);
  });

  it("keeps repeated headers as separate pairs, in order", () => {
    const head = parseResponseHead("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2");
    assert.deepEqual(head.headers, [["set-cookie", "a=1"], ["set-cookie", "b=2"]]);
  });

  it("refuses bad status lines", () => {
    for (
      const line of [
        "",
        "HTTP/1.1",
        "HTTP/1.1 20",
        "HTTP/1.1 2000 OK",
        "HTTP/1.1 20x OK",
        "HTTP/1.2 200 OK",
        "HTTP/2 200 OK",
        "HTTP/1.1  200 OK",
        "http/1.1 200 OK",
        "ICY 200 OK",
      ]
    ) badResponse(line);
  });

  it("refuses header lines without a name, without a colon, or folded", () => {
    badResponse("HTTP/1.1 200 OK\r\n: no name");
    badResponse("HTTP/1.1 200 OK\r\nno colon");
    badResponse("HTTP/1.1 200 OK\r\nA: 1\r\n folded");
    badResponse("HTTP/1.1 200 OK\r\nA: 1\r\n\tfolded: 2");
    // The colon must be on the line itself, not on a later one.
    badResponse("HTTP/1.1 200 OK\r\nno colon\r\nB: 2");
  });

  it("lower-cases every spelling of a name, whatever was seen before", () => {
    // Same length and first/last character share a slot of the name cache: each must still
    // come out as its own name, in lower case.
    const names = [
      "Content-Length",
      "content-length",
      "CONTENT-LENGTH",
      "Content-Lxngth",
      "X-Ab",
      "X-Cb",
      "x-ab",
      "X-AB",
    ];
    for (let round = 0; round < 3; round++) {
      for (const name of names) {
        const head = parseResponseHead(`HTTP/1.1 200 OK\r\n${name}: 1`);
        assert.deepEqual(head.headers, [[name.toLowerCase(), "1"]]);
      }
    }
  });
});

describe("parseResponseHead: what must not reach a client (spec 14)", () => {
  it("refuses a status outside 100-599", () => {
    for (const line of ["HTTP/1.1 999 Nope", "HTTP/1.1 600 X", "HTTP/1.1 099 X", "HTTP/1.1 000"]) {
      badResponse(`${line}\r\nContent-Length: 0`);
    }
    assert.equal(parseResponseHead("HTTP/1.1 599 Edge").status, 599);
    assert.equal(parseResponseHead("HTTP/1.1 100 Continue").status, 100);
  });

  it("refuses header names that are not tokens", () => {
    for (const name of ["X Y", "X-\u00e9", "X(1)", "X\u0001", '"q"', "X/Y", "X@"]) {
      badResponse(`HTTP/1.1 200 OK\r\n${name}: v`);
    }
    assert.deepEqual(parseResponseHead("HTTP/1.1 200 OK\r\nX-!#$%&'*+.^_`|~9: v").headers, [[
      "x-!#$%&'*+.^_`|~9",
      "v",
    ]]);
  });

  it("findHeadEnd refuses a NUL, a bare CR or a bare LF in a value, the reason or the last line", () => {
    for (
      const text of [
        "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 0",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0",
        "HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: a\rb",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: ab\r",
        "HTTP/1.1 200 O\rK\r\nContent-Length: 0",
        "HTTP/1.1 200 O\nK\r\nContent-Length: 0",
        "HTTP/1.1 200 OK\nX-A: 1",
        "\nHTTP/1.1 200 OK",
      ]
    ) {
      const bytes = Buffer.from(`${text}\r\n\r\nbody`, "latin1");
      assert.throws(
        () => findHeadEnd(bytes, 0, 0, bytes.length),
        (error: unknown) => error instanceof UpstreamError && error.code === "bad_response",
        JSON.stringify(text),
      );
    }
  });

  it("findHeadEnd finds the end of a good head, from where it left off, and waits for more", () => {
    const text = "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nbody\r\n";
    const bytes = Buffer.from(text, "latin1");
    const end = text.indexOf("\r\n\r\n");
    assert.equal(findHeadEnd(bytes, 0, 0, bytes.length), end);
    assert.equal(findHeadEnd(bytes, 0, 10, bytes.length), end);
    assert.equal(findHeadEnd(bytes, 0, 0, end + 3), -1);
  });
});
