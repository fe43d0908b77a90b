/**
 * Real upstream servers for the end-to-end tests, on 127.0.0.1 with node:http (Deno and Bun both
 * provide it), plus the two kinds of broken upstream: a port nobody listens on (refuses) and a
 * server that accepts and never answers (read_timeout).
 *
 * A "named" upstream answers every request with its name (and `x-upstream: NAME`) and records
 * what it received. Some paths do more:
 *
 *   /gzip                 GZIP_BODY with Content-Encoding: gzip (and Content-Length)
 *   /set-cookie           the sticky cookie's name set by the upstream itself, plus two others
 *   /redirect             302, Location: /landing?from=redirect&x=%20y
 *   /redirect-abs         301, Location: http://other.example:8443/p?q=1#frag
 *   /hop                  hop-by-hop response headers (and Connection-listed X-Upstream-Hop)
 *   /download?bytes=N     N bytes of PATTERN, streamed; with &hold=1 the first 64 KiB, then the
 *                         rest only after release()
 *   /upload               the body's length and sha256 as JSON; "body-start" fires on its first bytes
 *   /slow?ms=N            answers after N ms
 *   /status/NNN           that status
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { gzipSync } from "node:zlib";

export const GZIP_TEXT: string = "sticky-gateway gzip pass-through check. ".repeat(200);
/** What every upstream sends for /gzip: made once, so the test can compare byte for byte. */
export const GZIP_BODY: Buffer = gzipSync(Buffer.from(GZIP_TEXT), { level: 9 });

/** 1 MiB of random bytes; large bodies repeat it. */
export const PATTERN: Buffer = randomBytes(1 << 20);

/** The sha256 of `length` bytes of PATTERN repeated. */
export function patternSha256(length: number): string {
  const hash = createHash("sha256");
  for (let at = 0; at < length; at += PATTERN.length) {
    hash.update(PATTERN.subarray(0, Math.min(PATTERN.length, length - at)));
  }
  return hash.digest("hex");
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  /** Header lines as received: [name, value] in order. */
  readonly headers: [string, string][];
  /** Filled in when the body has been read. */
  bodyLength: number;
  bodySha256: string;
  complete: boolean;
}

/** All values of a recorded request header (case-insensitive name). */
export function requestHeaderValues(request: RecordedRequest, name: string): string[] {
  const lower = name.toLowerCase();
  return request.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

export interface NamedUpstream {
  readonly name: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, as written in the gateway's `servers`. */
  readonly address: string;
  readonly requests: RecordedRequest[];
  /** "request" (RecordedRequest) on arrival, "body-start" (bytes) on the first body bytes. */
  readonly events: EventEmitter;
  /** Lets held /download responses continue. */
  release(): void;
  /** Stops listening and drops open connections: the port now refuses. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
}

function listen(server: Server | NetServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server | NetServer, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function writeAll(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", () => resolve()));
}

/** Starts a named upstream on 127.0.0.1 (port 0 = any free port). */
export async function startNamedUpstream(name: string, port = 0): Promise<NamedUpstream> {
  const requests: RecordedRequest[] = [];
  const events = new EventEmitter();
  let holds: (() => void)[] = [];
  const sockets = new Set<Socket>();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
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
    events.emit("request", record);
    const hash = createHash("sha256");
    req.on("data", (chunk: Buffer) => {
      if (record.bodyLength === 0) events.emit("body-start", chunk.length);
      record.bodyLength += chunk.length;
      hash.update(chunk);
    });
    req.on("end", () => {
      record.bodySha256 = hash.digest("hex");
      record.complete = true;
      respond(req, res, record).catch(() => res.destroy());
    });
  };

  const respond = async (req: IncomingMessage, res: ServerResponse, record: RecordedRequest) => {
    const url = new URL(req.url ?? "/", "http://upstream");
    res.setHeader("x-upstream", name);
    const path = url.pathname;
    if (path === "/gzip") {
      res.writeHead(200, {
        "content-type": "text/plain",
        "content-encoding": "gzip",
        "content-length": String(GZIP_BODY.length),
        vary: "Accept-Encoding",
      });
      res.end(GZIP_BODY);
    } else if (path === "/set-cookie") {
      res.setHeader("set-cookie", [
        "route=from-upstream; Path=/",
        "session=s1; Path=/; HttpOnly",
        "Route=upper-from-upstream",
        "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
      ]);
      res.end(name);
    } else if (path === "/redirect") {
      res.writeHead(302, { location: "/landing?from=redirect&x=%20y" });
      res.end();
    } else if (path === "/redirect-abs") {
      res.writeHead(301, {
        location: "http://other.example:8443/p?q=1#frag",
        "content-type": "text/plain",
      });
      res.end("moved\n");
    } else if (path === "/hop") {
      res.writeHead(200, {
        connection: "keep-alive, X-Upstream-Hop",
        "keep-alive": "timeout=5, max=100",
        "x-upstream-hop": "must-not-pass",
        "proxy-connection": "keep-alive",
        trailer: "X-Checksum",
        upgrade: "h2c",
        "proxy-authenticate": 'Basic realm="upstream"',
        "x-end-to-end": "kept",
        "content-type": "text/plain",
      });
      res.end(name);
    } else if (path === "/download") {
      const total = Number(url.searchParams.get("bytes") ?? "0");
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": String(total),
      });
      let sent = 0;
      if (url.searchParams.get("hold") === "1" && total > 65536) {
        await writeAll(res, PATTERN.subarray(0, 65536));
        sent = 65536;
        await new Promise<void>((resolve) => holds.push(resolve));
      }
      while (sent < total) {
        const offset = sent % PATTERN.length;
        const chunk = PATTERN.subarray(offset, Math.min(PATTERN.length, offset + (total - sent)));
        await writeAll(res, chunk);
        sent += chunk.length;
      }
      res.end();
    } else if (path === "/upload") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ bytes: record.bodyLength, sha256: record.bodySha256 }));
    } else if (path === "/slow") {
      await new Promise((resolve) =>
        setTimeout(resolve, Number(url.searchParams.get("ms") ?? "1000"))
      );
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`${name} (slow)`);
    } else if (path.startsWith("/status/")) {
      res.writeHead(Number(path.slice("/status/".length)), { "content-type": "text/plain" });
      res.end(name);
    } else {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(name);
    }
  };

  let server = createServer(handler);
  const watch = (s: Server) =>
    s.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
  watch(server);
  const actualPort = await listen(server, port);
  const upstream: NamedUpstream = {
    name,
    port: actualPort,
    address: `127.0.0.1:${actualPort}`,
    requests,
    events,
    release() {
      const waiting = holds;
      holds = [];
      for (const resolve of waiting) resolve();
    },
    async close() {
      upstream.release();
      await closeServer(server, sockets);
      allUpstreams.delete(upstream);
    },
    async restart() {
      server = createServer(handler);
      watch(server);
      await listen(server, actualPort);
      allUpstreams.add(upstream);
    },
  };
  allUpstreams.add(upstream);
  return upstream;
}

const allUpstreams = new Set<{ close(): Promise<void> }>();

/** Closes every upstream still running (for after hooks). */
export async function closeAllUpstreams(): Promise<void> {
  await Promise.all([...allUpstreams].map((u) => u.close()));
  allUpstreams.clear();
}

/** A loopback port nobody listens on (bound, then closed): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server, 0);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface HangingServer {
  readonly port: number;
  readonly address: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** A server that accepts connections, reads, and never answers. */
export async function startHangingServer(): Promise<HangingServer> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createNetServer((socket: Socket) => {
    count++;
    sockets.add(socket);
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  const port = await listen(server, 0);
  const hanging: HangingServer = {
    port,
    address: `127.0.0.1:${port}`,
    connections: () => count,
    async close() {
      await closeServer(server, sockets);
      allUpstreams.delete(hanging);
    },
  };
  allUpstreams.add(hanging);
  return hanging;
}

/** Resolves with the next `event` of `emitter`, or rejects after `ms`. */
export function nextEvent<T>(emitter: EventEmitter, event: string, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no "${event}" within ${ms} ms`));
    }, ms);
    const on = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(event, on);
  });
}
