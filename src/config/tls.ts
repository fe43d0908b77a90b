/**
 * The TLS keys of the config: `[server] tls = { cert, key }` (HTTPS, HTTP/2 by ALPN) and
 * `[upstreams.NAME] tls = true` with `ca`, `insecure`, `sni` (HTTPS to the upstream servers).
 *
 * Files are read and checked when the config loads, so a missing file, a file that holds no PEM,
 * or a key that does not belong to the certificate is a config error (exit 2) naming the key,
 * not a failure at the first request. Relative paths are relative to the config file's directory.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { describe, Fields, isTable } from "./fields.ts";
import { firstLine, readConfigFile } from "./files.ts";
import type { ServerTls, UpstreamTls } from "./types.ts";

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PRIVATE_KEY_BLOCK = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;
const HOSTNAME =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Reads `[server] tls`; undefined when it is absent or has problems (recorded). */
export function readServerTls(fields: Fields, baseDir: string): ServerTls | undefined {
  const value = fields.raw("tls");
  if (value === undefined) return undefined;
  const path = fields.keyPath("tls");
  if (!isTable(value)) {
    fields.problems.add(
      path,
      `${
        describe(value)
      } is not a table; write tls = { cert = "/etc/ssl/gateway.pem", key = "/etc/ssl/gateway.key" }`,
    );
    return undefined;
  }
  const tls = new Fields(value, path, fields.problems);
  const certFile = tls.string("cert");
  const keyFile = tls.string("key");
  tls.finish();
  for (const [key, file] of [["cert", certFile], ["key", keyFile]] as const) {
    if (file === undefined) {
      tls.problems.add(
        tls.keyPath(key),
        `is required: the PEM ${key === "cert" ? "certificate (chain)" : "private key"} file`,
      );
    }
  }
  if (certFile === undefined || keyFile === undefined) return undefined;
  const cert = readPem(tls, "cert", certFile, baseDir);
  const key = readPem(tls, "key", keyFile, baseDir);
  if (cert === undefined || key === undefined) return undefined;

  const certificates = cert.match(CERTIFICATE_BLOCK);
  if (certificates === null) {
    tls.problems.add(
      tls.keyPath("cert"),
      `${JSON.stringify(certFile)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
    return undefined;
  }
  if (!PRIVATE_KEY_BLOCK.test(key)) {
    tls.problems.add(
      tls.keyPath("key"),
      `${JSON.stringify(keyFile)} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    );
    return undefined;
  }
  const leaf = parseCertificate(tls, "cert", certFile, certificates);
  if (leaf === undefined) return undefined;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    tls.problems.add(
      tls.keyPath("key"),
      `${JSON.stringify(keyFile)} is not a usable private key (${firstLine(error)})${
        /ENCRYPTED/.test(key) ? "; it is encrypted: store it without a passphrase" : ""
      }`,
    );
    return undefined;
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    tls.problems.add(
      tls.keyPath("key"),
      `${JSON.stringify(keyFile)} is not the private key of the certificate in ${
        JSON.stringify(certFile)
      } (server.tls.cert)`,
    );
    return undefined;
  }
  return Object.freeze({ certFile, keyFile, cert, key });
}

/**
 * Reads `tls`, `ca`, `insecure` and `sni` of one `[upstreams.NAME]` table; undefined when the
 * upstream is plain HTTP (or the keys have problems, which are recorded).
 */
export function readUpstreamTls(fields: Fields, baseDir: string): UpstreamTls | undefined {
  const enabled = fields.boolean("tls", false);
  const caFile = fields.string("ca");
  const insecure = fields.boolean("insecure", false);
  const sni = fields.string("sni");
  const problems = fields.problems;
  if (!enabled) {
    const used = { ca: caFile !== undefined, insecure, sni: sni !== undefined };
    for (const [key, isUsed] of Object.entries(used)) {
      if (!isUsed) continue;
      problems.add(
        fields.keyPath(key),
        "is only used with tls = true; add tls = true or remove it",
      );
    }
    return undefined;
  }
  let ok = true;
  if (insecure && caFile !== undefined) {
    problems.add(
      fields.path,
      "ca and insecure = true are exclusive: insecure skips verification, so ca would not be used; remove one",
    );
    ok = false;
  }
  if (sni !== undefined && (!HOSTNAME.test(sni) || IPV4.test(sni))) {
    problems.add(
      fields.keyPath("sni"),
      `${
        JSON.stringify(sni)
      } is not a host name (SNI carries DNS names only; without sni an IP address is checked against the certificate's IP entries)`,
    );
    ok = false;
  }
  let ca: string | undefined;
  if (caFile !== undefined) {
    ca = readPem(fields, "ca", caFile, baseDir);
    const certificates = ca?.match(CERTIFICATE_BLOCK) ?? null;
    if (ca === undefined) {
      ok = false;
    } else if (certificates === null) {
      problems.add(
        fields.keyPath("ca"),
        `${JSON.stringify(caFile)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
      ok = false;
    } else if (parseCertificate(fields, "ca", caFile, certificates) === undefined) {
      ok = false;
    }
  }
  if (!ok) return undefined;
  const name = sni?.toLowerCase();
  const poolKey = `tls ${insecure ? "insecure" : "verify"} sni=${name ?? ""} ca=${caFile ?? ""} `;
  return Object.freeze({
    ...(ca === undefined ? {} : { ca, caFile }),
    insecure,
    ...(name === undefined ? {} : { sni: name }),
    poolKey,
  });
}

/** Reads a PEM file named by `key`; records a problem and returns undefined when it cannot. */
function readPem(fields: Fields, key: string, file: string, baseDir: string): string | undefined {
  return readConfigFile(
    fields.problems,
    fields.keyPath(key),
    file,
    baseDir,
    "a PEM certificate or key",
  );
}

/** Parses every certificate block; returns the first (the leaf), or undefined (recorded). */
function parseCertificate(
  fields: Fields,
  key: string,
  file: string,
  blocks: readonly string[],
): X509Certificate | undefined {
  const parsed: X509Certificate[] = [];
  for (const block of blocks) {
    try {
      parsed.push(new X509Certificate(block));
    } catch (error) {
      fields.problems.add(
        fields.keyPath(key),
        `${JSON.stringify(file)} holds a certificate that cannot be parsed (${firstLine(error)})`,
      );
      return undefined;
    }
  }
  return parsed[0];
}
