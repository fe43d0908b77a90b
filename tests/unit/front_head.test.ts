/**
 * The HTTP/1.1 front's request-head parser (src/runtime/front/head.ts) against issue 8's points
 * 1-6: framing, obs-fold, bare LF, tokens, request line, Host, GET/HEAD with a body; and valid
 * heads (keep-alive, HTTP/1.0, absolute-form, OPTIONS *, obs-text, pipelined bytes after a head).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CHUNKED,
  findHeadEnd,
  headCap,
  type HeadFailure,
  parseHead,
  type RequestHead,
} from "../../src/runtime/front/head.ts";

function bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Finds and parses the head at the start of `text`; "incomplete" when it has not ended. */
function parse(text: string): RequestHead | HeadFailure | "incomplete" {
  const buf = bytes(text);
  const end = findHeadEnd(buf, 0, buf.length, 0);
  if (end === -2) return "bad_request";
  if (end === -1) return "incomplete";
  return parseHead(buf, 0, end);
}

function head(text: string): RequestHead {
  const result = parse(text);
  assert.equal(typeof result, "object", `${JSON.stringify(text)} → ${result}`);
  return result as RequestHead;
}

function fails(text: string, code: HeadFailure = "bad_request"): void {
  assert.equal(parse(text), code, JSON.stringify(text));
}

const H = "Host: example.com\r\n";

describe("front head parser: valid heads", () => {
  it("a GET: method, target, version, headers as pairs (names lower-cased), keep-alive by default", () => {
    const h = head(`GET /a?b=c HTTP/1.1\r\n${H}X-Two: 1\r\nx-two: 2\r\n\r\n`);
    assert.equal(h.method, "GET");
    assert.equal(h.target, "/a?b=c");
    assert.equal(h.minor, 1);
    assert.deepEqual(h.headers, ["host", "example.com", "x-two", "1", "x-two", "2"]);
    assert.equal(h.host, "example.com");
    assert.equal(h.bodyLength, 0);
    assert.equal(h.keepAlive, true);
    assert.equal(h.upgrade, false);
  });

  it("values lose surrounding whitespace; empty values pass", () => {
    const h = head(`GET / HTTP/1.1\r\n${H}A: \t x y \t\r\nB:\r\n\r\n`);
    assert.deepEqual(h.headers.slice(2), ["a", "x y", "b", ""]);
  });

  it("Connection: close ends keep-alive on HTTP/1.1 (any case, in a list)", () => {
    assert.equal(head(`GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`).keepAlive, false);
    assert.equal(head(`GET / HTTP/1.1\r\n${H}Connection: TE, Close\r\n\r\n`).keepAlive, false);
  });

  it("HTTP/1.0: keep-alive only with Connection: keep-alive; served without Host", () => {
    const plain = head("GET / HTTP/1.0\r\n\r\n");
    assert.equal(plain.minor, 0);
    assert.equal(plain.keepAlive, false);
    assert.equal(plain.host, undefined);
    assert.equal(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
  });

  it("Content-Length and chunked bodies; Content-Length: 0 on GET is fine", () => {
    assert.equal(head(`POST / HTTP/1.1\r\n${H}Content-Length: 0042\r\n\r\n`).bodyLength, 42);
    assert.equal(
      head(`POST / HTTP/1.1\r\n${H}Transfer-Encoding:  Chunked \r\n\r\n`).bodyLength,
      CHUNKED,
    );
    assert.equal(head(`GET / HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`).bodyLength, 0);
  });

  it("absolute-form and OPTIONS * are accepted", () => {
    assert.equal(
      head(`GET http://example.com/p HTTP/1.1\r\n${H}\r\n`).target,
      "http://example.com/p",
    );
    assert.equal(head(`OPTIONS * HTTP/1.1\r\n${H}\r\n`).target, "*");
  });

  it("upgrade and Expect: 100-continue are reported", () => {
    const h = head(`GET / HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    assert.equal(h.upgrade, true);
    const e = head(`PUT / HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n`);
    assert.equal(e.expectContinue, true);
  });

  it("obs-text in a value passes byte for byte (latin1)", () => {
    assert.equal(head(`GET / HTTP/1.1\r\n${H}X: caf\xe9\xff\r\n\r\n`).headers[3], "caf\xe9\xff");
  });

  it("the head ends at its empty line; bytes after it (a pipelined request) are left", () => {
    const text = `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}\r\n`;
    const h = head(text);
    assert.equal(h.end, text.indexOf("GET /2"));
  });

  it("an incomplete head is incomplete, also when it ends in CR LF CR", () => {
    assert.equal(parse(`GET / HTTP/1.1\r\n${H}`), "incomplete");
    assert.equal(parse(`GET / HTTP/1.1\r\n${H}\r`), "incomplete");
  });

  it("the hard head cap is max(64 KiB, 2 * client_max_header_size)", () => {
    assert.equal(headCap(4096), 64 * 1024);
    assert.equal(headCap(1 << 20), 2 << 20);
  });
});

describe("front head parser: refused heads (issue 8 points 1-6)", () => {
  it("1. Content-Length and Transfer-Encoding together → 400", () => {
    fails(`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`);
    fails(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n`);
  });

  it("2. two Content-Lengths (even equal), or one that is not 1*DIGIT → 400", () => {
    fails(`POST / HTTP/1.1\r\n${H}Content-Length: 2\r\nContent-Length: 2\r\n\r\n`);
    for (const value of ["+2", "1,1", " ", "0x2", "-1", "2 2", "1e3", "", "9999999999999999"]) {
      fails(`POST / HTTP/1.1\r\n${H}Content-Length: ${value}\r\n\r\n`);
    }
  });

  it("3. Transfer-Encoding other than exactly chunked → 501; on HTTP/1.0 → 400", () => {
    for (const value of ["chunked, identity", "gzip, chunked", "identity", "chunked;x", ""]) {
      fails(
        `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ${value}\r\n\r\n`,
        "unsupported_transfer_coding",
      );
    }
    fails(
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`,
      "unsupported_transfer_coding",
    );
    fails("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
  });

  it("4. obs-fold, bare LF, bad names, NUL/CR in values → 400", () => {
    fails(`GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}X-A: a\r\n\tb\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n ${H}\r\n`);
    fails(`GET / HTTP/1.1\n${H}\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}X-A: a\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}\n`);
    fails(`GET / HTTP/1.1\r\n${H}X-A : a\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}X(A): a\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}: a\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}Bad Header\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`);
  });

  it("4. a NUL, bare CR or bare LF fails the head as soon as it arrives (one scan with responses)", () => {
    for (
      const partial of [`GET / HTTP/1.1\r\nX-A: a\x00`, `GET / HTTP/1.1\r\nX-A: a\rb`, "GET /\n"]
    ) {
      const buf = bytes(partial);
      assert.equal(findHeadEnd(buf, 0, buf.length, 0), -2, JSON.stringify(partial));
    }
    // A CR last in what arrived waits for its LF.
    const buf = bytes("GET / HTTP/1.1\r");
    assert.equal(findHeadEnd(buf, 0, buf.length, 0), -1);
  });

  it("4. request lines that are not METHOD SP target SP HTTP/1.x → 400", () => {
    for (
      const line of [
        "GARBAGE",
        "GET / HTTP/1.1 ",
        "GET  / HTTP/1.1",
        "GET /  HTTP/1.1",
        "GET / HTTP/2.0",
        "GET / HTTP/1.2",
        "GET / http/1.1",
        "GET /",
        " GET / HTTP/1.1",
        "G(T / HTTP/1.1",
        "GET a/b HTTP/1.1",
        "CONNECT example.com:443 HTTP/1.1",
        "GET * HTTP/1.1",
        "GET ftp://x/ HTTP/1.1",
        "GET /a\x01b HTTP/1.1",
        "GET /a\x7fb HTTP/1.1",
        "GET /caf\xe9 HTTP/1.1",
        "GET /a\tb HTTP/1.1",
      ]
    ) fails(`${line}\r\n${H}\r\n`);
  });

  it("5. two Host headers → 400 (any version); HTTP/1.1 without Host → 400", () => {
    fails(`GET / HTTP/1.1\r\n${H}Host: other\r\n\r\n`);
    fails("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n");
    fails("GET / HTTP/1.1\r\nX: y\r\n\r\n");
    fails("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n");
    fails("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
  });

  it("6. GET or HEAD with a body → 400", () => {
    fails(`GET / HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\n`);
    fails(`HEAD / HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n`);
    fails(`GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`);
  });
});
