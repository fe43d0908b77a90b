/**
 * The nginx config tokenizer and reader: nginx's quoting, escapes and comments, errors at
 * line:column, includes (globs sorted, hidden files skipped, relative to the conf directory,
 * cycles), unbalanced braces.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tokenize, type Word } from "../../src/import/nginx/tokenizer.ts";
import { type Directive, readNginxConfig } from "../../src/import/nginx/reader.ts";
import { NginxParseError } from "../../src/import/nginx/errors.ts";
import { expandGlob } from "../../src/import/nginx/glob.ts";

function words(text: string): string[][] {
  return tokenize(text, "t.conf").map((s) =>
    s.kind === "end" ? ["}"] : s.words.map((w: Word) => w.value)
  );
}

function parseError(run: () => unknown): NginxParseError {
  try {
    run();
  } catch (error) {
    if (error instanceof NginxParseError) return error;
    throw error;
  }
  assert.fail("no NginxParseError");
}

describe("nginx tokenizer", () => {
  it("splits words on spaces, tabs and line ends; ; { } end statements", () => {
    assert.deepEqual(words("a b\tc\n d;\ne {\n}\n"), [["a", "b", "c", "d"], ["e"], ["}"]]);
  });

  it("quotes keep spaces and are removed; \\\" \\' \\\\ \\t \\r \\n are unescaped, other escapes kept", () => {
    assert.deepEqual(words(`k "a b" 'c;d' "x\\"y" 'p\\'q' "t\\tn\\n" "\\d";`), [
      ["k", "a b", "c;d", 'x"y', "p'q", "t\tn\n", "\\d"],
    ]);
  });

  it("a backslash keeps the next character from ending a word", () => {
    assert.deepEqual(words("k a\\ b c\\;d;"), [["k", "a\\ b", "c\\;d"]]);
  });

  it("# starts a comment only where a word starts; ${ does not open a block", () => {
    assert.deepEqual(words("k a#b # comment ; {\nset $x ${y}z;"), [[
      "k",
      "a#b",
      "set",
      "$x",
      "${y}z",
    ]]);
  });

  it('a quote inside a word is a character: expires="1h 30m" is two words, as nginx reads it', () => {
    assert.deepEqual(words(`sticky expires="1h 30m";`), [["sticky", 'expires="1h', '30m"']]);
  });

  it("words remember their line and column (1-based)", () => {
    const [statement] = tokenize("\n  server\n    10.0.0.1:80 'w';", "f.conf");
    if (statement.kind === "end") assert.fail("a directive expected");
    assert.deepEqual(statement.words.map((w) => [w.at.line, w.at.column]), [[2, 3], [3, 5], [
      3,
      17,
    ]]);
  });

  it("errors at the character nginx stops at, saying what was expected", () => {
    assert.equal(
      parseError(() => tokenize(`k "a"b;`, "f")).message,
      `f:1:6: unexpected "b" after the quoted "a": expected a space, ";" or "{"`,
    );
    assert.equal(
      parseError(() => tokenize(`k;\n  ;`, "f")).message,
      `f:2:3: unexpected ";": expected a directive name before it`,
    );
    assert.match(
      parseError(() => tokenize(`a b\n}`, "f")).message,
      /^f:2:1: unexpected "}": expected ";" to end "a"/,
    );
    assert.match(
      parseError(() => tokenize(`a 'b;\n`, "f")).message,
      /^f:1:3: unexpected end of file: the ' opened here is never closed/,
    );
    assert.match(
      parseError(() => tokenize(`a b`, "f")).message,
      /^f:1:4: unexpected end of file, expecting ";" or "}"/,
    );
  });
});

function tree(files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "nginx-reader-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function names(directives: readonly Directive[]): string[] {
  return directives.flatMap((d) => [
    `${d.name}${d.args.map((a) => ` ${a.value}`).join("")}@${
      d.at.file.split("/").pop()
    }:${d.at.line}`,
    ...(d.block ? names(d.block).map((n) => `  ${n}`) : []),
  ]);
}

describe("nginx config reader", () => {
  it("reads blocks into a tree and includes in place, globs sorted, hidden files skipped", () => {
    const t = tree({
      "nginx.conf": "http {\n  include conf.d/*.conf;\n  a 1;\n}\n",
      "conf.d/b.conf": "b 2;",
      "conf.d/a.conf": "upstream u {\n  server x;\n}",
      "conf.d/.hidden.conf": "broken {",
      "conf.d/c.txt": "broken {",
    });
    try {
      const { directives } = readNginxConfig(join(t.dir, "nginx.conf"));
      assert.deepEqual(names(directives), [
        "http@nginx.conf:1",
        "  upstream u@a.conf:1",
        "    server x@a.conf:2",
        "  b 2@b.conf:1",
        "  a 1@nginx.conf:3",
      ]);
    } finally {
      t.remove();
    }
  });

  it("relative includes start at the main config's directory (nginx's conf prefix), else the including file's", () => {
    const t = tree({
      "nginx.conf": "include sites/app;",
      "sites/app": "include snippets/a.conf;\ninclude local.conf;",
      "snippets/a.conf": "a 1;",
      "sites/local.conf": "b 2;",
    });
    try {
      const { directives, warnings } = readNginxConfig(join(t.dir, "nginx.conf"));
      assert.deepEqual(names(directives), ["a 1@a.conf:1", "b 2@local.conf:1"]);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0].message,
        /include "local.conf": found relative to .*sites, the including file's directory/,
      );
      assert.equal(warnings[0].line, 2);
    } finally {
      t.remove();
    }
  });

  it("a glob matching nothing is a note; a missing file, a directory or a cycle is an error at the include", () => {
    const t = tree({
      "glob.conf": "include none/*.conf;\na 1;",
      "missing.conf": "\n  include nope.conf;",
      "dir.conf": "include d;",
      "d/x": "",
      "loop.conf": "include loop2.conf;",
      "loop2.conf": "x 1;\ninclude loop.conf;",
    });
    try {
      const glob = readNginxConfig(join(t.dir, "glob.conf"));
      assert.deepEqual(names(glob.directives), ["a 1@glob.conf:2"]);
      assert.equal(glob.warnings[0].level, "note");
      const missing = parseError(() => readNginxConfig(join(t.dir, "missing.conf")));
      assert.equal(missing.line, 2);
      assert.equal(missing.column, 3);
      assert.match(missing.reason, /cannot read .*nope\.conf: No such file or directory/);
      assert.match(
        parseError(() => readNginxConfig(join(t.dir, "dir.conf"))).reason,
        /Is a directory/,
      );
      const loop = parseError(() => readNginxConfig(join(t.dir, "loop.conf")));
      assert.match(
        loop.message,
        /loop2\.conf:2:1: cyclic include: .*loop\.conf → .*loop2\.conf → .*loop\.conf$/,
      );
    } finally {
      t.remove();
    }
  });

  it("unbalanced braces: an unclosed block names where it opened; a stray } where it is", () => {
    const t = tree({ "open.conf": "http {\n  server {\n  }\n", "close.conf": "a 1;\n}\n" });
    try {
      assert.match(
        parseError(() => readNginxConfig(join(t.dir, "open.conf"))).message,
        /open\.conf:1:1: the "http" block opened here is never closed/,
      );
      assert.match(
        parseError(() => readNginxConfig(join(t.dir, "close.conf"))).message,
        /close\.conf:2:1: unexpected "}": no block is open here/,
      );
    } finally {
      t.remove();
    }
  });

  it("the main file unreadable: the error names the file", () => {
    const error = parseError(() => readNginxConfig("/nonexistent/nginx.conf"));
    assert.equal(
      error.message,
      "/nonexistent/nginx.conf: cannot read the config: No such file or directory",
    );
  });

  it("expandGlob: ?, [..] and [!..] in any part", () => {
    const t = tree({ "a1/x.conf": "", "a2/x.conf": "", "b1/x.conf": "", "a3/y.conf": "" });
    try {
      const got = (p: string) => expandGlob(join(t.dir, p)).map((f) => f.slice(t.dir.length + 1));
      assert.deepEqual(got("a?/x.conf"), ["a1/x.conf", "a2/x.conf"]);
      assert.deepEqual(got("[ab]1/*.conf"), ["a1/x.conf", "b1/x.conf"]);
      assert.deepEqual(got("a[!1]/*"), ["a2/x.conf", "a3/y.conf"]);
    } finally {
      t.remove();
    }
  });
});
