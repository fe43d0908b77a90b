/**
 * The command line: bad configs exit 2 naming file and key path, --check prints a summary with
 * the cookie values, --version/--help, unknown arguments, a port already in use.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import {
  adminPortOf,
  GATEWAY_RUNTIME,
  ROOT,
  runGateway,
  startGateway,
  stopAllGateways,
  writeTempFile,
} from "../support/gateway.ts";
import { md5, sha1 } from "../support/http.ts";

const VERSION =
  (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string }).version;

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

describe("command line", () => {
  after(stopAllGateways);

  it("a bad hash exits 2 with one line naming the file, the key path, the value and what is allowed", async () => {
    const file = writeTempFile(
      "bad-hash.toml",
      `
[upstreams.app]
servers = ["127.0.0.1:9001"]
[upstreams.app.sticky]
hash = "md55"
`,
    );
    const result = await runGateway(["--config", file]);
    assert.equal(result.code, 2);
    assert.deepEqual(lines(result.stderr), [
      `${file}: upstreams.app.sticky.hash: "md55" is not one of md5, sha1, index`,
    ]);
    assert.equal(result.stdout, "");
  });

  it("every problem of a config is reported, one line each, with its key path", async () => {
    const file = writeTempFile(
      "many.toml",
      `
[server]
conect_timeout = "5s"
read_timeout = "soon"

[upstreams.app]
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 0 }, "127.0.0.1:99999"]

[upstreams.app.sticky]
domain = "a.example; Secure"
path = "/a\\r\\nSet-Cookie: x=1"
name = "bad name"
samesite = "None"
expires = "1ms"

[[routes]]
path = "/"
upstream = "nope"
`,
    );
    const result = await runGateway(["--config", file]);
    assert.equal(result.code, 2);
    const got = lines(result.stderr);
    const expected = [
      /^server\.conect_timeout: unknown key/,
      /^server\.read_timeout: "soon" is not a duration/,
      /^upstreams\.app\.servers\[1\]\.weight: 0 is not a whole number from 1/,
      /^upstreams\.app\.servers\[2\]: port "99999"/,
      /^upstreams\.app\.sticky\.domain: "a\.example; Secure" contains ";"/,
      /^upstreams\.app\.sticky\.path: .* contains ";" or a control character/,
      /^upstreams\.app\.sticky\.name: "bad name" is not a cookie name/,
      /^upstreams\.app\.sticky\.samesite: "None" needs secure = true/,
      /^upstreams\.app\.sticky\.expires: "1ms"/,
      /^routes\[0\]\.upstream: "nope" is not defined/,
    ];
    for (const line of got) assert.ok(line.startsWith(`${file}: `), `names the file: ${line}`);
    for (const pattern of expected) {
      assert.ok(
        got.some((line) => pattern.test(line.slice(file.length + 2))),
        `missing ${pattern}\n${got.join("\n")}`,
      );
    }
    assert.equal(got.length, expected.length, got.join("\n"));
  });

  it("a missing config file exits 2 and names it", async () => {
    const file = `${ROOT}tests/e2e/no-such-config.toml`;
    const result = await runGateway(["--config", file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`^${file.replaceAll(".", "\\.")}: .*not found`));
  });

  it("a file that is not TOML exits 2 with the line", async () => {
    const file = writeTempFile("broken.toml", `[upstreams.app\nservers = [`);
    const result = await runGateway(["--config", file]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`^${file.replaceAll(".", "\\.")}: line \\d+.*not valid TOML`),
    );
  });

  it("--check validates, prints the summary with every server's cookie value, and exits 0 without serving", async () => {
    const file = writeTempFile(
      "ok.toml",
      `
[server]
listen = "127.0.0.1:1"
workers = 3
[upstreams.app]
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 3 }, { address = "127.0.0.1:9004", backup = true }]
[upstreams.app.sticky]
name = "srv"
hash = "sha1"
no_fallback = true

[upstreams.idx]
servers = ["127.0.0.1:9003", "127.0.0.1:9005"]
[upstreams.idx.sticky]
hash = "index"

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/api"
host = "api.example.com"
upstream = "idx"
no_fallback = true
`,
    );
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, new RegExp(`^${file.replaceAll(".", "\\.")}: ok\n`));
    assert.match(out, /listen 127\.0\.0\.1:1 \(workers 3, /);
    assert.match(out, /upstream app: sticky cookie "srv" \(sha1, no_fallback\)/);
    for (const address of ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9004"]) {
      assert.match(
        out,
        new RegExp(`${address.replaceAll(".", "\\.")} .*srv=${sha1(address)}`),
        address,
      );
    }
    assert.match(out, /127\.0\.0\.1:9002 .*weight=3/);
    assert.match(out, /127\.0\.0\.1:9004 .*backup/);
    assert.match(out, /127\.0\.0\.1:9003 .*route=0\b/);
    assert.match(out, /127\.0\.0\.1:9005 .*route=1\b/);
    assert.match(out, /api\.example\.com\/api -> idx \(no_fallback\)/);
    assert.doesNotMatch(out, /listening/);
    assert.equal(result.stderr, "");
  });

  it("--check prints every [server] limit, with 0 spelled out", async () => {
    const file = writeTempFile(
      "limits.toml",
      `
[server]
idle_timeout = 0
client_max_body_size = "1g"
client_max_header_size = "64k"
client_header_timeout = "1m 30s"
keepalive_timeout = 0
max_connections = 500
[upstreams.app]
servers = ["127.0.0.1:9001"]
`,
    );
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^limits: idle_timeout 0 \(none\), client_max_body_size 1g, client_max_header_size 64k, client_header_timeout 1m30s, keepalive_timeout 0 \(never\), max_connections 500$/m,
    );
    const defaults = writeTempFile(
      "defaults.toml",
      `[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`,
    );
    const byDefault = await runGateway(["--config", defaults, "--check"]);
    assert.match(
      byDefault.stdout,
      /^limits: idle_timeout 5m, client_max_body_size 100m, client_max_header_size 32k, client_header_timeout 1m, keepalive_timeout 1m15s, max_connections 10000$/m,
    );
  });

  // --check and start go through one validation, runtime capabilities included: --check used to
  // print "ok" for this on Deno, and start then exited 2.
  it(`upstream_client = "fetch" with sni: --check fails exactly where start would (${GATEWAY_RUNTIME})`, async () => {
    const file = writeTempFile(
      "fetch-sni.toml",
      `
[server]
listen = "127.0.0.1:0"
workers = 1
upstream_client = "fetch"
[upstreams.app]
servers = ["127.0.0.1:9443"]
tls = true
sni = "backend.example"
`,
    );
    const check = await runGateway(["--config", file, "--check"]);
    if (GATEWAY_RUNTIME === "deno") {
      const expected = [
        `${file}: upstreams.app.sni: is not possible with Deno's fetch, which sends the URL's host as SNI; upstream_client = "fetch" on Deno cannot honour it; use upstream_client = "http1" (the default)`,
      ];
      assert.equal(check.code, 2, check.stdout);
      assert.deepEqual(lines(check.stderr), expected);
      assert.equal(check.stdout, "");
      const start = await runGateway(["--config", file]);
      assert.equal(start.code, 2);
      assert.deepEqual(lines(start.stderr), expected);
    } else {
      // Bun's fetch takes a servername: the same config is fine there.
      assert.equal(check.code, 0, check.stderr);
      assert.match(
        check.stdout,
        /https: certificate verified against the runtime's root CAs, sni backend\.example/,
      );
    }
  });

  it("a cookie path outside ASCII exits 2 at --check and at start, giving the path to write", async () => {
    const file = writeTempFile(
      "utf8-path.toml",
      `
[server]
listen = "127.0.0.1:0"
workers = 1
[upstreams.app]
servers = ["127.0.0.1:9001", "127.0.0.1:9002"]
[upstreams.app.sticky]
path = "/日本"
`,
    );
    const expected = [
      `${file}: upstreams.app.sticky.path: "/日本" has characters outside ASCII, which a Set-Cookie header cannot carry (browsers match it against the percent-encoded request path); write path = "/%E6%97%A5%E6%9C%AC"`,
    ];
    for (const args of [["--check"], []]) {
      const result = await runGateway(["--config", file, ...args]);
      assert.equal(result.code, 2, result.stdout);
      assert.deepEqual(lines(result.stderr), expected);
    }
  });

  it('partitioned without secure and samesite = "None" exits 2 naming the key and the fix', async () => {
    const file = writeTempFile(
      "partitioned.toml",
      `[upstreams.app]\nservers = ["127.0.0.1:9001"]\n[upstreams.app.sticky]\npartitioned = true\nsecure = true\n`,
    );
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 2, result.stdout);
    assert.deepEqual(lines(result.stderr), [
      `${file}: upstreams.app.sticky.partitioned: needs secure = true and samesite = "None": a partitioned cookie is for cross-site iframes, where browsers send only SameSite=None cookies, and they drop Partitioned ones without Secure; set samesite = "None", or remove partitioned`,
    ]);
  });

  it("--check on a bad config exits 2 with the problems", async () => {
    const file = writeTempFile("bad-check.toml", `[upstreams.app]\nservers = []\n`);
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(
        `^${file.replaceAll(".", "\\.")}: upstreams\\.app\\.servers: needs at least one server`,
      ),
    );
  });

  it("--check shows md5 values by default", async () => {
    const file = writeTempFile(
      "md5.toml",
      `[upstreams.app]\nservers = ["127.0.0.1:9001"]\n[upstreams.app.sticky]\n`,
    );
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, new RegExp(`route=${md5("127.0.0.1:9001")}`));
    assert.equal(md5("127.0.0.1:9001"), "422db4e6da7b4bba46bd476612df0469");
  });

  it("--version and --help exit 0", async () => {
    const version = await runGateway(["--version"]);
    assert.equal(version.code, 0);
    assert.equal(version.stdout, `sticky-gateway ${VERSION}\n`);
    const help = await runGateway(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage:/);
    assert.match(help.stdout, /--config FILE/);
    assert.match(help.stdout, /--check/);
  });

  it("an unknown argument, or no --config, exits 2 with the usage", async () => {
    const unknown = await runGateway(["--bogus"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown argument "--bogus"/);
    assert.match(unknown.stderr, /Usage:/);
    const none = await runGateway([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--config FILE is required/);
    const dangling = await runGateway(["--config"]);
    assert.equal(dangling.code, 2);
  });

  it("a listen port already in use exits 1 and says so", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const file = writeTempFile(
        "busy.toml",
        `[server]\nlisten = "127.0.0.1:${port}"\nworkers = 1\n[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`,
      );
      const result = await runGateway(["--config", file]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it("healthcheck asks the running gateway's admin listener: 0 when it answers, 1 when not, 2 without [admin]", async () => {
    const toml = (admin: string) =>
      `[server]\nlisten = "127.0.0.1:0"\nworkers = 1\n${admin}\n[upstreams.app]\nservers = ["127.0.0.1:9"]\n`;
    const gw = await startGateway(toml(`[admin]\nlisten = "127.0.0.1:0"`));
    const port = await adminPortOf(gw);
    // The probe reads the address from the file: the running one's port, written out.
    const file = writeTempFile("probe.toml", toml(`[admin]\nlisten = "127.0.0.1:${port}"`));
    const live = await runGateway(["healthcheck", "--config", file]);
    assert.equal(live.code, 0, live.stderr);
    assert.equal((await runGateway(["healthcheck", "--config", file, "--ready"])).code, 0);
    await stopAllGateways();
    // (Stopping removes the temp files: the same file again.)
    const again = writeTempFile("probe.toml", toml(`[admin]\nlisten = "127.0.0.1:${port}"`));
    const gone = await runGateway(["healthcheck", "--config", again]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`healthcheck: http://127\\.0\\.0\\.1:${port}/healthz`));
    const none = await runGateway([
      "healthcheck",
      "--config",
      writeTempFile("none.toml", toml("")),
    ]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no \[admin\] listener/);
  });
});
