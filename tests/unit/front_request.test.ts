import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FrontRequest, HeadHeaders, requestUrl } from "../../src/runtime/front/request.ts";
import { upstreamRequestHeaders } from "../../src/proxy/headers.ts";

describe("front request: the head as the proxy reads it", () => {
  const lines = [
    "host",
    "example.com",
    "x-forwarded-for",
    "10.0.0.1",
    "cookie",
    "a=1",
    "accept",
    "text/html",
    "x-forwarded-for",
    "10.0.0.2",
    "cookie",
    "route=abc",
    "accept",
    "*/*",
  ];

  it("get joins lines of one name as Headers does (Cookie with '; ')", () => {
    const headers = new HeadHeaders(lines);
    assert.equal(headers.get("host"), "example.com");
    assert.equal(headers.get("accept"), "text/html, */*");
    assert.equal(headers.get("cookie"), "a=1; route=abc");
    assert.equal(headers.get("missing"), null);
    assert.equal(headers.has("cookie"), true);
    assert.equal(headers.has("upgrade"), false);
  });

  it("iterates lines in the client's order, Cookie lines as one where the first was", () => {
    assert.deepEqual([...new HeadHeaders(lines)].map(([name]) => name), [
      "host",
      "x-forwarded-for",
      "cookie",
      "accept",
      "x-forwarded-for",
      "accept",
    ]);
  });

  it("upstream headers: X-Forwarded-For lines are one list, the client appended", () => {
    const out = upstreamRequestHeaders(new HeadHeaders(lines), {
      remoteAddress: "127.0.0.9",
      protocol: "http",
    });
    const xff = out.filter(([name]) => name === "x-forwarded-for");
    assert.deepEqual(xff, [["x-forwarded-for", "10.0.0.1, 10.0.0.2, 127.0.0.9"]]);
    // The same as a Web Headers gives (which joins the lines itself).
    const web = new Headers();
    for (let i = 0; i < lines.length; i += 2) {
      if (lines[i] !== "cookie") web.append(lines[i], lines[i + 1]);
    }
    web.append("cookie", "a=1; route=abc");
    const fromWeb = upstreamRequestHeaders(web, { remoteAddress: "127.0.0.9", protocol: "http" });
    const others = (pairs: [string, string][]) =>
      new Map(pairs.filter(([name]) => name !== "accept"));
    assert.deepEqual(others(out), others(fromWeb));
  });

  it("a FrontRequest reads its signal from its connection, on demand", () => {
    let made = 0;
    const controller = new AbortController();
    const request = new FrontRequest("GET", "http://h/", ["host", "h"], null, "HTTP/1.1", {
      signal() {
        made++;
        return controller.signal;
      },
    });
    assert.equal(made, 0);
    assert.equal(request.signal, controller.signal);
    assert.equal(made, 1);
    assert.equal(request.httpVersion, "HTTP/1.1");
  });

  it("requestUrl: origin-form under the authority, absolute-form with an empty path as /", () => {
    assert.equal(requestUrl("/a/../b?x", "h:8080"), "http://h:8080/a/../b?x");
    assert.equal(requestUrl("*", "h"), "http://h/*");
    assert.equal(requestUrl("http://example.com", "h"), "http://example.com/");
    assert.equal(requestUrl("http://example.com?q=1", "h"), "http://example.com/?q=1");
    assert.equal(requestUrl("http://example.com/p?q", "h"), "http://example.com/p?q");
  });
});
