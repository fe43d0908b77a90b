/**
 * A raw node:net upstream that keeps the exact bytes of every connection it accepts and parses
 * them itself, strictly (RFC 9112 with no leniency at all): a test asserts on exactly what
 * reached the upstream, not on what a forgiving HTTP library made of it. Anything a strict server
 * would refuse (bare LF, obs-fold, Content-Length with Transfer-Encoding, two Content-Lengths, a
 * coding other than `chunked`, a bad chunk, a missing Host) is recorded as a violation and the
 * connection is closed: a gateway that lets such bytes through is caught.
 *
 * Every request is answered, in order, keep-alive, with the body `seen <n>: <method> <target>`
 * (n counts requests over the whole upstream from 1), so a client can tell which request its
 * response belongs to. Targets may ask for more:
 *
 *   ...?delay=MS     the answer waits MS ms (pipelining: a later request is ready before it)
 *   /length/N        N bytes of PATTERN with `Content-Length: N`, streamed in 4 KiB pieces up to
 *                    1 MiB and 256 KiB pieces beyond (never one write), waiting for drain
 *
 * `Connection: close` in a request (or HTTP/1.0 without keep-alive) closes after its answer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { PATTERN } from "./upstreams.ts";

/** One request as the upstream parsed it. */
export interface SeenRequest {
  /** 1-based over the whole upstream, in order of arrival. */
  readonly n: number;
  /** Which connection (UpstreamConnection.id) it came on. */
  readonly connection: number;
  /** Offset of its first byte in that connection's bytes. */
  readonly at: number;
  readonly method: string;
  readonly target: string;
  /** "HTTP/1.1" or "HTTP/1.0". */
  readonly version: string;
  /** Header lines in order, names and values as received. */
  readonly headers: readonly [string, string][];
  /** How the body was framed on the wire. */
  readonly framing: "none" | "length" | "chunked";
  /** The body (chunked: decoded). */
  readonly body: Buffer;
}

/** One connection the upstream accepted. */
export interface UpstreamConnection {
  /** 1-based, in order of acceptance. */
  readonly id: number;
  /** Every byte received on it, in order. */
  bytes(): Buffer;
  readonly requests: SeenRequest[];
  /** Why strict parsing stopped (the upstream then closed the connection). */
  violation: string | undefined;
  /** Bytes received but not (yet) a whole request: non-empty at close = a cut request. */
  pending(): Buffer;
  /** Closed by either side. */
  closed: boolean;
}

/** The running upstream. */
export interface RecordingUpstream {
  readonly port: number;
  /** `127.0.0.1:PORT`, as written in the gateway's `servers`. */
  readonly address: string;
  readonly connections: UpstreamConnection[];
  /** Every request, in order of arrival. */
  requests(): SeenRequest[];
  /** Every violation so far, as `connection N: reason`. */
  violations(): string[];
  /** Stops listening and destroys open connections. */
  close(): Promise<void>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) (HTTP\/1\.[01])$/;
/** A control character other than HTAB, or DEL: never allowed in a field value. */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}
const MAX_HEAD = 64 * 1024;

type Head = {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  framing: "none" | "length" | "chunked";
  length: number;
  /** Offset of the first body byte. */
  bodyStart: number;
};

class Violation extends Error {}

/** The head at the start of `data`, "incomplete", or a thrown Violation. */
function parseHead(data: Buffer): Head | "incomplete" {
  const end = data.indexOf("\r\n\r\n");
  const scanned = end < 0 ? data : data.subarray(0, end + 4);
  for (let i = scanned.indexOf(10); i >= 0; i = scanned.indexOf(10, i + 1)) {
    if (i === 0 || scanned[i - 1] !== 13) throw new Violation(`bare LF at head offset ${i}`);
  }
  if (end < 0) {
    if (data.length > MAX_HEAD) throw new Violation("head longer than 64 KiB");
    return "incomplete";
  }
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const line = REQUEST_LINE.exec(lines[0]);
  if (line === null) throw new Violation(`bad request line ${JSON.stringify(lines[0])}`);
  const headers: [string, string][] = [];
  for (const text of lines.slice(1)) {
    if (/^[ \t]/.test(text)) throw new Violation(`obs-fold line ${JSON.stringify(text)}`);
    const colon = text.indexOf(":");
    const name = colon < 0 ? "" : text.slice(0, colon);
    if (!TOKEN.test(name)) throw new Violation(`bad header line ${JSON.stringify(text)}`);
    const value = text.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (hasControl(value)) throw new Violation(`control char in ${name}`);
    headers.push([name, value]);
  }
  const values = (name: string) =>
    headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
  const version = line[3];
  const hosts = values("host");
  if (hosts.length > 1 || (version === "HTTP/1.1" && hosts.length === 0)) {
    throw new Violation(`${hosts.length} Host headers on ${version}`);
  }
  const te = values("transfer-encoding");
  const cl = values("content-length");
  if (te.length > 0 && cl.length > 0) throw new Violation("Content-Length with Transfer-Encoding");
  if (cl.length > 1) throw new Violation(`${cl.length} Content-Length headers`);
  if (cl.length === 1 && !/^\d+$/.test(cl[0])) throw new Violation(`Content-Length: ${cl[0]}`);
  if (te.length > 0 && (version !== "HTTP/1.1" || te.join(",").toLowerCase() !== "chunked")) {
    throw new Violation(`Transfer-Encoding: ${te.join(", ")} on ${version}`);
  }
  return {
    method: line[1],
    target: line[2],
    version,
    headers,
    framing: te.length > 0 ? "chunked" : cl.length > 0 ? "length" : "none",
    length: cl.length > 0 ? Number(cl[0]) : 0,
    bodyStart: end + 4,
  };
}

/** A chunked body at `data[at..]`: its decoded bytes and where it ends, or "incomplete". */
function parseChunked(data: Buffer, at: number): { body: Buffer; end: number } | "incomplete" {
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) {
      if (data.length - at > 1024) throw new Violation("chunk size line too long");
      return "incomplete";
    }
    const sizeLine = data.subarray(at, lineEnd).toString("latin1");
    const size = /^([0-9A-Fa-f]{1,13})(;[\t\x20-\x7e]*)?$/.exec(sizeLine);
    if (size === null) throw new Violation(`bad chunk size line ${JSON.stringify(sizeLine)}`);
    const length = parseInt(size[1], 16);
    at = lineEnd + 2;
    if (length === 0) {
      // Trailer fields, then the empty line.
      for (;;) {
        const end = data.indexOf("\r\n", at);
        if (end < 0) return "incomplete";
        if (end === at) return { body: Buffer.concat(parts), end: end + 2 };
        const trailer = data.subarray(at, end).toString("latin1");
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e]*$/.test(trailer)) {
          throw new Violation(`bad trailer ${JSON.stringify(trailer)}`);
        }
        at = end + 2;
      }
    }
    if (data.length < at + length + 2) return "incomplete";
    parts.push(data.subarray(at, at + length));
    if (data[at + length] !== 13 || data[at + length + 1] !== 10) {
      throw new Violation("chunk data not followed by CRLF");
    }
    at += length + 2;
  }
}

/** The next whole request in `data`: head, body and bytes used, or "incomplete". */
function parseRequest(data: Buffer): { head: Head; body: Buffer; used: number } | "incomplete" {
  const head = parseHead(data);
  if (head === "incomplete") return head;
  if (head.framing === "chunked") {
    const chunked = parseChunked(data, head.bodyStart);
    if (chunked === "incomplete") return chunked;
    return { head, body: chunked.body, used: chunked.end };
  }
  const end = head.bodyStart + head.length;
  if (data.length < end) return "incomplete";
  return { head, body: Buffer.from(data.subarray(head.bodyStart, end)), used: end };
}

function keepsAlive(request: SeenRequest): boolean {
  const connection = request.headers
    .filter(([n]) => n.toLowerCase() === "connection")
    .map(([, v]) => v.toLowerCase())
    .join(",");
  if (/\bclose\b/.test(connection)) return false;
  return request.version === "HTTP/1.1" || /\bkeep-alive\b/.test(connection);
}

function writeAll(socket: Socket, bytes: Uint8Array): Promise<void> {
  if (socket.write(bytes)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

/** Writes `total` bytes of PATTERN in pieces (a yield between them so they are separate writes). */
async function streamPattern(socket: Socket, total: number): Promise<void> {
  const piece = total <= 1 << 20 ? 4096 : 256 * 1024;
  for (let sent = 0; sent < total && !socket.destroyed;) {
    const offset = sent % PATTERN.length;
    const size = Math.min(piece, total - sent, PATTERN.length - offset);
    await writeAll(socket, PATTERN.subarray(offset, offset + size));
    sent += size;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function answer(socket: Socket, request: SeenRequest): Promise<void> {
  const url = new URL(request.target, "http://upstream");
  const delay = Number(url.searchParams.get("delay") ?? "0");
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  const keep = keepsAlive(request);
  const length = /^\/length\/(\d+)$/.exec(url.pathname);
  const text = Buffer.from(`seen ${request.n}: ${request.method} ${request.target}`);
  const bodyLength = length === null ? text.length : Number(length[1]);
  const head = `HTTP/1.1 200 OK\r\nContent-Type: ${
    length === null ? "text/plain" : "application/octet-stream"
  }\r\nContent-Length: ${bodyLength}\r\nX-Seen: ${request.n}\r\n${
    keep ? "" : "Connection: close\r\n"
  }\r\n`;
  await writeAll(socket, Buffer.from(head, "latin1"));
  if (request.method !== "HEAD") {
    if (length === null) await writeAll(socket, text);
    else await streamPattern(socket, bodyLength);
  }
  if (!keep) socket.end();
}

/** Starts a recording upstream on 127.0.0.1 (any free port). */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const connections: UpstreamConnection[] = [];
  const all: SeenRequest[] = [];
  const sockets = new Set<Socket>();

  const accept = (socket: Socket) => {
    sockets.add(socket);
    const received: Buffer[] = [];
    let unparsed = Buffer.alloc(0);
    let consumed = 0;
    // Answers go out one after another, in request order, whatever each one waits for.
    let answering = Promise.resolve();
    const connection: UpstreamConnection = {
      id: connections.length + 1,
      bytes: () => Buffer.concat(received),
      requests: [],
      violation: undefined,
      pending: () => unparsed,
      closed: false,
    };
    connections.push(connection);
    socket.on("error", () => {});
    socket.on("close", () => {
      connection.closed = true;
      sockets.delete(socket);
    });
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      if (connection.violation !== undefined) return;
      unparsed = Buffer.concat([unparsed, chunk]);
      try {
        for (;;) {
          const parsed = parseRequest(unparsed);
          if (parsed === "incomplete") return;
          unparsed = unparsed.subarray(parsed.used);
          const { head, body } = parsed;
          const request: SeenRequest = {
            n: all.length + 1,
            connection: connection.id,
            at: consumed,
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            framing: head.framing,
            body,
          };
          consumed += parsed.used;
          all.push(request);
          connection.requests.push(request);
          answering = answering.then(() => answer(socket, request)).catch(() => {
            socket.destroy();
          });
        }
      } catch (error) {
        if (!(error instanceof Violation)) throw error;
        connection.violation = error.message;
        socket.destroy();
      }
    });
  };

  const server: Server = createServer(accept);
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    connections,
    requests: () => [...all],
    violations: () =>
      connections
        .filter((c) => c.violation !== undefined)
        .map((c) => `connection ${c.id}: ${c.violation}`),
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
