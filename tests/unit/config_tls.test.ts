/**
 * The TLS keys of the config: `[server] tls = { cert, key }` and `[upstreams.NAME] tls`, `ca`,
 * `insecure`, `sni`. Certificates are made by openssl at test time (tests/support/tls.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfigFile, parseConfig } from "../../src/config/mod.ts";
import { type Certificates, makeCertificates } from "../support/tls.ts";

type Problem = ConfigError["problems"][number];

const md5 = (text: string) => createHash("md5").update(text).digest("hex");
const toml = (text: string) => JSON.stringify(text);

const UPSTREAM = `
[upstreams.app]
servers = ["127.0.0.1:9001"]
`;

/** The problems a config is rejected with (fails the test when it is accepted). */
function problemsOf(text: string): readonly Problem[] {
  try {
    parseConfig(text, "gw.toml");
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
  assert.fail(`config was accepted:\n${text}`);
}

function assertOnlyProblem(text: string, path: string, message: string | RegExp): void {
  const problems = problemsOf(text);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0].path, path);
  if (typeof message === "string") assert.equal(problems[0].message, message);
  else assert.match(problems[0].message, message);
}

let certs: Certificates;
before(() => {
  certs = makeCertificates();
});
after(() => certs?.remove());

const serverTls = (cert: string, key: string) =>
  `[server]\ntls = { cert = ${toml(cert)}, key = ${toml(key)} }\n${UPSTREAM}`;

describe("[server] tls", () => {
  it("is absent by default (plain HTTP)", () => {
    const config = parseConfig(UPSTREAM);
    assert.equal("tls" in config.server, false);
  });

  it("reads the certificate and key when the config loads", () => {
    const config = parseConfig(serverTls(certs.certFile, certs.keyFile));
    assert.deepEqual(config.server.tls, {
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      cert: certs.cert,
      key: certs.key,
    });
  });

  it("also as a [server.tls] table", () => {
    const config = parseConfig(
      `[server.tls]\ncert = ${toml(certs.certFile)}\nkey = ${toml(certs.keyFile)}\n${UPSTREAM}`,
    );
    assert.equal(config.server.tls?.cert, certs.cert);
  });

  it("resolves relative paths against the config file's directory", () => {
    const dir = join(certs.dir, "conf");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "gw.toml");
    writeFileSync(file, serverTls("../server.pem", "../server.key"));
    const config = loadConfigFile(file);
    assert.equal(config.server.tls?.cert, certs.cert);
    assert.equal(config.server.tls?.certFile, "../server.pem");
  });

  it("a missing file is an error naming server.tls.cert / server.tls.key", () => {
    assertOnlyProblem(
      serverTls("/nonexistent/gw.pem", certs.keyFile),
      "server.tls.cert",
      `cannot read "/nonexistent/gw.pem": no such file`,
    );
    assertOnlyProblem(
      serverTls(certs.certFile, "/nonexistent/gw.key"),
      "server.tls.key",
      `cannot read "/nonexistent/gw.key": no such file`,
    );
  });

  it("a relative path that is missing shows where it was looked for", () => {
    assertOnlyProblem(
      serverTls("missing.pem", certs.keyFile),
      "server.tls.cert",
      /^cannot read "missing\.pem" \(\/.*\/missing\.pem\): no such file$/,
    );
  });

  it("a directory is not a certificate", () => {
    assertOnlyProblem(
      serverTls(certs.dir, certs.keyFile),
      "server.tls.cert",
      `cannot read ${toml(certs.dir)}: it is a directory`,
    );
  });

  it("needs both cert and key", () => {
    assertOnlyProblem(
      `[server]\ntls = { cert = ${toml(certs.certFile)} }\n${UPSTREAM}`,
      "server.tls.key",
      "is required: the PEM private key file",
    );
    assertOnlyProblem(
      `[server]\ntls = { key = ${toml(certs.keyFile)} }\n${UPSTREAM}`,
      "server.tls.cert",
      "is required: the PEM certificate (chain) file",
    );
  });

  it("must be a table, and rejects unknown keys", () => {
    assertOnlyProblem(
      `[server]\ntls = true\n${UPSTREAM}`,
      "server.tls",
      `true is not a table; write tls = { cert = "/etc/ssl/gateway.pem", key = "/etc/ssl/gateway.key" }`,
    );
    assertOnlyProblem(
      `[server]\ntls = { cert = ${toml(certs.certFile)}, key = ${
        toml(certs.keyFile)
      }, chain = "x" }\n${UPSTREAM}`,
      "server.tls.chain",
      "unknown key; allowed here: cert, key",
    );
  });

  it("files that hold no PEM of the right kind", () => {
    assertOnlyProblem(
      serverTls(certs.keyFile, certs.keyFile),
      "server.tls.cert",
      `${toml(certs.keyFile)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
    assertOnlyProblem(
      serverTls(certs.certFile, certs.certFile),
      "server.tls.key",
      `${toml(certs.certFile)} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    );
    const garbage = join(certs.dir, "garbage.pem");
    writeFileSync(
      garbage,
      "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    assertOnlyProblem(
      serverTls(garbage, certs.keyFile),
      "server.tls.cert",
      /^".*garbage\.pem" holds a certificate that cannot be parsed \(/,
    );
  });

  it("a key that does not belong to the certificate", () => {
    assertOnlyProblem(
      serverTls(certs.certFile, certs.nameKeyFile),
      "server.tls.key",
      `${toml(certs.nameKeyFile)} is not the private key of the certificate in ${
        toml(certs.certFile)
      } (server.tls.cert)`,
    );
  });
});

const upstreamTls = (keys: string) =>
  `[upstreams.app]\nservers = ["127.0.0.1:9001", "backend.internal:9443"]\n${keys}\n[upstreams.app.sticky]\n`;

describe("[upstreams.NAME] tls, ca, insecure, sni", () => {
  it("plain by default: neither the upstream nor its servers carry tls", () => {
    const app = parseConfig(upstreamTls("")).upstreams.get("app")!;
    assert.equal("tls" in app, false);
    for (const server of app.servers) assert.equal("tls" in server, false);
  });

  it("tls = true: verification on against the runtime's roots, shared by every server", () => {
    const app = parseConfig(upstreamTls("tls = true")).upstreams.get("app")!;
    assert.deepEqual(app.tls, { insecure: false, poolKey: "tls verify sni= ca= " });
    for (const server of app.servers) assert.equal(server.tls, app.tls);
  });

  it("the cookie value is the address text's, with or without TLS (migration compatibility)", () => {
    const plain = parseConfig(upstreamTls("")).upstreams.get("app")!;
    const tls = parseConfig(upstreamTls(`tls = true\nca = ${toml(certs.caFile)}`)).upstreams.get(
      "app",
    )!;
    assert.deepEqual(tls.servers.map((s) => s.cookieValue), [
      md5("127.0.0.1:9001"),
      md5("backend.internal:9443"),
    ]);
    assert.deepEqual(
      tls.servers.map((s) => s.cookieValue),
      plain.servers.map((s) => s.cookieValue),
    );
    // A host alone keeps nginx's default port 80, TLS or not; the text stays the cookie input.
    const bare =
      parseConfig(`[upstreams.app]\nservers = ["backend"]\ntls = true\n[upstreams.app.sticky]\n`)
        .upstreams.get("app")!.servers[0];
    assert.equal(bare.address.port, 80);
    assert.equal(bare.cookieValue, md5("backend"));
  });

  it("ca is read when the config loads; sni is kept in lower case", () => {
    const app = parseConfig(
      upstreamTls(`tls = true\nca = ${toml(certs.caFile)}\nsni = "App.Internal"`),
    ).upstreams.get("app")!;
    assert.deepEqual(app.tls, {
      ca: certs.ca,
      caFile: certs.caFile,
      insecure: false,
      sni: "app.internal",
      poolKey: `tls verify sni=app.internal ca=${certs.caFile} `,
    });
  });

  it("pool keys differ between TLS settings, so connections are never shared across them", () => {
    const keys = [
      "tls = true",
      "tls = true\ninsecure = true",
      `tls = true\nca = ${toml(certs.caFile)}`,
      `tls = true\nsni = "a.example"`,
    ].map((keys) => parseConfig(upstreamTls(keys)).upstreams.get("app")!.tls!.poolKey);
    assert.equal(new Set(keys).size, keys.length);
  });

  it("ca, insecure and sni need tls = true", () => {
    for (const key of [`ca = ${toml(certs.caFile)}`, "insecure = true", `sni = "a.example"`]) {
      const name = key.split(" ")[0];
      assertOnlyProblem(
        upstreamTls(key),
        `upstreams.app.${name}`,
        "is only used with tls = true; add tls = true or remove it",
      );
    }
    // insecure = false without tls says nothing wrong.
    assert.ok(parseConfig(upstreamTls("insecure = false")));
  });

  it("ca and insecure = true are exclusive", () => {
    assertOnlyProblem(
      upstreamTls(`tls = true\ninsecure = true\nca = ${toml(certs.caFile)}`),
      "upstreams.app",
      "ca and insecure = true are exclusive: insecure skips verification, so ca would not be used; remove one",
    );
  });

  it("sni must be a DNS name", () => {
    for (const sni of ["127.0.0.1", "bad name", "a..b", ""]) {
      assertOnlyProblem(
        upstreamTls(`tls = true\nsni = ${toml(sni)}`),
        "upstreams.app.sni",
        /is not a host name \(SNI carries DNS names only/,
      );
    }
  });

  it("a missing or non-PEM ca names upstreams.NAME.ca", () => {
    assertOnlyProblem(
      upstreamTls(`tls = true\nca = "/nonexistent/ca.pem"`),
      "upstreams.app.ca",
      `cannot read "/nonexistent/ca.pem": no such file`,
    );
    assertOnlyProblem(
      upstreamTls(`tls = true\nca = ${toml(certs.keyFile)}`),
      "upstreams.app.ca",
      `${toml(certs.keyFile)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
  });

  it("wrong types", () => {
    assertOnlyProblem(
      upstreamTls(`tls = "yes"`),
      "upstreams.app.tls",
      `"yes" is not true or false`,
    );
    assertOnlyProblem(
      upstreamTls(`tls = true\ninsecure = 1`),
      "upstreams.app.insecure",
      "1 is not true or false",
    );
    assertOnlyProblem(
      upstreamTls(`tls = true\nca = 5`),
      "upstreams.app.ca",
      "5 is not a string; write it in quotes",
    );
  });

  it("keys are per upstream: a TLS upstream and a plain one side by side", () => {
    const config = parseConfig(`
[upstreams.secure]
servers = ["127.0.0.1:9443"]
tls = true

[upstreams.plain]
servers = ["127.0.0.1:9443"]

[[routes]]
path = "/"
upstream = "plain"

[[routes]]
path = "/s"
upstream = "secure"
`);
    assert.ok(config.upstreams.get("secure")!.servers[0].tls);
    assert.equal(config.upstreams.get("plain")!.servers[0].tls, undefined);
  });
});
