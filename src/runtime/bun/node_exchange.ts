/**
 * One exchange of Bun's TLS listener (tls_server.ts) between `node:http2`'s compatibility API
 * (HTTP/2, and HTTP/1.1 by `allowHTTP1`) and the Web `Request`/`Response` the gateway speaks:
 * the request's URL, headers and body stream in; the response's head and body out, the body
 * streamed with backpressure and its Content-Length passed through as given (what `Bun.serve`
 * drops for streamed bodies, oven-sh/bun#10507). Part of the runtime seam, so `any` stands for
 * the compatibility objects, whose types differ between HTTP/1.1 and HTTP/2.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import { appendHeaderPairs } from "../shared/header_pairs.ts";
import { Buffer } from "node:buffer";

/** Headers a response may not carry over HTTP/2 (RFC 9113 §8.2.2); over HTTP/1.1 node frames
 * the connection itself. */
const CONNECTION_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** The request's headers from node's `rawHeaders` (appendHeaderPairs: cookies joined, no
 * pseudo-headers). */
export function requestHeaders(rawHeaders: readonly string[]): Headers {
  const headers = new Headers();
  appendHeaderPairs(headers, rawHeaders);
  return headers;
}

/**
 * The request's URL: `https://` + the authority (`:authority`, else Host, else `fallback`) +
 * the target (an absolute-form target gives its path and query). Null when the target is not
 * one.
 */
export function requestUrl(req: any, fallback: string): string | null {
  const authority: string = req.headers[":authority"] ?? req.headers.host ?? fallback;
  let target: string = req.url;
  if (!target.startsWith("/")) {
    if (!URL.canParse(target)) return null;
    const url = new URL(target);
    target = url.pathname + url.search;
  }
  // `new Request` parses it (and throws for what is not a URL).
  return `https://${authority}${target}`;
}

/** Whether the request comes with a body (a GET or HEAD never gets one: see refuseOnTls). */
export function hasBody(req: any, method: string): boolean {
  if (method === "GET" || method === "HEAD") return false;
  const length = req.headers["content-length"];
  if (length === "0") return false;
  if (req.httpVersionMajor === 2) return req.stream?.endAfterHeaders !== true;
  return length !== undefined || req.headers["transfer-encoding"] !== undefined;
}

/**
 * The request body as a Web stream: pulled, so node's stream is paused whenever a chunk waits
 * unread (backpressure to the client). A request that ends before its body did (the client
 * reset the stream, or dropped the connection) errors the stream: never a short body passed
 * off as whole.
 */
export function requestBody(req: any): ReadableStream<Uint8Array> {
  let ended = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
        if ((controller.desiredSize ?? 0) <= 0) req.pause();
      });
      let endSeen = false;
      req.on("end", () => {
        endSeen = true;
        // Bun (1.4.5) ends an HTTP/2 request body that the client reset (RST_STREAM) with 'end'
        // first and 'aborted' right after, in the same turn: whether it was whole is known
        // only then.
        if (req.httpVersionMajor !== 2) return finish();
        setImmediate(() => req.aborted ? cut() : finish());
      });
      const finish = () => {
        if (ended) return;
        ended = true;
        controller.close();
      };
      const cut = () => {
        if (ended) return;
        ended = true;
        controller.error(new Error("the client ended the request before its body"));
      };
      req.on("error", cut);
      req.on("aborted", cut);
      req.on("close", () => endSeen || cut());
      req.pause();
    },
    pull() {
      req.resume();
    },
    cancel() {
      // Whatever still comes is read and dropped (the connection may carry more requests).
      ended = true;
      req.removeAllListeners("data");
      req.resume();
    },
  });
}

/** The response's headers for `writeHead`: Set-Cookie one value each, no connection headers. */
function responseHeaders(response: Response, h2: boolean, close: boolean): [string, string][] {
  const out: [string, string][] = [];
  let cookies = false;
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") cookies = true;
    else if (!CONNECTION_HEADERS.has(name)) out.push([name, value]);
  }
  if (cookies) {
    for (const cookie of response.headers.getSetCookie()) out.push(["set-cookie", cookie]);
  }
  if (close && !h2) out.push(["connection", "close"]);
  return out;
}

/** Bodies up to this long with a Content-Length are read whole, then written with the end. */
const WHOLE_BODY_MAX = 64 * 1024;

/** A small body whole; one that fails, or is not `length` long, ends the exchange without its
 * end (as in {@link writeResponse}). */
async function writeWhole(res: any, response: Response, length: number): Promise<boolean> {
  let data: Uint8Array;
  try {
    data = await response.bytes();
  } catch {
    data = new Uint8Array(0);
  }
  if (data.length !== length) {
    res.destroy();
    return false;
  }
  res.end(data);
  return true;
}

/** Resolves on 'drain', or when the response closed (the client went away). */
function drained(res: any): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Writes `response` to `res`: status (its text over HTTP/1.1 when it has one), headers, and the
 * body streamed with backpressure; none for HEAD, 1xx, 204 and 304. A body that fails midway
 * ends the exchange without its end (HTTP/2: RST_STREAM; HTTP/1.1: the connection closed), so
 * the client never takes a cut body for a whole one. Resolves when done (true when the whole
 * response was handed to node); never rejects.
 *
 * @param close end the HTTP/1.1 connection after this response
 */
export async function writeResponse(
  req: any,
  res: any,
  response: Response,
  close: boolean,
): Promise<boolean> {
  const h2 = req.httpVersionMajor === 2;
  const status = response.status;
  const headers = responseHeaders(response, h2, close);
  const bodyless = req.method === "HEAD" || status < 200 || status === 204 || status === 304;
  if (!h2 && response.statusText !== "") res.writeHead(status, response.statusText, headers);
  else res.writeHead(status, headers);
  if (!bodyless) {
    const length = Number(response.headers.get("content-length") ?? -1);
    // The usual small proxied answer, read whole: one write with the end, no reader loop.
    if (length > 0 && length <= WHOLE_BODY_MAX) return await writeWhole(res, response, length);
  }
  const body = response.body;
  if (bodyless || body === null) {
    body?.cancel().catch(() => {});
    res.end();
    return true;
  }
  // Bun's `res.destroyed` stays false when an HTTP/2 client resets the stream; 'close' comes.
  let closed = false;
  res.once("close", () => closed = true);
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (closed) break;
      if (done) {
        res.end();
        return true;
      }
      if (!res.write(value)) await drained(res);
      if (closed) break;
    }
  } catch {
    // The body failed (the upstream went away): the proxy has logged why.
  }
  reader.cancel().catch(() => {});
  res.destroy();
  return false;
}
