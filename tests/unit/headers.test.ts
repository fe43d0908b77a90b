import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  appendClientResponseHeaders,
  type ClientInfo,
  connectionTokens,
  type HeaderPair,
  upstreamRequestHeaders,
} from "../../src/proxy/headers.ts";

const CLIENT: ClientInfo = { remoteAddress: "192.0.2.7", protocol: "http" };

const HOP_BY_HOP = [
  "Connection",
  "Keep-Alive",
  "Proxy-Connection",
  "TE",
  "Trailer",
  "Transfer-Encoding",
  "Upgrade",
  "Proxy-Authenticate",
  "Proxy-Authorization",
];

/** The pairs' names in lower case. */
function names(pairs: readonly HeaderPair[]): string[] {
  return pairs.map(([name]) => name.toLowerCase());
}

/** Every value sent under this (lower-case) name. */
function valuesOf(pairs: readonly HeaderPair[], name: string): string[] {
  return pairs.filter(([n]) => n.toLowerCase() === name).map(([, value]) => value);
}

describe("upstreamRequestHeaders", () => {
  it("drops every hop-by-hop header and keeps the rest", () => {
    const headers = new Headers({ "Host": "app.example", "Accept": "*/*", "X-Custom": "1" });
    for (const name of HOP_BY_HOP) headers.set(name, name === "Connection" ? "keep-alive" : "x");
    const out = upstreamRequestHeaders(headers, CLIENT);
    for (const name of HOP_BY_HOP) assert.ok(!names(out).includes(name.toLowerCase()), name);
    assert.deepEqual(valuesOf(out, "accept"), ["*/*"]);
    assert.deepEqual(valuesOf(out, "x-custom"), ["1"]);
  });

  it("drops the headers Connection lists, whatever their case", () => {
    const headers = new Headers({
      "Host": "app.example",
      "Connection": "close, X-Secret , x-other",
      "X-Secret": "s",
      "X-Other": "o",
      "X-Kept": "k",
    });
    const out = upstreamRequestHeaders(headers, CLIENT);
    assert.deepEqual(valuesOf(out, "x-secret"), []);
    assert.deepEqual(valuesOf(out, "x-other"), []);
    assert.deepEqual(valuesOf(out, "x-kept"), ["k"]);
  });

  it("keeps Host as the client sent it and copies it to X-Forwarded-Host", () => {
    const out = upstreamRequestHeaders(new Headers({ "Host": "App.Example:8080" }), CLIENT);
    assert.deepEqual(valuesOf(out, "host"), ["App.Example:8080"]);
    assert.deepEqual(valuesOf(out, "x-forwarded-host"), ["App.Example:8080"]);
  });

  it("appends the client's address to X-Forwarded-For", () => {
    const fresh = upstreamRequestHeaders(new Headers({ "Host": "h" }), CLIENT);
    assert.deepEqual(valuesOf(fresh, "x-forwarded-for"), ["192.0.2.7"]);
    const chained = upstreamRequestHeaders(
      new Headers({ "Host": "h", "X-Forwarded-For": "203.0.113.1, 10.0.0.1" }),
      CLIENT,
    );
    assert.deepEqual(valuesOf(chained, "x-forwarded-for"), ["203.0.113.1, 10.0.0.1, 192.0.2.7"]);
  });

  it("joins several X-Forwarded-For lines before appending", () => {
    const headers = new Headers([["Host", "h"], ["X-Forwarded-For", "203.0.113.1"], [
      "X-Forwarded-For",
      "10.0.0.1",
    ]]);
    assert.deepEqual(valuesOf(upstreamRequestHeaders(headers, CLIENT), "x-forwarded-for"), [
      "203.0.113.1, 10.0.0.1, 192.0.2.7",
    ]);
  });

  it("sets X-Forwarded-Proto and X-Forwarded-Host, replacing what the client sent", () => {
    const headers = new Headers({
      "Host": "real.example",
      "X-Forwarded-Proto": "https",
      "X-Forwarded-Host": "evil.example",
    });
    const out = upstreamRequestHeaders(headers, CLIENT);
    assert.deepEqual(valuesOf(out, "x-forwarded-proto"), ["http"]);
    assert.deepEqual(valuesOf(out, "x-forwarded-host"), ["real.example"]);
    const https = upstreamRequestHeaders(new Headers({ "Host": "h" }), {
      remoteAddress: "::1",
      protocol: "https",
    });
    assert.deepEqual(valuesOf(https, "x-forwarded-proto"), ["https"]);
    assert.deepEqual(valuesOf(https, "x-forwarded-for"), ["::1"]);
  });

  it("sends no X-Forwarded-Host without a Host", () => {
    const out = upstreamRequestHeaders(new Headers({ "Accept": "*/*" }), CLIENT);
    assert.deepEqual(valuesOf(out, "x-forwarded-host"), []);
    assert.deepEqual(valuesOf(out, "host"), []);
  });

  it("forwards every cookie, the sticky one included", () => {
    const out = upstreamRequestHeaders(
      new Headers({ "Host": "h", "Cookie": "a=1; route=abc; b=2" }),
      CLIENT,
    );
    assert.deepEqual(valuesOf(out, "cookie"), ["a=1; route=abc; b=2"]);
  });
});

describe("connectionTokens", () => {
  it("lists the header names Connection names, lower case, without close and keep-alive", () => {
    assert.deepEqual(connectionTokens("Close, Keep-Alive, X-A ,x-b,,"), new Set(["x-a", "x-b"]));
    assert.equal(connectionTokens("close"), undefined);
    assert.equal(connectionTokens(null), undefined);
    assert.equal(connectionTokens(""), undefined);
  });
});

describe("appendClientResponseHeaders", () => {
  it("drops hop-by-hop headers and those Connection lists", () => {
    const upstream: HeaderPair[] = [
      ...HOP_BY_HOP.map((
        name,
      ): HeaderPair => [name, name === "Connection" ? "keep-alive, X-Internal" : "x"]),
      ["X-Internal", "secret"],
      ["Content-Type", "text/plain"],
      ["Content-Length", "5"],
    ];
    const out: HeaderPair[] = [];
    appendClientResponseHeaders(upstream, "route", out);
    assert.deepEqual(out, [["Content-Type", "text/plain"], ["Content-Length", "5"]]);
  });

  it("drops the upstream's Set-Cookie for the sticky name, case-insensitively", () => {
    const upstream: HeaderPair[] = [
      ["Set-Cookie", "route=fromapp; Path=/"],
      ["set-cookie", "ROUTE=x"],
      ["SET-COOKIE", " Route =y; HttpOnly"],
      ["Set-Cookie", "session=1; Path=/"],
      ["Set-Cookie", "routes=2"],
      ["Set-Cookie", "myroute=3"],
      ["Set-Cookie", "theme=dark; Expires=Sat, 21-Nov-2026 12:12:02 GMT"],
    ];
    const out: HeaderPair[] = [];
    appendClientResponseHeaders(upstream, "route", out);
    assert.deepEqual(out, [
      ["Set-Cookie", "session=1; Path=/"],
      ["Set-Cookie", "routes=2"],
      ["Set-Cookie", "myroute=3"],
      ["Set-Cookie", "theme=dark; Expires=Sat, 21-Nov-2026 12:12:02 GMT"],
    ]);
  });

  it("keeps every Set-Cookie when the upstream is not sticky", () => {
    const upstream: HeaderPair[] = [["set-cookie", "route=a"], ["set-cookie", "b=2"]];
    const out: HeaderPair[] = [];
    appendClientResponseHeaders(upstream, undefined, out);
    assert.deepEqual(out, [["set-cookie", "route=a"], ["set-cookie", "b=2"]]);
  });

  it("appends after what is already there (the gateway's own Set-Cookie first), in upstream order", () => {
    const out: HeaderPair[] = [["set-cookie", "route=gw; Path=/"]];
    appendClientResponseHeaders(
      [["x-a", "1"], ["set-cookie", "a=1"], ["x-b", "2"], ["set-cookie", "b=2"]],
      "route",
      out,
    );
    assert.deepEqual(out, [
      ["set-cookie", "route=gw; Path=/"],
      ["x-a", "1"],
      ["set-cookie", "a=1"],
      ["x-b", "2"],
      ["set-cookie", "b=2"],
    ]);
  });

  it("keeps the Set-Cookie headers as separate headers in a Response", () => {
    const out: HeaderPair[] = [["set-cookie", "route=gw; Path=/"]];
    appendClientResponseHeaders([["set-cookie", "a=1"], ["set-cookie", "b=2, c=3"]], "route", out);
    const response = new Response(null, { headers: out });
    assert.deepEqual(response.headers.getSetCookie(), ["route=gw; Path=/", "a=1", "b=2, c=3"]);
  });

  it('keeps a Set-Cookie without "="', () => {
    const out: HeaderPair[] = [];
    appendClientResponseHeaders([["set-cookie", "route"]], "route", out);
    assert.deepEqual(out, [["set-cookie", "route"]]);
  });
});
