/**
 * Issue 12's keys in `[upstreams.NAME.sticky]`: mode, keys_file, keys_env, max_idle, max_life,
 * clock_skew, header, indirect, hmac_key_file, hmac_key_env. Every problem names its key path
 * and never a secret; a good config builds the token check, header servers and hidden cookie.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { createHmac } from "node:crypto";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import { checkSummary } from "../../src/config/summary.ts";

const dir = mkdtempSync(join(tmpdir(), "sticky-token-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET_1 = "first-secret-of-the-ring-0123456789abcdef";
const SECRET_2 = "second-secret-of-the-ring-0123456789abcdef";
writeFileSync(join(dir, "good.keys"), `# ring\nk2:${SECRET_2}\nk1:${SECRET_1}\n`);
writeFileSync(join(dir, "short.keys"), `k1:${SECRET_1}\nk0:tooshort-secret\n`);
writeFileSync(join(dir, "hmac.key"), "module-hmac-secret\n");
const FILE = join(dir, "gw.toml");

type Problem = ConfigError["problems"][number];

function problemsOf(text: string): readonly Problem[] {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
  assert.fail(`config was accepted:\n${text}`);
}

const config = (sticky: string, servers = `"127.0.0.1:9001", "127.0.0.1:9002"`) =>
  `[upstreams.app]\nservers = [${servers}]\n[upstreams.app.sticky]\n${sticky}\n`;
const TOKEN = `mode = "token"\nkeys_file = "good.keys"`;

/** [what, config, [key path, message pattern]…] */
const REJECTED: [string, string, [string, RegExp][]][] = [
  ["an unknown mode", config(`mode = "signed"`), [
    ["upstreams.app.sticky.mode", /^"signed" is not one of cookie, token$/],
  ]],
  ["token mode without keys", config(`mode = "token"`), [
    [
      "upstreams.app.sticky.keys_file",
      /^mode = "token" needs its keys: set keys_file = .* or keys_env/,
    ],
  ]],
  ["keys_file and keys_env together", config(`${TOKEN}\nkeys_env = "STICKY_KEYS"`), [
    ["upstreams.app.sticky.keys_env", /^keys_file and keys_env are exclusive/],
  ]],
  ["a missing keys file", config(`mode = "token"\nkeys_file = "nope.keys"`), [
    ["upstreams.app.sticky.keys_file", /^file "nope.keys" does not exist \(relative paths/],
  ]],
  ["a short secret, by line and key id", config(`mode = "token"\nkeys_file = "short.keys"`), [
    [
      "upstreams.app.sticky.keys_file",
      /^file "short.keys": line 2: the secret of key "k0" has 15 bytes; use at least 32/,
    ],
  ]],
  ["an unset variable", config(`mode = "token"\nkeys_env = "STICKY_TEST_UNSET_VAR"`), [
    ["upstreams.app.sticky.keys_env", /^environment variable STICKY_TEST_UNSET_VAR is not set/],
  ]],
  ["a variable name that is none", config(`mode = "token"\nkeys_env = "A B"`), [
    ["upstreams.app.sticky.keys_env", /^"A B" is not an environment variable name/],
  ]],
  [
    "the module's value keys under token mode",
    config(
      `${TOKEN}\nhash = "sha1"\nhmac = "md5"\nhmac_key = "k"\ntext = "raw"\nformat = "module"\naccept_legacy = true`,
    ),
    ["hash", "hmac", "hmac_key", "text", "format", "accept_legacy"].map((key) => [
      `upstreams.app.sticky.${key}`,
      /^does not apply under mode = "token"/,
    ]),
  ],
  [
    "token keys without token mode",
    config(`max_idle = "30m"\nmax_life = "1d"\nclock_skew = "10s"\nkeys_file = "good.keys"`),
    ["keys_file", "max_idle", "max_life", "clock_skew"].map((key) => [
      `upstreams.app.sticky.${key}`,
      /^is used only with mode = "token"/,
    ]),
  ],
  ["keys_env without token mode", config(`keys_env = "X"`), [
    ["upstreams.app.sticky.keys_env", /^is used only with mode = "token"/],
  ]],
  ["max_idle not a duration", config(`${TOKEN}\nmax_idle = "soon"`), [
    ["upstreams.app.sticky.max_idle", /is not a duration/],
  ]],
  ["max_idle below a second", config(`${TOKEN}\nmax_idle = "500ms"`), [
    ["upstreams.app.sticky.max_idle", /too short; the least allowed is 1s/],
  ]],
  ["max_life below a second", config(`${TOKEN}\nmax_life = "0"`), [
    ["upstreams.app.sticky.max_life", /too short; the least allowed is 1s/],
  ]],
  ["max_life shorter than max_idle", config(`${TOKEN}\nmax_idle = "1h"\nmax_life = "10m"`), [
    ["upstreams.app.sticky.max_life", /^is shorter than max_idle/],
  ]],
  ["clock_skew not a duration", config(`${TOKEN}\nclock_skew = true`), [
    ["upstreams.app.sticky.clock_skew", /is not a duration/],
  ]],
  ["a header name with a space", config(`header = "X Session"`), [
    ["upstreams.app.sticky.header", /^"X Session" cannot carry a session id/],
  ]],
  ["header = Cookie", config(`header = "Cookie"`), [
    ["upstreams.app.sticky.header", /^"Cookie" cannot carry a session id/],
  ]],
  ["indirect not a boolean", config(`indirect = "yes"`), [
    ["upstreams.app.sticky.indirect", /not true or false|boolean/],
  ]],
  [
    "indirect with cookie = false",
    config(
      `cookie = false\nheader = "X-Session-Id"\nindirect = true`,
    ),
    [["upstreams.app.sticky.indirect", /^does not apply with cookie = false/]],
  ],
  [
    "hmac_key and hmac_key_file together",
    config(`hmac = "md5"\nhmac_key = "k"\nhmac_key_file = "hmac.key"`),
    [
      ["upstreams.app.sticky.hmac_key_file", /^hmac_key and hmac_key_file are exclusive/],
    ],
  ],
  ["a missing hmac_key_file", config(`hmac = "md5"\nhmac_key_file = "none.key"`), [
    ["upstreams.app.sticky.hmac_key_file", /^file "none.key" does not exist/],
  ]],
  ["hmac_key_env unset", config(`hmac = "sha1"\nhmac_key_env = "STICKY_TEST_UNSET_VAR"`), [
    ["upstreams.app.sticky.hmac_key_env", /^environment variable STICKY_TEST_UNSET_VAR is not set/],
  ]],
  ["hmac_key_file without hmac", config(`hmac_key_file = "hmac.key"`), [
    ["upstreams.app.sticky.hmac_key", /^is only used with hmac/],
  ]],
  ["hmac_key_file under format = nginx", config(`format = "nginx"\nhmac_key_file = "hmac.key"`), [
    ["upstreams.app.sticky.hmac_key_file", /^does not apply under format = "nginx"/],
  ]],
];

describe("config: issue 12's sticky keys", () => {
  for (const [what, text, expected] of REJECTED) {
    it(`rejects ${what}`, () => {
      const problems = problemsOf(text);
      for (const [path, pattern] of expected) {
        const found = problems.filter((p) => p.path === path);
        assert.ok(
          found.some((p) => pattern.test(p.message)),
          `${path} ${pattern}: got ${JSON.stringify(problems)}`,
        );
      }
      const all = JSON.stringify(problems);
      for (const secret of [SECRET_1, SECRET_2, "tooshort-secret", "module-hmac-secret"]) {
        assert.ok(!all.includes(secret), `a secret in ${all}`);
      }
    });
  }

  it("builds the keyring (first key signs), lifetimes and a token check per snapshot", () => {
    const text = config(`${TOKEN}\nmax_idle = "30m"\nmax_life = "1d"\nclock_skew = "5s"`);
    const one = parseConfig(text, FILE).upstreams.get("app")!;
    const token = one.sticky!.token!;
    assert.deepEqual(token.keyIds, ["k2", "k1"]);
    assert.equal(token.keyring.signing.id, "k2");
    assert.deepEqual(token.lifetimes, { maxIdleS: 1800, maxLifeS: 86400, clockSkewS: 5 });
    assert.equal(token.upstream, "app");
    // Token mode has no fixed values: nothing routes by the module's digests.
    assert.equal(one.sticky!.serverByValue.size, 0);
    assert.ok(one.servers.every((s) => s.cookieValue === "" && s.setCookie !== undefined));
    const two = parseConfig(text, FILE).upstreams.get("app")!;
    assert.notEqual(two.sticky!.token!.check, token.check, "a reload gets a fresh check");
    assert.equal(token.lifetimes.clockSkewS, 5);
    const defaults = parseConfig(config(TOKEN), FILE).upstreams.get("app")!.sticky!.token!;
    assert.deepEqual(defaults.lifetimes, { maxIdleS: 0, maxLifeS: 0, clockSkewS: 30 });
  });

  it("reads keys from keys_env", () => {
    process.env.STICKY_TEST_KEYS = `k9:${SECRET_1}\nk8:${SECRET_2}`;
    try {
      const app = parseConfig(config(`mode = "token"\nkeys_env = "STICKY_TEST_KEYS"`), FILE)
        .upstreams.get("app")!;
      assert.deepEqual(app.sticky!.token!.keyIds, ["k9", "k8"]);
    } finally {
      delete process.env.STICKY_TEST_KEYS;
    }
  });

  it("header and indirect in any mode; the header's servers split into primaries and backups", () => {
    const app = parseConfig(
      config(
        `header = "X-Session-Id"\nindirect = true\nname = "SRV"`,
        `"127.0.0.1:9001", { address = "127.0.0.1:9002", backup = true }`,
      ),
      FILE,
    ).upstreams.get("app")!;
    assert.equal(app.sticky!.header!.lowerName, "x-session-id");
    assert.deepEqual(app.sticky!.header!.primaries.map((s) => s.index), [0]);
    assert.deepEqual(app.sticky!.header!.backups.map((s) => s.index), [1]);
    assert.equal(app.sticky!.hideCookie, "srv");
    const plain = parseConfig(config(""), FILE).upstreams.get("app")!;
    assert.equal(plain.sticky!.hideCookie, undefined);
    assert.equal(plain.sticky!.header, undefined);
    const routeOnly = parseConfig(config(`cookie = false\nheader = "X-Session-Id"`), FILE);
    assert.equal(routeOnly.upstreams.get("app")!.sticky!.header!.name, "X-Session-Id");
  });

  it("hmac_key_file and hmac_key_env give the module's hmac values (the final line break is not the key)", () => {
    const expected = createHmac("md5", "module-hmac-secret").update("127.0.0.1:9001").digest("hex");
    const fromFile = parseConfig(config(`hmac = "md5"\nhmac_key_file = "hmac.key"`), FILE);
    assert.equal(fromFile.upstreams.get("app")!.servers[0].cookieValue, expected);
    process.env.STICKY_TEST_HMAC = "module-hmac-secret";
    try {
      const fromEnv = parseConfig(config(`hmac = "md5"\nhmac_key_env = "STICKY_TEST_HMAC"`), FILE);
      assert.equal(fromEnv.upstreams.get("app")!.servers[0].cookieValue, expected);
    } finally {
      delete process.env.STICKY_TEST_HMAC;
    }
  });

  it("--check shows key ids and where they come from, never a secret", () => {
    const summary = checkSummary(
      parseConfig(
        config(`${TOKEN}\nmax_idle = "30m"\nheader = "X-Session-Id"\nindirect = true`),
        FILE,
      ),
    );
    assert.match(
      summary,
      /signed tokens, keys k2, k1 from file "good.keys" \(k2 signs\), max_idle 30m/,
    );
    assert.match(summary, /header X-Session-Id, indirect/);
    assert.ok(!summary.includes(SECRET_1) && !summary.includes(SECRET_2));
  });
});
