import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AdminSettings, readAdminSettings } from "../../src/config/admin.ts";
import { Fields } from "../../src/config/fields.ts";
import { type ConfigProblem, Problems } from "../../src/config/problems.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";

function read(
  table: Record<string, unknown>,
  baseDir = "/nonexistent",
): { settings: AdminSettings; problems: readonly ConfigProblem[] } {
  const problems = new Problems();
  const settings = readAdminSettings(new Fields(table, "admin", problems), problems, baseDir);
  return { settings, problems: problems.list };
}

function withDir<T>(run: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-admin-"));
  try {
    return run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("[admin] settings", () => {
  it("a loopback listen needs no token", () => {
    for (const listen of ["127.0.0.1:9901", "localhost:9901", "[::1]:9901", "127.0.0.2:1"]) {
      const { settings, problems } = read({ listen });
      assert.deepEqual(problems, [], listen);
      assert.equal(settings.listen.text, listen);
      assert.equal(settings.token, undefined);
      assert.ok(Object.isFrozen(settings));
    }
  });

  it("listen is required and must be an address", () => {
    assert.deepEqual(read({}).problems.map((p) => p.path), ["admin.listen"]);
    assert.match(read({}).problems[0].message, /is required .*listen = "127\.0\.0\.1:9901"/);
    const bad = read({ listen: "9901" }).problems;
    assert.equal(bad.length, 1);
    assert.equal(bad[0].path, "admin.listen");
    assert.match(bad[0].message, /expected "host:port"/);
    const number = read({ listen: 9901 }).problems;
    assert.deepEqual(number.map((p) => p.path), ["admin.listen"]);
    assert.match(number[0].message, /not a string/);
  });

  it("a non-loopback listen without a token is refused, naming admin.listen and the fix", () => {
    for (const listen of ["0.0.0.0:9901", "[::]:9901", "10.1.2.3:9901", "admin.internal:9901"]) {
      const { problems } = read({ listen });
      assert.equal(problems.length, 1, listen);
      assert.equal(problems[0].path, "admin.listen");
      assert.match(
        problems[0].message,
        /is not loopback; set admin\.token or admin\.token_file/,
      );
    }
  });

  it("token: at least 16 characters of a bearer token's alphabet", () => {
    const ok = read({ listen: "0.0.0.0:9901", token: TOKEN });
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.settings.token, TOKEN);
    const short = read({ listen: "127.0.0.1:9901", token: "short" }).problems;
    assert.deepEqual(short.map((p) => p.path), ["admin.token"]);
    assert.match(short[0].message, /5 characters; use at least 16/);
    const spaced = read({ listen: "127.0.0.1:9901", token: "with a space in it!!" }).problems;
    assert.deepEqual(spaced.map((p) => p.path), ["admin.token"]);
    assert.match(spaced[0].message, /may hold only/);
    assert.deepEqual(read({ listen: "127.0.0.1:1", token: 42 }).problems.map((p) => p.path), [
      "admin.token",
    ]);
  });

  it("token_file: read at load, trimmed, relative to the config's directory", () => {
    withDir((dir) => {
      writeFileSync(join(dir, "admin.token"), `  ${TOKEN}\n`);
      const relative = read({ listen: "0.0.0.0:9901", token_file: "admin.token" }, dir);
      assert.deepEqual(relative.problems, []);
      assert.equal(relative.settings.token, TOKEN);
      assert.equal(relative.settings.tokenFile, "admin.token");
      const absolute = read({ listen: "0.0.0.0:9901", token_file: join(dir, "admin.token") });
      assert.equal(absolute.settings.token, TOKEN);

      writeFileSync(join(dir, "short.token"), "abc\n");
      const short = read({ listen: "127.0.0.1:9901", token_file: "short.token" }, dir).problems;
      assert.deepEqual(short.map((p) => p.path), ["admin.token_file"]);
      assert.match(short[0].message, /the token in "short\.token" has 3 characters/);
    });
  });

  it("token_file that cannot be read names the key, the file and why", () => {
    withDir((dir) => {
      const missing = read({ listen: "127.0.0.1:9901", token_file: "nope.token" }, dir).problems;
      assert.deepEqual(missing.map((p) => p.path), ["admin.token_file"]);
      assert.match(missing[0].message, /cannot read "nope\.token" \(.*nope\.token\): no such file/);
      const directory = read({ listen: "127.0.0.1:9901", token_file: dir }).problems;
      assert.match(directory[0].message, /it is a directory/);
      const empty = read({ listen: "127.0.0.1:9901", token_file: "" }).problems;
      assert.match(empty[0].message, /is empty/);
    });
  });

  it("token and token_file are exclusive; unknown keys are named", () => {
    const both = read({ listen: "127.0.0.1:9901", token: TOKEN, token_file: "x" }).problems;
    assert.deepEqual(both.map((p) => p.path), ["admin"]);
    assert.match(both[0].message, /token and token_file are exclusive/);
    const typo = read({ listen: "127.0.0.1:9901", tokn: TOKEN }).problems;
    assert.deepEqual(typo.map((p) => p.path), ["admin.tokn"]);
    assert.match(typo[0].message, /unknown key; allowed here: listen, token, token_file/);
  });
});
