/**
 * nginx's own `sticky cookie` (nginx 1.30.4): values and Set-Cookie bytes as observed on the real
 * binary (/work/notes/nginx-native-observed.md), through the config as a user writes it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig, type Upstream } from "../../src/config/mod.ts";
import { nginxCookieValue } from "../../src/cookie/value.ts";
import {
  nginxCookieDate,
  renderSetCookie,
  setCookieTemplate,
} from "../../src/cookie/set_cookie.ts";

/** Observed: `sticky cookie …` values on nginx 1.30.4. */
const OBSERVED_VALUES: Record<string, string> = {
  "127.0.0.1:19101": "fcd6d2d84f578c7cf43723b120257fda",
  "127.0.0.1:19102": "7e64277c5fe1b05ce041851cad108bcc",
  "127.0.0.1:19103": "ea86871163b41e6c96b31ef4ed4eb3aa",
  "[::1]:19103": "9566cafb67eeef033359f31fe9f56821",
  "[::ffff:127.0.0.1]:19102": "4212f761b438ce3e0068dd922d7c0835",
  "127.0.0.1:80": "cef54f47984626c9efbf070c50bfad1b",
};
/** The observed clock: Wed, 02 Dec 2026 14:25:49 GMT (and 14:26:04 for the later requests). */
const NOW = Date.UTC(2026, 11, 2, 14, 25, 49);
const LATER = Date.UTC(2026, 11, 2, 14, 26, 4);

function app(sticky: string, servers = `"127.0.0.1:19101", "127.0.0.1:19102"`): Upstream {
  return parseConfig(`[upstreams.app]\nservers = [${servers}]\n[upstreams.app.sticky]\n${sticky}`)
    .upstreams.get("app")!;
}

function setCookie(upstream: Upstream, index: number, now: number): string {
  return renderSetCookie(upstream.servers[index].setCookie!, now);
}

describe("format = nginx: the value is the MD5 of the resolved printable address", () => {
  for (const [printable, value] of Object.entries(OBSERVED_VALUES)) {
    it(`${printable} → ${value}`, () => assert.equal(nginxCookieValue(printable), value));
  }

  it("servers written as nginx.conf had them resolve to the observed values", () => {
    const upstream = app(
      `format = "nginx"\nname = "s"`,
      `"localhost:19101", "127.000.000.001:019102", "[::1]:19103", "localhost", "[::ffff:127.0.0.1]:19102"`,
    );
    assert.deepEqual(upstream.servers.map((s) => s.cookieValue), [
      OBSERVED_VALUES["127.0.0.1:19101"],
      OBSERVED_VALUES["127.0.0.1:19102"],
      OBSERVED_VALUES["[::1]:19103"],
      OBSERVED_VALUES["127.0.0.1:80"],
      OBSERVED_VALUES["[::ffff:127.0.0.1]:19102"],
    ]);
    // The module format hashes the text as written instead: a different value.
    assert.notEqual(
      app(`name = "s"`, `"localhost:19101"`).servers[0].cookieValue,
      OBSERVED_VALUES["127.0.0.1:19101"],
    );
  });

  it("a server's route is its value (nginx's SID)", () => {
    const upstream = app(
      `format = "nginx"\nname = "s"\npath = "/"`,
      `{ address = "127.0.0.1:19101", route = "node1" }, { address = "127.0.0.1:19102", route = "node2" }`,
    );
    assert.equal(setCookie(upstream, 0, NOW), "s=node1; path=/");
    assert.equal(setCookie(upstream, 1, NOW), "s=node2; path=/");
    assert.equal(upstream.sticky!.serverByValue.get("node2"), upstream.servers[1]);
    // The MD5 of a routed server's address does not name it (observed: RR, Set-Cookie s=node1).
    assert.equal(upstream.sticky!.serverByValue.get(OBSERVED_VALUES["127.0.0.1:19102"]), undefined);
  });
});

describe("format = nginx: Set-Cookie bytes as nginx 1.30.4 sent them", () => {
  it("sticky cookie srv; → no attributes at all (no path by default)", () => {
    assert.equal(
      setCookie(app(`format = "nginx"\nname = "srv"`), 0, NOW),
      `srv=${OBSERVED_VALUES["127.0.0.1:19101"]}`,
    );
  });

  it("every attribute, in nginx's order and spelling", () => {
    const upstream = app(`format = "nginx"
name = "srv_id"
expires = "1h"
domain = ".example.com"
path = "/app"
samesite = "lax"
secure = true
httponly = true`);
    assert.equal(
      setCookie(upstream, 0, NOW),
      "srv_id=fcd6d2d84f578c7cf43723b120257fda; expires=Wed, 02-Dec-26 15:25:49 GMT; max-age=3600; domain=.example.com; httponly; secure; samesite=lax; path=/app",
    );
  });

  it("expires = max is nginx's fixed date and max-age", () => {
    assert.equal(
      setCookie(app(`format = "nginx"\nname = "s"\nexpires = "max"`), 0, NOW),
      "s=fcd6d2d84f578c7cf43723b120257fda; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000",
    );
  });

  it("expires = 0 is accepted as nginx does (max-age=0)", () => {
    assert.equal(
      setCookie(app(`format = "nginx"\nname = "s"\nexpires = "0"`), 0, NOW),
      "s=fcd6d2d84f578c7cf43723b120257fda; expires=Wed, 02-Dec-26 14:25:49 GMT; max-age=0",
    );
  });

  it("a date after 2037 has four digits (expires=20y)", () => {
    assert.equal(
      setCookie(app(`format = "nginx"\nname = "s"\nexpires = "20y"`), 0, LATER),
      "s=fcd6d2d84f578c7cf43723b120257fda; expires=Tue, 27-Nov-2046 14:26:04 GMT; max-age=630720000",
    );
  });

  it("1h30m, samesite as written (None, without secure: nginx accepts it)", () => {
    assert.equal(
      setCookie(
        app(`format = "nginx"\nname = "s"\nexpires = "1h30m"\npath = "/"\nsamesite = "None"`),
        0,
        LATER,
      ),
      "s=fcd6d2d84f578c7cf43723b120257fda; expires=Wed, 02-Dec-26 15:56:04 GMT; max-age=5400; samesite=None; path=/",
    );
  });

  it("nginxCookieDate: two-digit years up to 2037, then four", () => {
    assert.equal(
      nginxCookieDate(Date.UTC(2037, 11, 31, 23, 59, 59) / 1000),
      "Thu, 31-Dec-37 23:59:59 GMT",
    );
    assert.equal(nginxCookieDate(Date.UTC(2038, 0, 1) / 1000), "Fri, 01-Jan-2038 00:00:00 GMT");
    assert.equal(
      nginxCookieDate(Date.UTC(2005, 4, 6, 7, 8, 9) / 1000),
      "Fri, 06-May-05 07:08:09 GMT",
    );
  });

  it("a lifetime equal to nginx's max sentinel is sent as max, as nginx does", () => {
    const template = setCookieTemplate({
      name: "s",
      secure: false,
      httpOnly: false,
      partitioned: false,
      expiresSeconds: 2145916555,
      format: "nginx",
    }, "v");
    assert.equal(
      renderSetCookie(template, NOW),
      "s=v; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000",
    );
  });

  it("the module format is unchanged (Path always, capitalised names)", () => {
    assert.equal(
      setCookie(app(`name = "s"\nexpires = "1h"`), 0, NOW),
      "s=fcd6d2d84f578c7cf43723b120257fda; Expires=Wed, 02-Dec-2026 15:25:49 GMT; Path=/",
    );
  });

  it("the sticky table says nginx's Set-Cookie goes on every response", () => {
    assert.equal(app(`format = "nginx"`).sticky!.alwaysSetCookie, true);
    assert.equal(app(``).sticky!.alwaysSetCookie, false);
  });
});
