/**
 * Client of the "idle" phase (bench/phases/idle.ts): opens `count` HTTP/1.1 keep-alive
 * connections to the proxy (node:net, `batch` at a time), sends one `GET /` on each and checks the
 * answer (200, `Content-Length: 16`, the 16-byte body), then leaves them all idle. It prints
 * `OPEN {json}` ({@link IdleReport}) and waits until the file `GO` exists (the phase measures the
 * proxy meanwhile). Then every connection that is still open sends a second `GET /` on the same
 * connection, which must be answered the same way: proof that the proxy kept it open and usable.
 * Prints `DONE {json}`, closes everything and exits.
 *
 *   bun bench/clients/idle_clients.ts HOST PORT COUNT BATCH GO_FILE MAX_WAIT_S
 *
 * @module
 */
import { existsSync } from "node:fs";
import net from "node:net";
import process from "node:process";

const BODY = "0123456789abcdef";

/** What the client prints after `OPEN ` and after `DONE `. */
export interface IdleReport {
  count: number;
  /** Connections whose request was answered exactly. */
  ok: number;
  /** Connections the proxy closed (or that failed) since they were opened. */
  closed: number;
  seconds: number;
  errors: string[];
}

/** One client connection: answers come in order, one request in flight at a time. */
class Client {
  closed = false;
  #data = "";
  #waiting: ((error?: string) => void) | undefined;
  readonly socket: net.Socket;

  constructor(host: string, port: number, readonly onClose: () => void) {
    this.socket = net.connect({ host, port });
    this.socket.setEncoding("latin1");
    this.socket.on("data", (text: string) => {
      this.#data += text;
      this.#check();
    });
    this.socket.on("error", () => {});
    this.socket.on("close", () => {
      if (!this.closed) onClose();
      this.closed = true;
      this.#settle("closed by the proxy");
    });
  }

  /** Sends `GET /` and resolves with undefined when answered exactly, else with the problem. */
  request(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
    if (this.closed) return Promise.resolve("closed before the request");
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#settle("no answer in time"), timeoutMs);
      this.#waiting = (error) => {
        clearTimeout(timer);
        resolve(error);
      };
      this.socket.write(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: bench\r\n\r\n`);
    });
  }

  #check(): void {
    const end = this.#data.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.#data.slice(0, end);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? -1);
    if (this.#data.length < end + 4 + Math.max(length, 0)) return;
    const body = this.#data.slice(end + 4, end + 4 + length);
    this.#data = this.#data.slice(end + 4 + Math.max(length, 0));
    if (!head.startsWith("HTTP/1.1 200 ")) return this.#settle(`status ${head.split("\r\n")[0]}`);
    if (/\r\nconnection:\s*close/i.test(head)) return this.#settle("Connection: close");
    this.#settle(body === BODY ? undefined : `body ${JSON.stringify(body.slice(0, 40))}`);
  }

  #settle(error?: string): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(error);
  }
}

/** One request on every client, `batch` at a time; the problems (first 5) and the count done. */
async function requestAll(
  clients: Client[],
  host: string,
  port: number,
  batch: number,
): Promise<{ ok: number; errors: string[] }> {
  let ok = 0;
  const errors: string[] = [];
  for (let i = 0; i < clients.length; i += batch) {
    const answers = await Promise.all(
      clients.slice(i, i + batch).map((c) => c.request(host, port, 10_000)),
    );
    for (const error of answers) {
      if (error === undefined) ok++;
      else if (errors.length < 5) errors.push(error);
    }
  }
  return { ok, errors };
}

/** Opens `count` connections, `batch` at a time, each answered once. */
async function open(
  host: string,
  port: number,
  count: number,
  batch: number,
  onClose: () => void,
): Promise<{ clients: Client[]; ok: number; errors: string[] }> {
  const clients: Client[] = [];
  let ok = 0;
  const errors: string[] = [];
  for (let i = 0; i < count; i += batch) {
    const group = Array.from(
      { length: Math.min(batch, count - i) },
      () => new Client(host, port, onClose),
    );
    clients.push(...group);
    const r = await requestAll(group, host, port, batch);
    ok += r.ok;
    errors.push(...r.errors.slice(0, 5 - errors.length));
  }
  return { clients, ok, errors };
}

async function main(): Promise<void> {
  const [host, portText, countText, batchText, goFile, maxWait] = process.argv.slice(2);
  const port = Number(portText);
  let closed = 0;
  const t0 = performance.now();
  const opened = await open(host, port, Number(countText), Number(batchText), () => closed++);
  const report = (ok: number, errors: string[]): IdleReport => ({
    count: opened.clients.length,
    ok,
    closed,
    seconds: (performance.now() - t0) / 1000,
    errors,
  });
  console.log(`OPEN ${JSON.stringify(report(opened.ok, opened.errors))}`);
  const deadline = Date.now() + Number(maxWait) * 1000;
  while (!existsSync(goFile) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const closedWhileIdle = closed;
  const again = await requestAll(opened.clients, host, port, Number(batchText));
  const done = report(again.ok, again.errors);
  done.closed = closedWhileIdle;
  console.log(`DONE ${JSON.stringify(done)}`);
  for (const c of opened.clients) c.socket.destroy();
  process.exit(0);
}

await main();
