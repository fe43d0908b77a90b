/**
 * A raw node:net client for framing tests: it sends exact bytes (in one write, or in several),
 * never half-closes (so the server's close is the server's own decision), reads everything until
 * the server closes or a timeout, and splits what came back into responses by their own framing.
 * Whether the server closed the connection is part of the result.
 *
 * The responses have the shape of http.ts's RawResponse, so `header()` / `headerValues()` work.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { connect } from "node:net";
import type { Header, RawResponse } from "./http.ts";

/** What one connection got back. */
export interface RawConversation {
  /** Every byte received. */
  readonly bytes: Buffer;
  /** The whole responses, in order (1xx interim responses skipped). */
  readonly responses: RawResponse[];
  /** Bytes after the last whole response: a cut or unparseable response, or nothing. */
  readonly rest: Buffer;
  /** The server closed (FIN or reset) before the timeout. */
  readonly closed: boolean;
  /** The connection ended with an error (e.g. ECONNRESET) rather than a clean FIN. */
  readonly reset: boolean;
}

export interface ConverseOptions {
  /** Stop waiting after this long (default 5000 ms); `closed` is then false. */
  readonly timeoutMs?: number;
  /**
   * Stop as soon as this many responses are whole, without waiting for the close (for keep-alive
   * connections). `closed` then only says whether the close had already come.
   */
  readonly responses?: number;
  /** Response i answers a HEAD request (no body whatever its headers say). */
  readonly heads?: readonly boolean[];
}

/** Between two writes: the client waits for this before sending the rest. */
export type Pause = () => Promise<unknown>;

/** What `converse` sends: bytes, or pieces written one by one (with pauses between them). */
export type Sendable = string | Uint8Array | readonly (string | Uint8Array | Pause)[];

/**
 * Connects to 127.0.0.1:`port`, writes `bytes` (an array: one write each, a macrotask apart, and
 * a Pause is awaited where it stands) and reads as `options` say. Never rejects for what the
 * server does: a refused connection is `closed` with no bytes.
 */
export function converse(
  port: number,
  bytes: Sendable,
  options: ConverseOptions = {},
): Promise<RawConversation> {
  const writes = (typeof bytes === "string" || bytes instanceof Uint8Array ? [bytes] : bytes)
    .map((b) => typeof b === "function" ? b : Buffer.from(b));
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let reset = false;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(chunks);
      const split = splitResponses(data, options.heads ?? [], closed);
      resolve({ bytes: data, responses: split.responses, rest: split.rest, closed, reset });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("connect", async () => {
      for (const [i, chunk] of writes.entries()) {
        if (typeof chunk === "function") await chunk().catch(() => {});
        else if (i > 0) await new Promise((r) => setTimeout(r, 0));
        if (socket.destroyed) return;
        if (typeof chunk !== "function") socket.write(chunk);
      }
    });
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.responses === undefined) return;
      const split = splitResponses(Buffer.concat(chunks), options.heads ?? [], false);
      if (split.responses.length >= options.responses) finish(false);
    });
    socket.on("error", () => {
      reset = true;
      finish(true);
    });
    socket.on("end", () => finish(true));
    socket.on("close", () => finish(true));
  });
}

/** The next response head at `at`: status line, headers and where the body starts. */
function readHead(
  data: Buffer,
  at: number,
): { status: number; statusText: string; headers: Header[]; bodyStart: number } | undefined {
  const end = data.indexOf("\r\n\r\n", at);
  if (end < 0) return undefined;
  const lines = data.subarray(at, end).toString("latin1").split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (status === null) return undefined;
  const headers: Header[] = lines.slice(1).map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  return {
    status: Number(status[1]),
    statusText: status[2] ?? "",
    headers,
    bodyStart: end + 4,
  };
}

/** A chunked body from `at`: decoded bytes and its end, or undefined when cut or malformed. */
function readChunked(data: Buffer, at: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = /^([0-9a-fA-F]+)(;.*)?$/.exec(data.subarray(at, lineEnd).toString("latin1"));
    if (size === null) return undefined;
    const length = parseInt(size[1], 16);
    at = lineEnd + 2;
    if (length === 0) {
      for (;;) {
        const end = data.indexOf("\r\n", at);
        if (end < 0) return undefined;
        if (end === at) return { body: Buffer.concat(parts), end: end + 2 };
        at = end + 2;
      }
    }
    if (data.length < at + length + 2) return undefined;
    parts.push(data.subarray(at, at + length));
    at += length + 2;
  }
}

/**
 * Splits `data` into whole responses by their framing (HEAD, 204, 304: no body; chunked;
 * Content-Length; otherwise until the close, so only when `closed`). Stops at the first response
 * that is cut or unparseable; its bytes are `rest`.
 */
export function splitResponses(
  data: Buffer,
  heads: readonly boolean[],
  closed: boolean,
): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const head = readHead(data, at);
    if (head === undefined) break;
    if (head.status >= 100 && head.status < 200) {
      at = head.bodyStart;
      continue;
    }
    const value = (name: string) => head.headers.find(([n]) => n.toLowerCase() === name)?.[1];
    const te = value("transfer-encoding");
    const cl = value("content-length");
    let body: Buffer;
    let end: number;
    if (heads[responses.length] === true || head.status === 204 || head.status === 304) {
      body = Buffer.alloc(0);
      end = head.bodyStart;
    } else if (te !== undefined && /chunked/i.test(te)) {
      const chunked = readChunked(data, head.bodyStart);
      if (chunked === undefined) break;
      ({ body, end } = chunked);
    } else if (cl !== undefined && /^\d+$/.test(cl)) {
      end = head.bodyStart + Number(cl);
      if (data.length < end) break;
      body = data.subarray(head.bodyStart, end);
    } else {
      if (!closed) break;
      end = data.length;
      body = data.subarray(head.bodyStart);
    }
    responses.push({
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body,
    });
    at = end;
  }
  return { responses, rest: data.subarray(at) };
}
