/**
 * `sticky-gateway import`: every nginx config of tests/import/corpus/ is imported by the gateway
 * under test (Deno, Bun or the binary), its warnings are the expected ones (file:line:column),
 * and the TOML passes the same gateway's `--check`, with each server's cookie value computed from
 * its address text as written in nginx.conf. Every config of tests/import/bad/ exits 2 with its
 * error at file:line:column, and leaves an existing output file as it was.
 *
 * Each case's expect.json: `warnings` (each a prefix of one warning line, relative to the case's
 * directory; as many lines as listed), `notes` and `toml` (text the TOML holds), `summary` (text
 * `--check` prints), `values` ([address, "md5" | "sha1"]: the cookie value `--check` shows for
 * it), `tls` (write tls/cert.pem and tls/key.pem first), `main` (the file to import).
 *
 * Real nginx agrees (`nginx -t` of the build `nginx` names, tests/nginx/build.sh): a corpus config
 * with `nginx` is one nginx accepts (`nginxSays`: a warning nginx prints too); a bad config with
 * `nginx` is one nginx refuses with the words `nginxSays`, which the importer's error holds too,
 * at the same line; `nginxAccepts`: nginx takes it, the gateway cannot (documented). Skipped,
 * saying so, where the nginx sources are absent.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, runGateway, stopAllGateways } from "../support/gateway.ts";
import { md5, sha1 } from "../support/http.ts";
import { makeCertificates } from "../support/tls.ts";
import { type NginxKind, nginxSkipReason, requireNginx } from "../support/nginx.ts";

interface NginxExpectation {
  readonly nginx?: NginxKind;
  readonly nginxSays?: string;
  readonly nginxAccepts?: NginxKind;
}

interface CorpusExpectation extends NginxExpectation {
  readonly main?: string;
  readonly tls?: boolean;
  readonly warnings: readonly string[];
  readonly notes?: readonly string[];
  readonly toml?: readonly string[];
  readonly summary?: readonly string[];
  readonly values?: readonly (readonly [string, "md5" | "sha1"])[];
}

interface BadExpectation extends NginxExpectation {
  readonly error: string;
  readonly contains?: string;
}

const CORPUS = join(ROOT, "tests", "import", "corpus");
const BAD = join(ROOT, "tests", "import", "bad");
const dirs: string[] = [];

/** A copy of a case's directory (the importer resolves includes and certificates from there). */
function copyCase(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-import-"));
  dirs.push(dir);
  cpSync(source, dir, { recursive: true });
  return `${dir}/`;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

function warningLines(stderr: string, dir: string): string[] {
  return stderr.split("\n").filter((l) => l.includes(": warning: ")).map((l) =>
    l.replaceAll(dir, "")
  );
}

function writeCertificates(dir: string): void {
  const certificates = makeCertificates();
  try {
    cpSync(certificates.certFile, join(dir, "tls", "cert.pem"));
    cpSync(certificates.keyFile, join(dir, "tls", "key.pem"));
  } finally {
    certificates.remove();
  }
}

const NGINX_SKIP = nginxSkipReason();

/** `nginx -t` of `kind` on a case's copy: whether nginx accepts it, and what it printed. */
function nginxTest(kind: NginxKind, dir: string, main: string): { ok: boolean; output: string } {
  mkdirSync(join(dir, "logs"), { recursive: true });
  const result = spawnSync(
    requireNginx(kind),
    ["-t", "-p", dir, "-c", join(dir, main), "-e", "stderr"],
    { encoding: "utf8", timeout: 10_000 },
  );
  return { ok: result.status === 0, output: result.stderr.replaceAll(dir, "") };
}

const cases = readdirSync(CORPUS).sort();
const badCases = readdirSync(BAD).sort();

describe("import: the corpus of nginx configs", () => {
  after(async () => {
    await stopAllGateways();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("has at least 20 configs", () => {
    assert.ok(cases.length >= 20, `${cases.length} configs`);
  });

  for (const name of cases) {
    it(`${name}: imported with its expected warnings, and the TOML passes --check`, async () => {
      const expect = readJson<CorpusExpectation>(join(CORPUS, name, "expect.json"));
      const dir = copyCase(join(CORPUS, name));
      if (expect.tls) writeCertificates(dir);
      const output = join(dir, "gateway.toml");
      const imported = await runGateway([
        "import",
        join(dir, expect.main ?? "nginx.conf"),
        "-o",
        output,
      ]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.equal(imported.stdout, "");
      const warnings = warningLines(imported.stderr, dir);
      for (const wanted of expect.warnings) {
        assert.ok(
          warnings.some((line) => line.startsWith(wanted)),
          `no warning starting ${JSON.stringify(wanted)} in:\n${warnings.join("\n")}`,
        );
      }
      assert.equal(warnings.length, expect.warnings.length, warnings.join("\n"));
      const toml = readFileSync(output, "utf8");
      for (const text of [...(expect.notes ?? []), ...(expect.toml ?? [])]) {
        assert.ok(toml.includes(text), `the TOML lacks ${JSON.stringify(text)}:\n${toml}`);
      }
      // Every warning is in the TOML too, as a comment naming its file and line.
      for (const line of warnings) {
        const [where] = line.split(": warning: ");
        assert.ok(toml.includes(`#   ${dir}${where}: `), `no comment for ${where}`);
      }
      const checked = await runGateway(["--config", output, "--check"]);
      assert.equal(checked.code, 0, `${checked.stderr}\n${toml}`);
      for (const text of expect.summary ?? []) {
        assert.ok(
          checked.stdout.includes(text),
          `--check lacks ${JSON.stringify(text)}:\n${checked.stdout}`,
        );
      }
      for (const [address, hash] of expect.values ?? []) {
        const value = hash === "md5" ? md5(address) : sha1(address);
        const line = checked.stdout.split("\n").find((l) => l.startsWith(`  ${address} `));
        assert.ok(line?.endsWith(`=${value}`), `${address}: ${line} should end with =${value}`);
      }
    });

    const corpusExpect = readJson<CorpusExpectation>(join(CORPUS, name, "expect.json"));
    if (corpusExpect.nginx === undefined) continue;
    const kind = corpusExpect.nginx;
    it(`${name}: real nginx (${kind}) accepts it${NGINX_SKIP ? ` [${NGINX_SKIP}]` : ""}`, {
      skip: NGINX_SKIP !== undefined,
    }, async () => {
      const dir = copyCase(join(CORPUS, name));
      if (corpusExpect.tls) writeCertificates(dir);
      const main = corpusExpect.main ?? "nginx.conf";
      const nginx = nginxTest(kind, dir, main);
      assert.ok(nginx.ok, nginx.output);
      if (corpusExpect.nginxSays !== undefined) {
        assert.ok(nginx.output.includes(corpusExpect.nginxSays), nginx.output);
        const imported = await runGateway(["import", join(dir, main)]);
        assert.ok(imported.stderr.includes(corpusExpect.nginxSays), imported.stderr);
      }
    });
  }
});

describe("import: bad input", () => {
  after(async () => {
    await stopAllGateways();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const name of badCases) {
    it(`${name}: exit 2, the error at file:line:column, the output file untouched`, async () => {
      const expect = readJson<BadExpectation>(join(BAD, name, "expect.json"));
      const dir = copyCase(join(BAD, name));
      const output = join(dir, "gateway.toml");
      writeFileSync(output, "# the previous config\n");
      const result = await runGateway(["import", join(dir, "nginx.conf"), "-o", output]);
      assert.equal(result.code, 2, result.stderr);
      const first = result.stderr.split("\n")[0].replaceAll(dir, "");
      assert.ok(first.startsWith(expect.error), `${first}\n should start with ${expect.error}`);
      if (expect.contains) assert.ok(first.includes(expect.contains), first);
      assert.equal(readFileSync(output, "utf8"), "# the previous config\n");
      assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".tmp")), []);
    });

    const badExpect = readJson<BadExpectation>(join(BAD, name, "expect.json"));
    const kind = badExpect.nginx ?? badExpect.nginxAccepts;
    if (kind === undefined) continue;
    const verdict = badExpect.nginx ? `refuses it: ${badExpect.nginxSays}` : "accepts it";
    it(`${name}: real nginx (${kind}) ${verdict}${NGINX_SKIP ? ` [${NGINX_SKIP}]` : ""}`, {
      skip: NGINX_SKIP !== undefined,
    }, async () => {
      const dir = copyCase(join(BAD, name));
      const nginx = nginxTest(kind, dir, "nginx.conf");
      if (badExpect.nginxAccepts !== undefined) {
        assert.ok(nginx.ok, nginx.output);
        return;
      }
      assert.equal(nginx.ok, false, nginx.output);
      const says = badExpect.nginxSays!;
      assert.ok(nginx.output.includes(says), `nginx said:\n${nginx.output}`);
      const ours = (await runGateway(["import", join(dir, "nginx.conf")])).stderr.split("\n")[0]
        .replaceAll(dir, "");
      assert.ok(ours.includes(says), ours);
      // nginx names the line (where the directive ends; these are one-line directives).
      const nginxLine = / in (\S+):(\d+)\n/.exec(nginx.output);
      if (nginxLine !== null) assert.ok(ours.startsWith(`${nginxLine[1]}:${nginxLine[2]}:`), ours);
    });
  }
});

describe("import: the command line", () => {
  after(async () => {
    await stopAllGateways();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("without -o the TOML goes to stdout and the warnings to stderr", async () => {
    const dir = copyCase(join(CORPUS, "nginx-docs-upstream"));
    const result = await runGateway(["import", join(dir, "nginx.conf")]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\[upstreams\.backend\]/m);
    assert.match(result.stdout, /"backend2\.example\.com:8080"/);
    assert.equal(warningLines(result.stderr, dir).length, 2);
    assert.match(result.stderr, /2 warning\(s\)/);
  });

  it("a missing nginx.conf exits 2 naming it; missing arguments exit 2; --help lists import", async () => {
    const missing = await runGateway(["import", "/nonexistent/nginx.conf"]);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      "/nonexistent/nginx.conf: cannot read the config: No such file or directory\n",
    );
    const none = await runGateway(["import"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /import needs the nginx config file/);
    const help = await runGateway(["--help"]);
    assert.match(help.stdout, /sticky-gateway import NGINX_CONF \[-o FILE\]/);
    const importHelp = await runGateway(["import", "--help"]);
    assert.equal(importHelp.code, 0);
    assert.match(importHelp.stdout, /^Usage: sticky-gateway import NGINX_CONF \[-o FILE\]/);
    const extra = await runGateway(["import", "a.conf", "b.conf"]);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /one nginx config at a time/);
  });

  it("an output file that cannot be written: exit 2, nothing left behind", async () => {
    const dir = copyCase(join(CORPUS, "nginx-docs-upstream"));
    const result = await runGateway([
      "import",
      join(dir, "nginx.conf"),
      "-o",
      join(dir, "no-dir", "gw.toml"),
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /cannot write .*no-dir\/gw\.toml/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".tmp") || f === "no-dir"), []);
  });
});
