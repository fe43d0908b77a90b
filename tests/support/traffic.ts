/**
 * Traffic that keeps running while a test changes the running gateway (reloads): keep-alive
 * clients with cookie jars, slow chunked uploads checked by sha256, WebSockets exchanging
 * messages, SSE streams. Each records what went wrong instead of throwing, so a test stops the
 * traffic once and then asserts on everything it saw. Times are `performance.now()` of the test
 * process, so a test can compare them with when it asked for a reload and got the answer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { Agent, request as httpRequest } from "node:http";
import { sleep } from "./gateway.ts";
import { converse, type Pause } from "./raw_client.ts";
import { type RawWebSocket, rawWebSocket } from "./ws_client.ts";

/** Whether the traffic should go on (the test flips it once, at the end). */
export type Running = () => boolean;

/** An answer from another server than the one the client's cookie named. */
export interface Move {
  readonly from: string;
  readonly to: string;
  /** When the request was sent and when its answer had come. */
  readonly start: number;
  readonly end: number;
}

/** What one keep-alive client with a cookie jar saw. */
export interface StickyClient {
  readonly id: number;
  requests: number;
  readonly failures: string[];
  readonly moves: Move[];
}

export interface StickyClientOptions {
  /** The sticky cookie's name. */
  readonly cookieName: string;
  /** The server a cookie value names (undefined: none the test knows). */
  readonly serverOf: (value: string) => string | undefined;
  /** The jar is emptied every this many requests: a new session, balanced anew. */
  readonly newSessionEvery: number;
  /** Pause between two requests. */
  readonly pauseMs: number;
}

/**
 * A client that loops `GET /` on one keep-alive connection (while `running`), sending the
 * cookie it was given back. Every answer must be 200 from a named server; a Set-Cookie must
 * name the server that answered; an answer from another server than the cookie's is a move.
 */
export function runStickyClient(
  port: number,
  id: number,
  options: StickyClientOptions,
  running: Running,
): { client: StickyClient; done: Promise<void> } {
  const client: StickyClient = { id, requests: 0, failures: [], moves: [] };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const done = (async () => {
    let jar: { value: string; server: string } | undefined;
    while (running()) {
      if (client.requests % options.newSessionEvery === 0) jar = undefined;
      const start = performance.now();
      try {
        const cookie = jar && `${options.cookieName}=${jar.value}`;
        const answer = await keepAliveGet(port, agent, cookie, options.cookieName);
        const end = performance.now();
        client.requests++;
        const server = answer.upstream;
        if (answer.status !== 200 || server === undefined) {
          client.failures.push(`status ${answer.status} from ${server}`);
        } else {
          if (jar !== undefined && server !== jar.server) {
            client.moves.push({ from: jar.server, to: server, start, end });
          }
          if (answer.cookie !== undefined) {
            const named = options.serverOf(answer.cookie);
            if (named !== server) {
              client.failures.push(`a cookie naming ${named} from ${server}`);
            }
            jar = { value: answer.cookie, server };
          }
        }
      } catch (error) {
        client.failures.push((error as Error).message);
      }
      await sleep(options.pauseMs);
    }
    agent.destroy();
  })();
  return { client, done };
}

/** One GET / on a keep-alive agent: the status, the answering upstream, the sticky cookie. */
function keepAliveGet(
  port: number,
  agent: Agent,
  cookie: string | undefined,
  cookieName: string,
): Promise<{ status: number; upstream: string | undefined; cookie: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/",
      agent,
      headers: cookie === undefined ? {} : { cookie },
      timeout: 10_000,
    }, (res) => {
      res.resume();
      res.on("end", () => {
        const prefix = `${cookieName}=`;
        const set = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(prefix));
        resolve({
          status: res.statusCode ?? 0,
          upstream: res.headers["x-upstream"] as string | undefined,
          cookie: set?.split(";")[0].slice(prefix.length),
        });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** What one slow upload sent and what the upstream said it received. */
export interface UploadResult {
  readonly status: number;
  readonly sentBytes: number;
  readonly sentSha256: string;
  /** As the upstream counted and hashed them (named upstreams' /upload answer). */
  readonly receivedBytes: number;
  readonly receivedSha256: string;
  readonly error?: string;
}

/**
 * POSTs `bytes` random bytes to `path` chunked, `chunkBytes` per chunk with `pauseMs` between
 * two chunks (so the upload is in flight for a while), on a raw connection; resolves with the
 * upstream's digest of what reached it. Never rejects: a failure is in `error`.
 */
export async function slowUpload(
  port: number,
  path: string,
  options: { readonly bytes: number; readonly chunkBytes: number; readonly pauseMs: number },
): Promise<UploadResult> {
  const data = randomBytes(options.bytes);
  const sentSha256 = createHash("sha256").update(data).digest("hex");
  const pause: Pause = () => sleep(options.pauseMs);
  const pieces: (string | Uint8Array | Pause)[] = [
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTransfer-Encoding: chunked\r\n` +
    `Connection: close\r\n\r\n`,
  ];
  for (let at = 0; at < data.length; at += options.chunkBytes) {
    const chunk = data.subarray(at, Math.min(data.length, at + options.chunkBytes));
    pieces.push(pause, Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk]));
    pieces.push("\r\n");
  }
  pieces.push("0\r\n\r\n");
  const talk = await converse(port, pieces, { responses: 1, timeoutMs: 60_000 });
  const base = { sentBytes: data.length, sentSha256 };
  const response = talk.responses[0];
  if (response === undefined) {
    return {
      ...base,
      status: 0,
      receivedBytes: 0,
      receivedSha256: "",
      error: `no answer (closed: ${talk.closed}, reset: ${talk.reset})`,
    };
  }
  try {
    const seen = JSON.parse(response.body.toString("utf8")) as { bytes: number; sha256: string };
    return {
      ...base,
      status: response.status,
      receivedBytes: seen.bytes,
      receivedSha256: seen.sha256,
    };
  } catch {
    return {
      ...base,
      status: response.status,
      receivedBytes: 0,
      receivedSha256: "",
      error: response.body.toString("utf8"),
    };
  }
}

/** What one looping WebSocket saw. */
export interface WebSocketLoop {
  readonly id: number;
  /** Messages sent and echoed back, and when the last one came back. */
  exchanges: number;
  lastExchange: number;
  readonly failures: string[];
  /** The connection closed while the traffic was running. */
  closedEarly: boolean;
}

/**
 * Opens a WebSocket to `path` (an echoing upstream) and, while `running`, sends a message and
 * waits for its echo, `pauseMs` apart. Closes it (1000) once `running` turns false.
 */
export async function runWebSocket(
  port: number,
  path: string,
  id: number,
  pauseMs: number,
  running: Running,
): Promise<{ loop: WebSocketLoop; done: Promise<void> }> {
  const loop: WebSocketLoop = {
    id,
    exchanges: 0,
    lastExchange: 0,
    failures: [],
    closedEarly: false,
  };
  const socket: RawWebSocket = await rawWebSocket(port, { path });
  if (socket.status !== 101) throw new Error(`WebSocket ${id}: handshake ${socket.status}`);
  void socket.ended.then(() => {
    if (running()) loop.closedEarly = true;
  });
  const done = (async () => {
    while (running()) {
      const message = `ws-${id}-${loop.exchanges}`;
      try {
        socket.send(message);
        const echo = await socket.nextText(10_000);
        if (echo !== message) loop.failures.push(`sent ${message}, got ${echo}`);
        loop.exchanges++;
        loop.lastExchange = performance.now();
      } catch (error) {
        loop.failures.push((error as Error).message);
        return;
      }
      await sleep(pauseMs);
    }
    socket.close(1000);
    socket.destroy();
  })();
  return { loop, done };
}

/** What one SSE stream saw. */
export interface SseStream {
  readonly id: number;
  /** Events received, and when the last one came. */
  events: number;
  lastEvent: number;
  /** How the stream ended while the traffic was running (undefined: it did not). */
  endedEarly: string | undefined;
}

/**
 * Opens `path` (an endless SSE stream) and counts its events until `running` turns false, then
 * aborts it. A stream whose head is not 200 text/event-stream rejects.
 */
export async function runSseStream(
  url: string,
  id: number,
  running: Running,
): Promise<{ stream: SseStream; done: Promise<void> }> {
  const stream: SseStream = { id, events: 0, lastEvent: 0, endedEarly: undefined };
  const abort = new AbortController();
  const response = await fetch(url, { signal: abort.signal });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`SSE ${id}: status ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const reading = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          if (running()) stream.endedEarly = "the stream ended";
          return;
        }
        text += decoder.decode(value, { stream: true });
        const events = text.split("\n\n");
        text = events.pop()!;
        stream.events += events.length;
        stream.lastEvent = performance.now();
      }
    } catch (error) {
      if (running()) stream.endedEarly = (error as Error).message;
    }
  })();
  const done = (async () => {
    while (running()) await sleep(50);
    // Cancelling the reader ends a pending read (on Deno an abort alone does not).
    await reader.cancel().catch(() => {});
    abort.abort();
    await reading;
  })();
  return { stream, done };
}
