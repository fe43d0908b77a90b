/**
 * TLS for the tests: certificates made at test time with openssl (nothing is committed), an
 * HTTPS upstream, and HTTPS / HTTP/2 clients that verify the gateway's certificate.
 *
 * `makeCertificates()` writes into a fresh temp dir a CA and two server certificates signed by
 * it, ECDSA P-256, valid for two days:
 *
 *   cert/key             CN=localhost, SAN DNS:localhost, IP:127.0.0.1 (gateway and upstreams)
 *   nameCert/nameKey     SAN DNS:app.internal only: reachable at 127.0.0.1 only with sni
 *
 * and a second, unrelated CA (`otherCaFile`) that trusts none of them.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as http2Connect, type IncomingHttpHeaders } from "node:http2";
import { createServer, type Server } from "node:https";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RecordedRequest } from "./upstreams.ts";

export interface Certificates {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  readonly nameCertFile: string;
  readonly nameKeyFile: string;
  readonly otherCaFile: string;
  /** Removes the temp dir. */
  remove(): void;
}

const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = sticky-gateway test CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

function serverExtensions(san: string): string {
  return `basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
}

function makeCa(dir: string, name: string): void {
  writeFileSync(join(dir, `${name}.cnf`), CA_CONFIG);
  openssl(dir, [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-config",
    `${name}.cnf`,
  ]);
}

function makeServerCertificate(dir: string, name: string, cn: string, san: string): void {
  writeFileSync(join(dir, `${name}.ext`), serverExtensions(san));
  openssl(dir, [
    "req",
    "-new",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-set_serial",
    `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  ]);
}

/** A CA, two server certificates signed by it, and an unrelated CA, in a fresh temp dir. */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-tls-"));
  try {
    makeCa(dir, "ca");
    makeCa(dir, "other-ca");
    makeServerCertificate(dir, "server", "localhost", "DNS:localhost, IP:127.0.0.1");
    makeServerCertificate(dir, "named", "app.internal", "DNS:app.internal");
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl failed: ${(error as Error).message}\n${stderr}`);
  }
  const file = (name: string) => join(dir, name);
  return {
    dir,
    caFile: file("ca.pem"),
    ca: readFileSync(file("ca.pem"), "utf8"),
    certFile: file("server.pem"),
    keyFile: file("server.key"),
    cert: readFileSync(file("server.pem"), "utf8"),
    key: readFileSync(file("server.key"), "utf8"),
    nameCertFile: file("named.pem"),
    nameKeyFile: file("named.key"),
    otherCaFile: file("other-ca.pem"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsUpstream {
  readonly name: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, as written in the gateway's `servers`. */
  readonly address: string;
  readonly requests: RecordedRequest[];
  /** TLS connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * An HTTPS upstream (node:https, HTTP/1.1 only) on 127.0.0.1 that answers every request with
 * its name, `x-upstream: NAME` and a Set-Cookie of its own, and records what it received.
 */
export async function startTlsUpstream(
  name: string,
  certFile: string,
  keyFile: string,
): Promise<TlsUpstream> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer(
    { cert: readFileSync(certFile), key: readFileSync(keyFile) },
    (req, res) => {
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
      }
      const record: RecordedRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers,
        bodyLength: 0,
        bodySha256: "",
        complete: false,
      };
      requests.push(record);
      req.on("data", (chunk: Buffer) => record.bodyLength += chunk.length);
      req.on("end", () => {
        record.complete = true;
        res.writeHead(200, {
          "content-type": "text/plain",
          "x-upstream": name,
          "set-cookie": `upstream=${name}; Path=/`,
        });
        res.end(name);
      });
    },
  );
  server.on("secureConnection", (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => {});
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        const timer = setTimeout(resolve, 2000);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

export interface HttpsAnswer {
  readonly status: number;
  /** Header lines as received, names in lower case. */
  readonly headers: [string, string][];
  readonly body: string;
  /** What ALPN settled on ("http/1.1", "h2"), or "" for none. */
  readonly protocol: string;
}

/** All values of a header (lower-case name). */
export function values(answer: HttpsAnswer, name: string): string[] {
  return answer.headers.filter(([n]) => n === name).map(([, v]) => v);
}

export interface HttpsRequest {
  readonly path?: string;
  readonly cookie?: string;
  /** PEM of the CA that must have signed the server's certificate. */
  readonly ca: string;
  readonly timeoutMs?: number;
}

/** One HTTPS/1.1 request to 127.0.0.1:`port` on a new connection, verifying the certificate. */
export function httpsGet(port: number, request: HttpsRequest): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (request.cookie !== undefined) headers.cookie = request.cookie;
    // ALPNProtocols reaches tls.connect, though RequestOptions does not list it.
    const options: RequestOptions & { ALPNProtocols: string[] } = {
      host: "127.0.0.1",
      port,
      path: request.path ?? "/",
      ca: request.ca,
      agent: false,
      headers,
      ALPNProtocols: ["http/1.1"],
      timeout: request.timeoutMs ?? 10_000,
    };
    const req = httpsRequest(
      options,
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const lines: [string, string][] = [];
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            lines.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]]);
          }
          const alpn = (res.socket as { alpnProtocol?: string | false } | null)?.alpnProtocol;
          resolve({
            status: res.statusCode ?? 0,
            headers: lines,
            body: Buffer.concat(chunks).toString("utf8"),
            protocol: typeof alpn === "string" ? alpn : "",
          });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("HTTPS request timed out")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Requests over one HTTP/2 connection (ALPN offering h2 only) to 127.0.0.1:`port`. Rejects when
 * the server does not take h2.
 */
export async function http2Get(
  port: number,
  ca: string,
  requests: readonly { path?: string; cookie?: string }[],
  timeoutMs = 10_000,
): Promise<HttpsAnswer[]> {
  const session = http2Connect(`https://127.0.0.1:${port}`, { ca });
  const failed = new Promise<never>((_, reject) => {
    session.once("error", reject);
  });
  failed.catch(() => {}); // observed through Promise.race below
  const timer = setTimeout(
    () => session.destroy(new Error("HTTP/2 requests timed out")),
    timeoutMs,
  );
  try {
    const answers: HttpsAnswer[] = [];
    for (const r of requests) {
      const stream = session.request({
        ":path": r.path ?? "/",
        ...(r.cookie === undefined ? {} : { cookie: r.cookie }),
      });
      const answer = new Promise<HttpsAnswer>((resolve, reject) => {
        let head: IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        stream.on("response", (h) => head = h);
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          const lines: [string, string][] = [];
          for (const [name, value] of Object.entries(head)) {
            if (name.startsWith(":") || value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) lines.push([name, String(v)]);
          }
          resolve({
            status: Number(head[":status"]),
            headers: lines,
            body: Buffer.concat(chunks).toString("utf8"),
            protocol: session.alpnProtocol ?? "",
          });
        });
        stream.on("error", reject);
      });
      stream.end();
      answers.push(await Promise.race([answer, failed]));
    }
    return answers;
  } finally {
    clearTimeout(timer);
    session.close();
  }
}

export interface Http2Transfer {
  readonly status: number;
  readonly protocol: string;
  /** Response body bytes received, and their sha256. */
  readonly bytes: number;
  readonly sha256: string;
  readonly text: string;
}

/**
 * One HTTP/2 request that may stream a body up (`upload` chunks, written as the stream takes
 * them) and hashes the response body as it streams down (large downloads are not kept).
 */
export function http2Transfer(
  port: number,
  ca: string,
  request: { method?: string; path: string; cookie?: string; upload?: readonly Uint8Array[] },
  timeoutMs = 20_000,
): Promise<Http2Transfer> {
  return new Promise((resolve, reject) => {
    // Browser-sized flow-control windows (Chrome: 6 MiB per stream, 15 MiB per connection).
    // With node:http2's 64 KiB defaults, Deno's node:http2 client takes seconds for 8 MiB from
    // any Deno.serve (its WINDOW_UPDATEs set the pace; curl takes 40 ms). Bun's client stalls
    // after setLocalWindowSize (Bun 1.4.5), and does not need it: the stream window is enough.
    const session = http2Connect(`https://127.0.0.1:${port}`, {
      ca,
      settings: { initialWindowSize: 6 << 20 },
    });
    if (!("Bun" in globalThis)) {
      session.once("connect", () => session.setLocalWindowSize(15 << 20));
    }
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`HTTP/2 ${request.path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    };
    session.once("error", fail);
    const stream = session.request({
      ":method": request.method ?? "GET",
      ":path": request.path,
      ...(request.cookie === undefined ? {} : { cookie: request.cookie }),
    });
    stream.on("error", fail);
    let status = 0;
    let bytes = 0;
    let head = "";
    const hash = createHash("sha256");
    stream.on("response", (h) => status = Number(h[":status"]));
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (head.length < 1024) head += chunk.toString("utf8");
    });
    stream.on("end", () => {
      clearTimeout(timer);
      const protocol = session.alpnProtocol ?? "";
      session.close();
      resolve({ status, protocol, bytes, sha256: hash.digest("hex"), text: head });
    });
    const chunks = request.upload ?? [];
    let next = 0;
    const write = () => {
      while (next < chunks.length) {
        if (!stream.write(chunks[next++])) return stream.once("drain", write);
      }
      stream.end();
    };
    write();
  });
}
