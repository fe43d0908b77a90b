/**
 * The WebSocket load client of the bench's "ws" phase (bench/phases/websocket.ts), on Bun's
 * native `WebSocket` client. First it checks the proxy (see {@link check}): a plain GET is
 * answered 200 by one of the echo servers (`X-Upstream`), with the sticky cookie when a cookie
 * name is given; a WebSocket without a cookie echoes a binary message byte for byte; with the
 * cookie, WebSockets reach the pinned server (the echo servers answer the text `port?` with
 * their port). Then it opens CONNECTIONS WebSockets without a cookie (each asks `port?`: the
 * spread over the servers is reported) and runs each as a closed loop: send one binary message
 * of SIZE bytes, wait for its echo, check it, send the next. Every echo is checked for its
 * length and its first 8 bytes (connection number and sequence number, big-endian u32 each);
 * every 8th echo of a connection is compared byte for byte. The round trip (send to echo, µs,
 * `performance.now()`) goes into a 1-µs histogram.
 *
 * After WARMUP seconds it prints `{"event":"measure"}`, after SECONDS more `{"event":"end"}`
 * (the driver samples the proxy's CPU time at these two lines), lets the last echoes arrive,
 * closes every connection with 1000 and prints one JSON line: messages (round trips, i.e.
 * echoes received in the measured seconds), bytes (payload both ways), seconds, p50/p99/max
 * round trip (µs), errors, unexpected closes, mismatches, the spread and the close codes seen
 * at the end. Exit status 1 if the check failed.
 *
 *   URL=ws://127.0.0.1:28080/ CONNECTIONS=64 SIZE=1024 WARMUP=2 SECONDS=8 \
 *     COOKIE=route UPSTREAMS=28130,28131,28132 bun bench/upstreams/ws_load.ts
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";

const url = process.env.URL ?? "ws://127.0.0.1:28080/";
const httpUrl = url.replace(/^ws/, "http");
const connections = Number(process.env.CONNECTIONS ?? 64);
const size = Number(process.env.SIZE ?? 1024);
const warmup = Number(process.env.WARMUP ?? 0);
const seconds = Number(process.env.SECONDS ?? 1);
const cookieName = process.env.COOKIE ?? "";
const upstreams = new Set((process.env.UPSTREAMS ?? "").split(",").filter(Boolean));
/** Every FULL_EVERY-th echo of a connection is compared byte for byte. */
const FULL_EVERY = 8;
const HISTOGRAM_US = 2_000_000;

/** Bun's WebSocket constructor takes headers (a Bun extension of the standard one). */
type BunWebSocket = new (url: string, options: { headers: Record<string, string> }) => WebSocket;
const WS = WebSocket as unknown as BunWebSocket;

function fail(message: string): never {
  throw new Error(message);
}

/** Opens a WebSocket (optionally with a Cookie header); rejects on error or after 5 s. */
function open(cookie?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WS(url, { headers: cookie ? { Cookie: cookie } : {} });
    ws.binaryType = "arraybuffer";
    const timer = setTimeout(() => reject(new Error("WebSocket open timed out")), 5000);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket to ${url} failed to open`));
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket closed while opening: ${e.code} ${e.reason}`));
    };
  });
}

/** Sends one message and waits for the next one back (5 s). */
function ask(ws: WebSocket, message: string | Uint8Array): Promise<string | ArrayBuffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no answer in 5 s")), 5000);
    ws.onmessage = (e) => {
      clearTimeout(timer);
      resolve(e.data as string | ArrayBuffer);
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      reject(new Error(`closed before answering: ${e.code} ${e.reason}`));
    };
    ws.send(message);
  });
}

/** The server a WebSocket reached (its answer to `port?`), checked against UPSTREAMS. */
async function serverOf(ws: WebSocket): Promise<string> {
  const answer = await ask(ws, "port?");
  if (typeof answer !== "string" || !upstreams.has(answer)) {
    fail(`port? answered ${String(answer).slice(0, 40)}, not one of ${[...upstreams]}`);
  }
  return answer;
}

/** Closes with 1000 and waits for the close (3 s); returns the code seen. */
function closeWs(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), 3000);
    ws.onclose = (e) => {
      clearTimeout(timer);
      resolve(e.code);
    };
    ws.close(1000, "done");
  });
}

/** A plain GET through the proxy: the server (X-Upstream) and the sticky cookie, if set. */
async function get(cookie?: string): Promise<{ server: string; setCookie?: string }> {
  const r = await fetch(httpUrl, { headers: cookie ? { Cookie: cookie } : {} });
  await r.arrayBuffer();
  const server = r.headers.get("x-upstream") ?? "";
  if (r.status !== 200) fail(`GET ${httpUrl}: ${r.status}`);
  if (!upstreams.has(server)) fail(`GET ${httpUrl}: X-Upstream ${server}`);
  const pair = (r.headers.get("set-cookie") ?? "").split(";")[0];
  return { server, setCookie: pair.startsWith(`${cookieName}=`) ? pair : undefined };
}

/**
 * Before the load: GET answered by an echo server (and, with a cookie name, the Set-Cookie and 3
 * GETs pinned by it); a cookie-less WebSocket echoes 1,000 random bytes exactly; with the cookie,
 * 2 WebSockets reach the pinned server. Returns what it saw.
 */
async function check(): Promise<Record<string, string>> {
  const first = await get();
  const seen: Record<string, string> = { get: first.server };
  const ws = await open();
  const sample = crypto.getRandomValues(new Uint8Array(1000));
  const echo = await ask(ws, sample);
  if (!(echo instanceof ArrayBuffer) || !Buffer.from(echo).equals(sample)) {
    fail("a binary message did not come back byte for byte");
  }
  seen.ws = await serverOf(ws);
  await closeWs(ws);
  if (cookieName === "") return seen;
  if (first.setCookie === undefined) fail(`no Set-Cookie ${cookieName}= on a cookie-less GET`);
  for (let i = 0; i < 3; i++) {
    const again = await get(first.setCookie);
    if (again.server !== first.server) {
      fail(`GET with ${first.setCookie} went to ${again.server}, pinned to ${first.server}`);
    }
  }
  for (let i = 0; i < 2; i++) {
    const pinned = await open(first.setCookie);
    const server = await serverOf(pinned);
    if (server !== first.server) {
      fail(`WebSocket with ${first.setCookie} reached ${server}, pinned to ${first.server}`);
    }
    await closeWs(pinned);
  }
  seen.cookie = first.setCookie;
  return seen;
}

/** Counters of the whole run. */
const stats = {
  measuring: false,
  stopping: false,
  messages: 0,
  errors: 0,
  closes: 0,
  mismatches: 0,
  firstProblem: "",
  histogram: new Uint32Array(HISTOGRAM_US + 1),
  /** Echoes per connection in the measured seconds (a stalled connection shows as 0). */
  perConnection: new Uint32Array(connections + 1),
};

function problem(kind: "errors" | "closes" | "mismatches", text: string): void {
  stats[kind]++;
  if (stats.firstProblem === "") stats.firstProblem = text;
}

/** The message a connection sends: random bytes (per connection), id and sequence number first. */
function makeMessage(id: number): Uint8Array {
  const message = new Uint8Array(size);
  crypto.getRandomValues(message.subarray(0, Math.min(size, 65536)));
  for (let i = 65536; i < size; i++) message[i] = message[i % 65536];
  new DataView(message.buffer).setUint32(0, id);
  return message;
}

/** Counts an echo of the measured window and its round trip. */
function record(id: number, t0: number): void {
  if (!stats.measuring) return;
  stats.messages++;
  stats.perConnection[id]++;
  stats.histogram[Math.min(Math.round((performance.now() - t0) * 1000), HISTOGRAM_US)]++;
}

/** One of the measured connections (Bun's `WebSocket` client). */
class LoadConnection {
  constructor(readonly ws: WebSocket) {}

  /** The server reached (its answer to `port?`). */
  server(): Promise<string> {
    return serverOf(this.ws);
  }

  /** Closes with 1000 and waits (3 s); the close code seen, -1 on timeout, -2 if not open. */
  close(): Promise<number> {
    return this.ws.readyState === 1 ? closeWs(this.ws) : Promise.resolve(-2);
  }

  /** The closed loop; resolves when it has stopped (after `stats.stopping`) or closed. */
  loop(id: number): Promise<void> {
    const ws = this.ws;
    const message = makeMessage(id);
    const view = new DataView(message.buffer);
    const sent = Buffer.from(message.buffer);
    let seq = 0;
    let t0 = 0;
    const send = () => {
      view.setUint32(4, ++seq);
      t0 = performance.now();
      ws.send(message);
    };
    return new Promise((resolve) => {
      ws.onmessage = (e) => {
        const data = e.data;
        if (!(data instanceof ArrayBuffer) || data.byteLength !== size) {
          problem("mismatches", `connection ${id}: echo of ${String(data).length} bytes`);
        } else {
          const back = new DataView(data);
          if (back.getUint32(0) !== id || back.getUint32(4) !== seq) {
            problem("mismatches", `connection ${id}: echo ${back.getUint32(4)} for ${seq}`);
          } else if (seq % FULL_EVERY === 0 && !Buffer.from(data).equals(sent)) {
            problem("mismatches", `connection ${id}: echo ${seq} differs from what was sent`);
          }
        }
        record(id, t0);
        if (stats.stopping) resolve();
        else send();
      };
      ws.onerror = () => problem("errors", `connection ${id}: error event`);
      ws.onclose = (e) => {
        problem("closes", `connection ${id}: closed ${e.code} ${e.reason} mid-run`);
        resolve();
      };
      send();
    });
  }
}

function percentile(p: number): number {
  const total = stats.histogram.reduce((a, b) => a + b, 0);
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let us = 0; us < stats.histogram.length; us++) {
    seen += stats.histogram[us];
    if (seen >= rank && seen > 0) return us;
  }
  return 0;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const checked = await check();
  const sockets = await Promise.all(
    Array.from({ length: connections }, async () => new LoadConnection(await open())),
  );
  const spread: Record<string, number> = {};
  for (const conn of sockets) {
    const server = await conn.server();
    spread[server] = (spread[server] ?? 0) + 1;
  }
  const loops = sockets.map((conn, i) => conn.loop(i + 1));
  await sleep(warmup * 1000);
  stats.measuring = true;
  console.log(JSON.stringify({ event: "measure" }));
  const start = performance.now();
  await sleep(seconds * 1000);
  stats.measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ event: "end" }));
  stats.stopping = true;
  const settled = await Promise.race([Promise.all(loops).then(() => true), sleep(5000)]);
  if (settled !== true) problem("errors", "an echo did not come back within 5 s of the end");
  const stalled = stats.perConnection.subarray(1).filter((n) => n === 0).length;
  if (stalled > 0) problem("errors", `${stalled} connections echoed nothing in the measured time`);
  const endCodes: Record<string, number> = {};
  const codes = await Promise.all(sockets.map((conn) => conn.close()));
  for (const code of codes) endCodes[code] = (endCodes[code] ?? 0) + 1;
  console.log(JSON.stringify({
    connections,
    size,
    messages: stats.messages,
    bytes: stats.messages * size * 2,
    seconds: elapsed,
    p50Us: percentile(50),
    p99Us: percentile(99),
    maxUs: percentile(100),
    errors: stats.errors,
    closes: stats.closes,
    mismatches: stats.mismatches,
    firstProblem: stats.firstProblem,
    spread,
    endCodes,
    check: checked,
  }));
  process.exit(0);
}

main().catch((error: Error) => {
  console.log(JSON.stringify({ error: error.message }));
  process.exit(1);
});
