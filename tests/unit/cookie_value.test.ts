import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/mod.ts";
import { cookieValue, type CookieValueMode, parseIndexValue } from "../../src/cookie/value.ts";
import { renderSetCookie } from "../../src/cookie/set_cookie.ts";
import { findCookie } from "../../src/cookie/read.ts";
import { serverForValue } from "../../src/sticky/resolve.ts";
import { type ModeVector, stickyDirectiveToToml, upstreamConfig, vectors } from "./vectors.ts";

/** The fixture's directive (`sticky hmac=md5 hmac_key=secret;`) as a cookieValue() mode and key. */
function modeOf(directive: string): { mode: CookieValueMode; hmacKey?: string } {
  const args = new Map(
    directive.replace(/^sticky\s*|;$/g, "").split(/\s+/).filter(Boolean).map((arg) => {
      const [key, value = ""] = arg.split("=");
      return [key, value] as const;
    }),
  );
  if (args.has("hmac")) {
    return { mode: `hmac-${args.get("hmac")}` as CookieValueMode, hmacKey: args.get("hmac_key") };
  }
  if (args.has("text")) return { mode: "raw" };
  return { mode: (args.get("hash") ?? "md5") as CookieValueMode };
}

const MODE_VECTORS: readonly [string, readonly ModeVector[]][] = [
  ["mode_vectors_9001_9003", vectors.mode_vectors_9001_9003],
  ["mode_vectors_19001_19003_live", vectors.mode_vectors_19001_19003_live],
];

for (const [group, modeVectors] of MODE_VECTORS) {
  describe(`cookie values: ${group}`, () => {
    it("covers every mode of the module", () => {
      assert.deepEqual(
        modeVectors.map((v) => modeOf(v.directive).mode).sort(),
        ["hmac-md5", "hmac-sha1", "index", "md5", "md5", "raw", "sha1"],
      );
    });

    for (const vector of modeVectors) {
      const { mode, hmacKey } = modeOf(vector.directive);

      it(`${vector.directive} → cookieValue() gives the module's value`, () => {
        for (const server of vector.servers) {
          assert.equal(
            cookieValue(mode, server.server_text, server.index, hmacKey),
            server.cookie_value,
            server.server_text,
          );
        }
      });

      it(`${vector.directive} → the config's servers carry the value and Set-Cookie`, () => {
        const config = parseConfig(
          upstreamConfig(
            vector.servers.map((s) => s.server_text),
            stickyDirectiveToToml(vector.directive),
          ),
        );
        const app = config.upstreams.get("app")!;
        assert.equal(app.sticky?.mode, mode);
        for (const expected of vector.servers) {
          const server = app.servers[expected.index];
          assert.equal(server.address.text, expected.server_text);
          assert.equal(server.cookieValue, expected.cookie_value);
          assert.equal(renderSetCookie(server.setCookie!, Date.now()), expected.set_cookie);
          assert.equal(serverForValue(app.sticky!, expected.cookie_value), server);
        }
      });
    }
  });
}

describe("cookie values: server text as written (server_text_vectors_live)", () => {
  for (const vector of vectors.server_text_vectors_live) {
    const text = /^server (.+);$/.exec(vector.server_line)![1];
    const { mode } = modeOf(vector.directive);

    it(`${vector.directive} ${vector.server_line} → ${vector.cookie_value}`, () => {
      assert.equal(cookieValue(mode, text, 0), vector.cookie_value);
      // Through the config, next to a second server so the upstream is a real sticky one.
      const config = parseConfig(
        upstreamConfig([text, "127.0.0.1:9"], stickyDirectiveToToml(vector.directive)),
      );
      const server = config.upstreams.get("app")!.servers[0];
      assert.equal(server.address.text, text);
      assert.equal(server.cookieValue, vector.cookie_value);
      assert.equal(renderSetCookie(server.setCookie!, 0), `route=${vector.cookie_value}; Path=/`);
    });
  }

  it("includes IPv6 brackets, a hostname and zero-padded numbers", () => {
    const lines = vectors.server_text_vectors_live.map((v) => v.server_line);
    for (
      const line of [
        "server [::1]:19001;",
        "server localhost:19001;",
        "server 127.0.0.1:019002;",
        "server 127.000.000.001:19003;",
      ]
    ) {
      assert.ok(lines.includes(line), line);
    }
  });

  it('hashes a server without port as written (no ":80" added)', () => {
    const config = parseConfig(upstreamConfig(["10.0.0.1", "10.0.0.2"], `text = "raw"`));
    assert.equal(config.upstreams.get("app")!.servers[0].cookieValue, "10.0.0.1");
    assert.equal(config.upstreams.get("app")!.servers[0].address.port, 80);
  });
});

describe("cookie values: HMAC with a key longer than the 64-byte block", () => {
  const { key, server_text: text, hmac_md5: md5, hmac_sha1: sha1 } =
    vectors.hmac_long_key_read_only;

  it("hashes the key first, like RFC 2104", () => {
    assert.ok(key.length > 64);
    assert.equal(cookieValue("hmac-md5", text, 0, key), md5);
    assert.equal(cookieValue("hmac-sha1", text, 0, key), sha1);
  });

  it("gives the same values through the config", () => {
    for (const [hmac, expected] of [["md5", md5], ["sha1", sha1]]) {
      const config = parseConfig(
        upstreamConfig([text, "127.0.0.1:9002"], `hmac = "${hmac}"\nhmac_key = "${key}"`),
      );
      assert.equal(config.upstreams.get("app")!.servers[0].cookieValue, expected);
    }
  });
});

describe("cookie values: primaries and backups", () => {
  const servers = [
    `{ address = "127.0.0.1:9001" }`,
    `{ address = "127.0.0.1:9004", backup = true }`,
    `{ address = "127.0.0.1:9002", weight = 5 }`,
    `{ address = "127.0.0.1:9005", backup = true }`,
    `{ address = "127.0.0.1:9003", down = true }`,
  ];

  it("numbers primaries 0..n-1 in config order, then backups after them, in index mode", () => {
    const app = parseConfig(upstreamConfig(servers, `hash = "index"`)).upstreams.get("app")!;
    assert.deepEqual(
      app.servers.map((s) => [s.address.text, s.cookieValue]),
      [
        ["127.0.0.1:9001", "0"],
        ["127.0.0.1:9004", "3"],
        ["127.0.0.1:9002", "1"],
        ["127.0.0.1:9005", "4"],
        ["127.0.0.1:9003", "2"],
      ],
    );
    assert.equal(serverForValue(app.sticky!, "3")?.address.text, "127.0.0.1:9004");
    assert.equal(serverForValue(app.sticky!, "5"), undefined);
  });

  it("gives each backup the digest of its own address (not a primary's)", () => {
    const app = parseConfig(upstreamConfig(servers, "")).upstreams.get("app")!;
    const backup = app.backups[0];
    assert.equal(backup.address.text, "127.0.0.1:9004");
    assert.equal(backup.cookieValue, cookieValue("md5", "127.0.0.1:9004", 0));
    assert.notEqual(backup.cookieValue, app.primaries[0].cookieValue);
    assert.equal(new Set(app.servers.map((s) => s.cookieValue)).size, app.servers.length);
    assert.equal(
      renderSetCookie(backup.setCookie!, 0),
      `route=${cookieValue("md5", "127.0.0.1:9004", 0)}; Path=/`,
    );
  });

  it("sets a cookie for the only server of a single-server upstream (the module would not)", () => {
    const app = parseConfig(upstreamConfig(["127.0.0.1:19001"], "")).upstreams.get("app")!;
    assert.equal(
      renderSetCookie(app.servers[0].setCookie!, 0),
      "route=9f23fdfb4b98c8f845ae04e3662871ac; Path=/",
    );
  });
});

describe("parseIndexValue (ngx_atoi)", () => {
  it("reads digits, leading zeros included", () => {
    assert.equal(parseIndexValue("0"), 0);
    assert.equal(parseIndexValue("1"), 1);
    assert.equal(parseIndexValue("01"), 1);
    assert.equal(parseIndexValue("001"), 1);
    assert.equal(parseIndexValue("2"), 2);
    assert.equal(parseIndexValue("42"), 42);
  });

  it("rejects signs, spaces, suffixes, fractions, hex, empty and overflow with -1", () => {
    for (
      const value of [
        "+1",
        "-1",
        "1abc",
        "1.0",
        "0x1",
        "",
        " 2",
        "2 ",
        "99999999999999999999",
        "2147483648",
      ]
    ) {
      assert.equal(parseIndexValue(value), -1, JSON.stringify(value));
    }
    assert.equal(parseIndexValue("2147483647"), 2147483647);
  });

  describe("index_parsing_cases against three servers A B C", () => {
    const app = parseConfig(
      upstreamConfig(["127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"], `hash = "index"`),
    )
      .upstreams.get("app")!;
    const letters = new Map(app.servers.map((s, i) => [s, "ABC"[i]]));

    for (const vector of vectors.index_parsing_cases) {
      it(`route=${vector.cookie_value} → ${vector.expect}`, () => {
        // " 2 (i.e. "route= 2")" is the cookie as sent: the space after "=" is part of the header.
        const header = vector.cookie_value.startsWith(" ")
          ? "route= 2"
          : `route=${vector.cookie_value}`;
        const value = findCookie(header, "route");
        assert.notEqual(value, null);
        const server = serverForValue(app.sticky!, value!);
        assert.equal(server === undefined ? "RR" : letters.get(server), vector.expect);
        assert.equal(server === undefined, vector.set_cookie);
      });
    }
  });
});
