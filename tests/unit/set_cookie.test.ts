import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/mod.ts";
import {
  invalidHeaderValue,
  netscapeDate,
  renderSetCookie,
  setCookieTemplate,
  type StickyCookieAttributes,
} from "../../src/cookie/set_cookie.ts";
import { stickyDirectiveToToml, upstreamConfig, vectors } from "./vectors.ts";

/** The fixture's clock: Sat, 21 Nov 2026 12:12:02 GMT. */
const NOW_MS = Date.UTC(2026, 10, 21, 12, 12, 2);
const SERVERS = ["127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"];

const BASE: StickyCookieAttributes = {
  name: "route",
  path: "/",
  secure: false,
  httpOnly: false,
  partitioned: false,
};

describe("Set-Cookie: the fixture's set_cookie_format cases, byte for byte", () => {
  it("uses the clock the fixture names", () => {
    assert.equal(Date.parse("Sat, 21 Nov 2026 12:12:02 GMT"), NOW_MS);
  });

  for (const vector of vectors.set_cookie_format.cases) {
    it(`${vector.directive} (served by ${vector.served_by})`, () => {
      const app = parseConfig(upstreamConfig(SERVERS, stickyDirectiveToToml(vector.directive)))
        .upstreams.get("app")!;
      const server = vector.served_by.startsWith("third server")
        ? app.servers[2]
        : app.servers.find((s) => s.address.text === vector.served_by)!;
      assert.ok(server, vector.served_by);
      const clocks = vector.now === "any"
        ? [NOW_MS, 0, Date.UTC(2031, 0, 1)]
        : [Date.parse(vector.now)];
      for (const nowMs of clocks) {
        assert.equal(renderSetCookie(server.setCookie!, nowMs), vector.set_cookie);
      }
    });
  }
});

describe("Set-Cookie: attributes and their order", () => {
  it("writes name=value; Path=/ by default, with no Max-Age, SameSite or Version", () => {
    assert.equal(renderSetCookie(setCookieTemplate(BASE, "v"), NOW_MS), "route=v; Path=/");
  });

  it("orders Domain, Expires, Path, Secure, HttpOnly, then SameSite and Partitioned", () => {
    const all: StickyCookieAttributes = {
      name: "srv",
      domain: ".example.com",
      path: "/app",
      expiresSeconds: 3600,
      secure: true,
      httpOnly: true,
      sameSite: "None",
      partitioned: true,
    };
    assert.equal(
      renderSetCookie(setCookieTemplate(all, "v"), NOW_MS),
      "srv=v; Domain=.example.com; Expires=Sat, 21-Nov-2026 13:12:02 GMT; Path=/app; Secure; HttpOnly; SameSite=None; Partitioned",
    );
  });

  it("adds each attribute only when configured", () => {
    const cases: readonly [Partial<StickyCookieAttributes>, string][] = [
      [{ domain: "example.com" }, "route=v; Domain=example.com; Path=/"],
      [{ secure: true }, "route=v; Path=/; Secure"],
      [{ httpOnly: true }, "route=v; Path=/; HttpOnly"],
      [{ sameSite: "Lax" }, "route=v; Path=/; SameSite=Lax"],
      [{ sameSite: "Strict", httpOnly: true }, "route=v; Path=/; HttpOnly; SameSite=Strict"],
      [{ partitioned: true, secure: true }, "route=v; Path=/; Secure; Partitioned"],
      [
        { expiresSeconds: 1, sameSite: "Lax" },
        "route=v; Expires=Sat, 21-Nov-2026 12:12:03 GMT; Path=/; SameSite=Lax",
      ],
      [{ path: "/a b" }, "route=v; Path=/a b"],
    ];
    for (const [extra, expected] of cases) {
      assert.equal(
        renderSetCookie(setCookieTemplate({ ...BASE, ...extra }, "v"), NOW_MS),
        expected,
      );
    }
  });

  it("copies name and value raw (no quoting or escaping)", () => {
    assert.equal(
      renderSetCookie(setCookieTemplate({ ...BASE, name: "SRV" }, "[::1]:19001"), NOW_MS),
      "SRV=[::1]:19001; Path=/",
    );
  });

  it("computes Expires from the clock of each response, in whole seconds", () => {
    const template = setCookieTemplate({ ...BASE, expiresSeconds: 90 }, "v");
    assert.equal(
      renderSetCookie(template, NOW_MS),
      "route=v; Expires=Sat, 21-Nov-2026 12:13:32 GMT; Path=/",
    );
    assert.equal(
      renderSetCookie(template, NOW_MS + 999),
      "route=v; Expires=Sat, 21-Nov-2026 12:13:32 GMT; Path=/",
    );
    assert.equal(
      renderSetCookie(template, NOW_MS + 1000),
      "route=v; Expires=Sat, 21-Nov-2026 12:13:33 GMT; Path=/",
    );
  });

  it("rolls Expires over days, months and years", () => {
    const year = setCookieTemplate({ ...BASE, expiresSeconds: 365 * 86_400 }, "v");
    assert.equal(
      renderSetCookie(year, NOW_MS),
      "route=v; Expires=Sun, 21-Nov-2027 12:12:02 GMT; Path=/",
    );
    const hour = setCookieTemplate({ ...BASE, expiresSeconds: 3600 }, "v");
    assert.equal(
      renderSetCookie(hour, Date.UTC(2026, 11, 31, 23, 30)),
      "route=v; Expires=Fri, 01-Jan-2027 00:30:00 GMT; Path=/",
    );
  });
});

describe("netscapeDate", () => {
  it("writes `Www, DD-Mon-YYYY HH:MM:SS GMT` with dashes", () => {
    assert.equal(netscapeDate(NOW_MS / 1000 + 90), "Sat, 21-Nov-2026 12:13:32 GMT");
    assert.equal(netscapeDate(1795263212), "Sat, 21-Nov-2026 12:13:32 GMT");
  });

  it("zero-pads day, hours, minutes and seconds", () => {
    assert.equal(netscapeDate(0), "Thu, 01-Jan-1970 00:00:00 GMT");
    assert.equal(
      netscapeDate(Date.UTC(2026, 1, 3, 4, 5, 6) / 1000),
      "Tue, 03-Feb-2026 04:05:06 GMT",
    );
  });

  it("pads the year to four digits", () => {
    assert.equal(netscapeDate(Date.UTC(999, 0, 1) / 1000), "Tue, 01-Jan-0999 00:00:00 GMT");
  });

  it("names the days Sun..Sat", () => {
    // 2026-11-22 is a Sunday.
    const names = Array.from(
      { length: 7 },
      (_, i) => netscapeDate(Date.UTC(2026, 10, 22 + i) / 1000).slice(0, 3),
    );
    assert.deepEqual(names, ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]);
  });

  it("names the months Jan..Dec", () => {
    const names = Array.from(
      { length: 12 },
      (_, m) => netscapeDate(Date.UTC(2026, m, 15) / 1000).slice(8, 11),
    );
    assert.deepEqual(names, [
      "Jan",
      "Feb",
      "Mar",
      "Apr",
      "May",
      "Jun",
      "Jul",
      "Aug",
      "Sep",
      "Oct",
      "Nov",
      "Dec",
    ]);
  });
});

describe("invalidHeaderValue: what a Set-Cookie value may hold", () => {
  it("accepts visible ASCII with spaces inside", () => {
    assert.equal(invalidHeaderValue("route=v; Path=/a b; Secure"), undefined);
    assert.equal(
      invalidHeaderValue("SRV=[::1]:19001; Expires=Sat, 21-Nov-2026 12:13:32 GMT; Path=/"),
      undefined,
    );
  });

  it("names the first character outside visible ASCII, by code point and position", () => {
    // "/日本" made Headers throw (not a ByteString); "/café" went out as one Latin-1 byte.
    assert.equal(
      invalidHeaderValue("route=v; Path=/日本"),
      "character U+65E5 at 15 is not visible ASCII",
    );
    assert.equal(
      invalidHeaderValue("route=v; Path=/café"),
      "character U+00E9 at 18 is not visible ASCII",
    );
    assert.equal(invalidHeaderValue("r=😀"), "character U+1F600 at 2 is not visible ASCII");
    assert.equal(invalidHeaderValue("r=v\r\nx: y"), "character U+000D at 3 is not visible ASCII");
    assert.equal(invalidHeaderValue("r=v\u007f"), "character U+007F at 3 is not visible ASCII");
  });

  it("refuses whitespace at either end, which the runtimes' Headers trim away", () => {
    assert.equal(invalidHeaderValue("route=v; Path=/a "), "it starts or ends with whitespace");
    assert.equal(invalidHeaderValue(" route=v"), "it starts or ends with whitespace");
  });
});
