import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/mod.ts";
import { findCookie } from "../../src/cookie/read.ts";
import { serverForValue } from "../../src/sticky/resolve.ts";
import { upstreamConfig, vectors } from "./vectors.ts";

/** Several `Cookie` lines as the runtimes hand them over: one header, joined with ", ". */
function joined(lines: readonly string[]): string {
  return lines.join(", ");
}

describe("findCookie: the fixture's cookie_parsing_cases", () => {
  // What findCookie returns for each case, with A, B, C standing for the servers' values.
  const expectedValue: Record<string, string | null> = {
    "route=B": "B",
    "ROUTE=B": "B",
    "a=1; route=C; b=2": "C",
    "a=1,route=C": "C",
    "route=A; route=C": "A",
    "a=1 | route=C": "C",
    "route=B | route=C": "B",
    "route = C ;x=1": "C ",
    "route=C ": "C",
    'route="C"': '"C"',
    "route=": "",
    "route=garbage": "garbage",
    "route=<B uppercased hex>": "<B uppercased hex>",
    "xroute=C; myroute=B": null,
    "route2=C": null,
    "route=<md5 digest>": "<md5 digest>",
  };

  it("has an expectation for every case", () => {
    assert.deepEqual(
      vectors.cookie_parsing_cases.map((c) => c.cookie_headers.join(" | ")).sort(),
      Object.keys(expectedValue).sort(),
    );
  });

  for (const vector of vectors.cookie_parsing_cases) {
    const key = vector.cookie_headers.join(" | ");
    it(`${JSON.stringify(vector.cookie_headers)} → ${JSON.stringify(expectedValue[key])}`, () => {
      assert.equal(findCookie(joined(vector.cookie_headers), "route"), expectedValue[key]);
    });
  }

  describe("with real digests of three servers A B C, the cookie picks the fixture's server", () => {
    const servers = ["127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"];
    const md5 = parseConfig(upstreamConfig(servers, "")).upstreams.get("app")!;
    const sha1 = parseConfig(upstreamConfig(servers, `hash = "sha1"`)).upstreams.get("app")!;
    const digestOf = new Map(md5.servers.map((s, i) => ["ABC"[i], s.cookieValue]));

    for (const vector of vectors.cookie_parsing_cases) {
      const upstream = vector.mode === "hash=sha1" ? sha1 : md5;
      it(`${vector.mode}: ${JSON.stringify(vector.cookie_headers)} → ${vector.expect}`, () => {
        const lines = vector.cookie_headers.map((line) =>
          line
            .replace("<B uppercased hex>", digestOf.get("B")!.toUpperCase())
            .replace("<md5 digest>", digestOf.get("B")!)
            .replace(/\b[ABC]\b/g, (letter) => digestOf.get(letter)!)
        );
        const value = findCookie(joined(lines), "route");
        const server = value === null ? undefined : serverForValue(upstream.sticky!, value);
        assert.equal(
          server === undefined ? "RR" : "ABC"[upstream.servers.indexOf(server)],
          vector.expect,
        );
        assert.equal(server === undefined, vector.set_cookie);
      });
    }
  });

  describe("text=raw: raw_parsing_cases", () => {
    const raw = parseConfig(
      upstreamConfig(["127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"], `text = "raw"`),
    )
      .upstreams.get("app")!;
    for (const vector of vectors.raw_parsing_cases) {
      it(`route=${vector.cookie_value} → ${vector.expect}`, () => {
        const server = serverForValue(
          raw.sticky!,
          findCookie(`route=${vector.cookie_value}`, "route")!,
        );
        assert.equal(
          server === undefined ? "RR" : "ABC"[raw.servers.indexOf(server)],
          vector.expect,
        );
      });
    }
  });
});

describe("findCookie: nginx's pair rules", () => {
  it("returns null without a Cookie header or without the cookie", () => {
    assert.equal(findCookie(null, "route"), null);
    assert.equal(findCookie("", "route"), null);
    assert.equal(findCookie("a=1; b=2", "route"), null);
  });

  it("compares the name case-insensitively", () => {
    assert.equal(findCookie("Route=x", "route"), "x");
    assert.equal(findCookie("rOuTe=x", "route"), "x");
  });

  it('needs "=" right after the name (spaces allowed), so longer names do not match', () => {
    assert.equal(findCookie("route2=a; route=b", "route"), "b");
    assert.equal(findCookie("routeX=a", "route"), null);
    assert.equal(findCookie("route", "route"), null);
    assert.equal(findCookie("route x=1", "route"), null);
    assert.equal(findCookie("route   =a", "route"), "a");
  });

  it("does not match the name inside another pair's name or value", () => {
    assert.equal(findCookie("xroute=a", "route"), null);
    assert.equal(findCookie("a=route=b", "route"), null);
    assert.equal(findCookie("a=x route=b", "route"), null);
  });

  it('skips spaces before a pair and after "="', () => {
    assert.equal(findCookie("a=1;   route=b", "route"), "b");
    assert.equal(findCookie("route=   b", "route"), "b");
  });

  it('ends the value at ";", keeping spaces before it', () => {
    assert.equal(findCookie("route=b  ; x=1", "route"), "b  ");
    assert.equal(findCookie("route=b;x=1", "route"), "b");
  });

  it("trims trailing blanks at the end of the line", () => {
    assert.equal(findCookie("route=b   ", "route"), "b");
  });

  it('splits pairs at "," too, and ends a value at the ", " that joins Cookie lines', () => {
    assert.equal(findCookie("a=1,route=b", "route"), "b");
    assert.equal(findCookie("route=b , route=c", "route"), "b");
    assert.equal(findCookie("a=1, route=b", "route"), "b");
  });

  it("keeps quotes and inner characters as they are", () => {
    assert.equal(findCookie(`route="b"`, "route"), `"b"`);
    assert.equal(findCookie("route=[::1]:9001", "route"), "[::1]:9001");
    assert.equal(findCookie("route=a=b", "route"), "a=b");
  });

  it('returns an empty value as "" (which names no server), not null', () => {
    assert.equal(findCookie("route=", "route"), "");
    assert.equal(findCookie("route=; x=1", "route"), "");
  });

  it("returns the first occurrence across joined lines", () => {
    assert.equal(findCookie(joined(["a=1; route=first", "route=second"]), "route"), "first");
    assert.equal(findCookie(joined(["a=1", "b=2; ROUTE=x"]), "route"), "x");
  });

  it("finds names with the other token characters", () => {
    assert.equal(findCookie("a=1; my.sticky-id=v", "my.sticky-id"), "v");
  });
});
