/**
 * Constant load for the restart test and `bench/restart.ts`: keep-alive clients with a cookie
 * jar (each pinned to the backend its first answer came from) and a stream of new connections
 * per second (one request each, with the cookie of a known backend). Every request is counted
 * by how it ended, so a handover's loss shows as numbers, not as a flaky assertion:
 *
 * - `refused`: the connect was refused (no listener took it);
 * - `reset`: ECONNRESET/EPIPE on a connection (e.g. queued on a listening socket that closed);
 * - `unanswered`: the request was written and the connection ended without a whole response;
 * - `badStatus`: an answer other than 200; `moved`: an answer from another backend than pinned.
 *
 * A keep-alive connection the server closes while the client is idle is not a failure: the
 * client sees the end before writing and opens a new one (as every HTTP client does). The client
 * never retries a request.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

/** What the load does. */
export interface LoadOptions {
  readonly port: number;
  /** Keep-alive clients, each with its cookie jar. */
  readonly keepAliveClients: number;
  /** New connections per second (one request each, `Connection: close`). */
  readonly newPerSecond: number;
  /** A keep-alive client waits a random time in [0, thinkMs) between requests. */
  readonly thinkMs: number;
  /** The sticky cookie's name. */
  readonly cookie: string;
  /** Backend name (the upstream's answer body) → its cookie value, for the new connections. */
  readonly cookies: ReadonlyMap<string, string>;
  /** HTTPS (the gateway's `[server] tls`): the CA that signed its certificate (PEM). */
  readonly tlsCa?: string;
}

/** How the requests ended. */
export interface LoadReport {
  requests: number;
  ok: number;
  refused: number;
  reset: number;
  unanswered: number;
  badStatus: number;
  moved: number;
  /** Answers that said `Connection: close` (the client then connected anew). */
  closedByAnswer: number;
  /** Idle keep-alive connections the server closed (not failures). */
  closedWhileIdle: number;
  /** Connections opened. */
  connections: number;
  /** The first failures, with when they happened (ms since the load started). */
  samples: string[];
}

/** Failed requests: every way a request can end without its 200 from its backend. */
export function failedRequests(report: LoadReport): number {
  return report.refused + report.reset + report.unanswered + report.badStatus + report.moved;
}

const SAMPLES = 20;

function emptyReport(): LoadReport {
  return {
    requests: 0,
    ok: 0,
    refused: 0,
    reset: 0,
    unanswered: 0,
    badStatus: 0,
    moved: 0,
    closedByAnswer: 0,
    closedWhileIdle: 0,
    connections: 0,
    samples: [],
  };
}

/** One parsed response. */
interface Parsed {
  readonly status: number;
  readonly headers: Map<string, string[]>;
  readonly body: string;
}

/** Parses one whole response (Content-Length or chunked) at the start of `data`; null if not whole. */
function parseResponse(data: Buffer): { parsed: Parsed; rest: Buffer } | null {
  const headEnd = data.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const lines = data.subarray(0, headEnd).toString("latin1").split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const start = headEnd + 4;
  const length = headers.get("content-length")?.[0];
  if (length !== undefined) {
    const end = start + Number(length);
    if (data.length < end) return null;
    const body = data.subarray(start, end).toString("latin1");
    return { parsed: { status, headers, body }, rest: data.subarray(end) };
  }
  if (headers.get("transfer-encoding")?.[0]?.toLowerCase() !== "chunked") {
    return { parsed: { status, headers, body: "" }, rest: data.subarray(start) };
  }
  return parseChunked(data, start, status, headers);
}

function parseChunked(
  data: Buffer,
  from: number,
  status: number,
  headers: Map<string, string[]>,
): { parsed: Parsed; rest: Buffer } | null {
  let at = from;
  let body = "";
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd < 0) return null;
    const size = parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    const end = lineEnd + 2 + size + 2;
    if (data.length < end) return null;
    if (size === 0) return { parsed: { status, headers, body }, rest: data.subarray(end) };
    body += data.subarray(lineEnd + 2, lineEnd + 2 + size).toString("latin1");
    at = end;
  }
}

/** How a request on a connection ended. */
type Outcome =
  | { readonly kind: "answer"; readonly parsed: Parsed }
  | { readonly kind: "refused" | "reset" | "unanswered"; readonly detail: string };

/** A client connection: one request at a time. */
class ClientConnection {
  readonly socket: Socket;
  /** The server ended the connection (FIN, RST or error). */
  ended = false;
  #buffer: Buffer = Buffer.alloc(0);
  #connected: Promise<string | null>;
  #waiter: ((outcome: Outcome) => void) | undefined;
  #error = "";

  constructor(port: number, tlsCa?: string) {
    this.socket = tlsCa === undefined ? connect({ host: "127.0.0.1", port }) : tlsConnect({
      host: "127.0.0.1",
      port,
      ca: tlsCa,
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
    });
    this.socket.setNoDelay(true);
    this.#connected = new Promise((resolve) => {
      this.socket.once(tlsCa === undefined ? "connect" : "secureConnect", () => resolve(null));
      this.socket.once(
        "error",
        (error: Error & { code?: string }) => resolve(error.code ?? "error"),
      );
    });
    this.socket.on("data", (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#deliver();
    });
    this.socket.on("error", (error: Error & { code?: string }) => {
      this.#error = error.code ?? error.message;
      this.#end();
    });
    this.socket.on("end", () => this.#end());
    this.socket.on("close", () => this.#end());
  }

  /** Null once connected, else the error code. */
  connected(): Promise<string | null> {
    return this.#connected;
  }

  /** Sends `request` and resolves with how it ended. */
  exchange(request: string): Promise<Outcome> {
    return new Promise((resolve) => {
      this.#waiter = resolve;
      this.socket.write(request);
      this.#deliver();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #deliver(): void {
    if (this.#waiter === undefined) return;
    const whole = parseResponse(this.#buffer);
    if (whole !== null) {
      this.#buffer = whole.rest;
      return this.#settle({ kind: "answer", parsed: whole.parsed });
    }
    if (!this.ended) return;
    const reset = /ECONNRESET|EPIPE/.test(this.#error);
    this.#settle({
      kind: reset ? "reset" : "unanswered",
      detail: this.#error || "closed before a whole answer",
    });
  }

  #settle(outcome: Outcome): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(outcome);
  }

  #end(): void {
    this.ended = true;
    this.#deliver();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The cookie value `name=` carries in a `Set-Cookie` list, if any. */
function cookieFrom(headers: Map<string, string[]>, name: string): string | undefined {
  for (const line of headers.get("set-cookie") ?? []) {
    const [pair] = line.split(";");
    const eq = pair.indexOf("=");
    if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** The constant load; {@link stop} ends it and reports. */
export class RestartLoad {
  readonly report: LoadReport = emptyReport();
  /** Keep-alive client → its backend (the pinned answer body). */
  readonly pinned = new Map<number, string>();
  #running = true;
  #tasks: Promise<void>[] = [];
  #started = Date.now();

  constructor(readonly options: LoadOptions) {}

  /** Starts the clients. */
  start(): this {
    this.#started = Date.now();
    for (let id = 0; id < this.options.keepAliveClients; id++) {
      this.#tasks.push(this.#keepAliveClient(id));
    }
    if (this.options.newPerSecond > 0) this.#tasks.push(this.#newConnections());
    return this;
  }

  /** Stops the clients (each finishes its request under way) and reports. */
  async stop(): Promise<LoadReport> {
    this.#running = false;
    await Promise.all(this.#tasks);
    return this.report;
  }

  #request(cookie: string | undefined, close: boolean): string {
    const lines = [`GET /restart HTTP/1.1`, `Host: 127.0.0.1:${this.options.port}`];
    if (cookie !== undefined) lines.push(`Cookie: ${this.options.cookie}=${cookie}`);
    if (close) lines.push("Connection: close");
    return `${lines.join("\r\n")}\r\n\r\n`;
  }

  #fail(kind: "refused" | "reset" | "unanswered" | "badStatus" | "moved", detail: string): void {
    this.report[kind]++;
    if (this.report.samples.length < SAMPLES) {
      this.report.samples.push(`${Date.now() - this.#started} ms: ${kind}: ${detail}`);
    }
  }

  /** Counts an outcome; the answer when it is a 200 from `expected` (or any, when undefined). */
  #count(outcome: Outcome, expected: string | undefined, who: string): Parsed | undefined {
    this.report.requests++;
    if (outcome.kind !== "answer") {
      this.#fail(outcome.kind, `${who}: ${outcome.detail}`);
      return undefined;
    }
    const { parsed } = outcome;
    if (parsed.status !== 200) {
      this.#fail("badStatus", `${who}: status ${parsed.status} ${parsed.body.slice(0, 80)}`);
      return undefined;
    }
    if (expected !== undefined && parsed.body !== expected) {
      this.#fail("moved", `${who}: pinned to ${expected}, answered by ${parsed.body}`);
      return undefined;
    }
    this.report.ok++;
    return parsed;
  }

  async #open(who: string): Promise<ClientConnection | undefined> {
    const connection = new ClientConnection(this.options.port, this.options.tlsCa);
    this.report.connections++;
    const error = await connection.connected();
    if (error === null) return connection;
    this.report.requests++;
    this.#fail(error === "ECONNREFUSED" ? "refused" : "reset", `${who}: connect: ${error}`);
    connection.close();
    return undefined;
  }

  async #keepAliveClient(id: number): Promise<void> {
    const who = `client ${id}`;
    let jar: string | undefined;
    let connection: ClientConnection | undefined;
    while (this.#running) {
      if (connection?.ended) {
        this.report.closedWhileIdle++;
        connection.close();
        connection = undefined;
      }
      connection ??= await this.#open(who);
      if (connection === undefined) {
        await sleep(5);
        continue;
      }
      const outcome = await connection.exchange(this.#request(jar, false));
      const answer = this.#count(outcome, this.pinned.get(id), who);
      if (answer === undefined || answer.headers.get("connection")?.[0] === "close") {
        if (answer !== undefined) this.report.closedByAnswer++;
        connection.close();
        connection = undefined;
      }
      if (answer !== undefined && jar === undefined) {
        jar = cookieFrom(answer.headers, this.options.cookie);
        this.pinned.set(id, answer.body);
      }
      if (this.options.thinkMs > 0) await sleep(Math.random() * this.options.thinkMs);
    }
    connection?.close();
  }

  async #newConnections(): Promise<void> {
    const backends = [...this.options.cookies];
    const pending = new Set<Promise<void>>();
    const interval = 1000 / this.options.newPerSecond;
    let next = Date.now();
    for (let n = 0; this.#running;) {
      // Every connection due by now (a timer fires late under load: the rate is kept).
      for (; next <= Date.now(); next += interval, n++) {
        const [backend, cookie] = backends[n % backends.length];
        const one = this.#oneShot(backend, cookie);
        pending.add(one);
        one.finally(() => pending.delete(one));
      }
      await sleep(Math.max(1, next - Date.now()));
    }
    await Promise.all(pending);
  }

  async #oneShot(backend: string, cookie: string): Promise<void> {
    const who = `new connection for ${backend}`;
    const connection = await this.#open(who);
    if (connection === undefined) return;
    const outcome = await connection.exchange(this.#request(cookie, true));
    this.#count(outcome, backend, who);
    connection.close();
  }
}
