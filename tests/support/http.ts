/**
 * A raw HTTP/1.1 client over node:net, for tests that need exact control of request header lines
 * (several Cookie lines, hop-by-hop headers, Connection tokens) and see response header lines as
 * sent (each Set-Cookie on its own line, Content-Encoding and the body bytes untouched).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import { connect } from "node:net";

export type Header = [name: string, value: string];

export interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  /** Header lines in order, names as sent. */
  readonly headers: Header[];
  readonly body: Buffer;
}

export interface RawRequest {
  readonly method?: string;
  readonly path?: string;
  /** Sent in order, exactly. `Host` is added unless given; `Connection: close` unless a
   * Connection header is given; `Content-Length` when there is a body and no framing header. */
  readonly headers?: readonly Header[];
  readonly body?: string | Uint8Array;
  readonly timeoutMs?: number;
}

function has(headers: readonly Header[], name: string): boolean {
  return headers.some(([n]) => n.toLowerCase() === name);
}

/** All values of a response header (case-insensitive name), in order. */
export function headerValues(response: RawResponse, name: string): string[] {
  const lower = name.toLowerCase();
  return response.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** The first value of a response header, or undefined. */
export function header(response: RawResponse, name: string): string | undefined {
  return headerValues(response, name)[0];
}

/** Sends one request on a new connection and reads one response. */
export function rawRequest(port: number, request: RawRequest = {}): Promise<RawResponse> {
  const method = request.method ?? "GET";
  const headers: Header[] = [...(request.headers ?? [])];
  if (!has(headers, "host")) headers.unshift(["Host", `127.0.0.1:${port}`]);
  if (!has(headers, "connection")) headers.push(["Connection", "close"]);
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  if (body !== undefined && !has(headers, "content-length") && !has(headers, "transfer-encoding")) {
    headers.push(["Content-Length", String(body.length)]);
  }
  let head = `${method} ${request.path ?? "/"} HTTP/1.1\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  const bytes = body === undefined
    ? Buffer.from(head + "\r\n", "latin1")
    : Buffer.concat([Buffer.from(head + "\r\n", "latin1"), body]);
  return exchange(port, bytes, method === "HEAD", request.timeoutMs ?? 10_000);
}

/** Sends `bytes` as they are and reads one response (for malformed requests). */
export function rawExchange(
  port: number,
  bytes: string | Uint8Array,
  timeoutMs = 10_000,
): Promise<RawResponse> {
  return exchange(port, Buffer.from(bytes), false, timeoutMs);
}

function exchange(
  port: number,
  bytes: Buffer,
  head: boolean,
  timeoutMs: number,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error: Error | undefined, response?: RawResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(response!);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `no complete response within ${timeoutMs} ms; got:\n${
              Buffer.concat(chunks).toString("latin1").slice(0, 500)
            }`,
          ),
        ),
      timeoutMs,
    );
    const attempt = (ended: boolean) => {
      const result = parseResponse(Buffer.concat(chunks), head, ended);
      if (result === "incomplete") {
        if (ended) {
          finish(
            new Error(
              `connection closed mid-response:\n${
                Buffer.concat(chunks).toString("latin1").slice(0, 500)
              }`,
            ),
          );
        }
        return;
      }
      finish(undefined, result);
    };
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      attempt(false);
    });
    socket.on("end", () => attempt(true));
    socket.on("close", () => attempt(true));
    socket.on("error", (error: Error) => {
      if (chunks.length > 0) attempt(true);
      else finish(error);
    });
  });
}

function parseResponse(data: Buffer, head: boolean, ended: boolean): RawResponse | "incomplete" {
  let headEnd = data.indexOf("\r\n\r\n");
  if (headEnd < 0) return "incomplete";
  let lines = data.subarray(0, headEnd).toString("latin1").split("\r\n");
  let rest = data.subarray(headEnd + 4);
  // Skip 1xx interim responses.
  while (/^HTTP\/1\.[01] 1\d\d/.test(lines[0])) {
    headEnd = rest.indexOf("\r\n\r\n");
    if (headEnd < 0) return "incomplete";
    lines = rest.subarray(0, headEnd).toString("latin1").split("\r\n");
    rest = rest.subarray(headEnd + 4);
  }
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (status === null) throw new Error(`bad status line: ${lines[0]}`);
  const headers: Header[] = lines.slice(1).map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const code = Number(status[1]);
  const result = (body: Buffer): RawResponse => ({
    status: code,
    statusText: status[2] ?? "",
    headers,
    body,
  });
  const find = (name: string) => headers.find(([n]) => n.toLowerCase() === name)?.[1];
  if (head || code === 204 || code === 304) return result(Buffer.alloc(0));
  const te = find("transfer-encoding");
  if (te !== undefined && /chunked/i.test(te)) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf("\r\n", at);
      if (lineEnd < 0) return "incomplete";
      const size = parseInt(rest.subarray(at, lineEnd).toString("latin1"), 16);
      if (Number.isNaN(size)) throw new Error("bad chunk size");
      if (size === 0) {
        // Trailer lines (if any), then an empty line.
        let p = lineEnd + 2;
        for (;;) {
          const end = rest.indexOf("\r\n", p);
          if (end < 0) return "incomplete";
          if (end === p) return result(Buffer.concat(parts));
          p = end + 2;
        }
      }
      if (lineEnd + 2 + size + 2 > rest.length) return "incomplete";
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const length = find("content-length");
  if (length !== undefined) {
    const n = Number(length);
    if (rest.length < n) return "incomplete";
    return result(rest.subarray(0, n));
  }
  return ended ? result(rest) : "incomplete";
}

// ---- cookie values, computed independently of src/ with node:crypto ----

export const md5 = (text: string): string => createHash("md5").update(text).digest("hex");
export const sha1 = (text: string): string => createHash("sha1").update(text).digest("hex");
export const hmac = (algorithm: "md5" | "sha1", key: string, text: string): string =>
  createHmac(algorithm, key).update(text).digest("hex");
export const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** The sticky Set-Cookie values in a response (those starting with `name=`). */
export function stickyCookies(response: RawResponse, name = "route"): string[] {
  return headerValues(response, "set-cookie").filter((v) => v.startsWith(`${name}=`));
}

export interface Answer {
  readonly status: number;
  /** The `x-upstream` header: which named upstream answered (undefined for the gateway's own). */
  readonly servedBy: string | undefined;
  /** Every Set-Cookie line. */
  readonly setCookies: string[];
  /** The sticky cookie's Set-Cookie lines. */
  readonly sticky: string[];
  readonly body: string;
  readonly response: RawResponse;
}

export interface AskOptions {
  readonly path?: string;
  readonly method?: string;
  /** One Cookie header line per entry. */
  readonly cookies?: readonly string[];
  readonly headers?: readonly Header[];
  readonly body?: string | Uint8Array;
  /** The sticky cookie's name (default "route"). */
  readonly name?: string;
  readonly timeoutMs?: number;
}

/** One request through the gateway on `port`, summarized. */
export async function ask(port: number, options: AskOptions = {}): Promise<Answer> {
  const headers: Header[] = [...(options.headers ?? [])];
  for (const line of options.cookies ?? []) headers.push(["Cookie", line]);
  const response = await rawRequest(port, {
    method: options.method,
    path: options.path,
    headers,
    body: options.body,
    timeoutMs: options.timeoutMs,
  });
  return {
    status: response.status,
    servedBy: header(response, "x-upstream"),
    setCookies: headerValues(response, "set-cookie"),
    sticky: stickyCookies(response, options.name ?? "route"),
    body: response.body.toString("utf8"),
    response,
  };
}
