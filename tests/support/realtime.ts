/**
 * An upstream for streaming, abort and limit tests (node:http on 127.0.0.1), which counts its
 * open connections and the requests whose connection closed before the answer was complete.
 * Paths (`id=` tags a request so a test can wait for its events):
 *
 *   /sse?events=N          SSE: head at once, then event 0; each next event only after release()
 *   /chunks?pieces=N       chunked text, piece by piece, each next one only after release()
 *   /ticks?every=MS&count=N  SSE: an event every MS ms, N of them, then the end
 *   /silence?ms=MS         SSE: event 0, then MS ms of silence, then event 1 and the end
 *   /longpoll?ms=MS        answers "done" after MS ms (the head too)
 *   /hold                  reads the request and never answers
 *   /forever               200, then 16 KiB every 5 ms until the connection closes
 *   /upload-hold           reads the body ("body-start" on its first bytes), never answers
 *   /upload                reads the body and answers its length as text
 *   anything else          200 "ok"
 *
 * Events on `events`: "request" (id), "body-start" (id), "closed-early" (id); wait for them
 * with {@link EventWaiter}.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RealtimeUpstream {
  readonly port: number;
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly events: EventEmitter;
  /** Connections open now. */
  openConnections(): number;
  /** Requests so far. */
  requests(): number;
  /** Requests whose connection closed before their answer was complete. */
  closedEarly(): number;
  /** Events written so far on /sse, /chunks and /ticks responses (all requests together). */
  sent(): number;
  /** Lets every held /sse or /chunks response send its next piece. */
  release(): void;
  close(): Promise<void>;
}

const FOREVER_CHUNK = new Uint8Array(16 * 1024).fill(120);

export async function startRealtimeUpstream(): Promise<RealtimeUpstream> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const sockets = new Set<Socket>();
  let requests = 0;
  let closedEarly = 0;
  let sent = 0;
  let gates: (() => void)[] = [];
  const gate = () => new Promise<void>((resolve) => gates.push(resolve));
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const url = new URL(req.url ?? "/", "http://upstream");
    const id = url.searchParams.get("id") ?? "";
    const number = (name: string, fallback: number) =>
      Number(url.searchParams.get(name) ?? String(fallback));
    let gone = false;
    res.on("close", () => {
      gone = true;
      if (!res.writableFinished) {
        closedEarly++;
        events.emit("closed-early", id);
      }
    });
    events.emit("request", id);
    const path = url.pathname;
    const sse = () => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
    };
    const run = async () => {
      if (path === "/sse") {
        sse();
        const count = number("events", 3);
        for (let i = 0; i < count && !gone; i++) {
          if (i > 0) await gate();
          res.write(`id: ${i}\ndata: event ${i}\n\n`);
          sent++;
        }
        res.end();
      } else if (path === "/chunks") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.flushHeaders();
        const count = number("pieces", 3);
        for (let i = 0; i < count && !gone; i++) {
          if (i > 0) await gate();
          res.write(`piece ${i}\n`);
          sent++;
        }
        res.end();
      } else if (path === "/ticks") {
        sse();
        const every = number("every", 500);
        const count = number("count", 4);
        for (let i = 0; i < count && !gone; i++) {
          await sleep(every);
          res.write(`data: tick ${i}\n\n`);
          sent++;
        }
        res.end();
      } else if (path === "/silence") {
        sse();
        res.write("data: before\n\n");
        await sleep(number("ms", 3000));
        if (!gone) res.end("data: after\n\n");
      } else if (path === "/longpoll") {
        await sleep(number("ms", 1000));
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("done");
      } else if (path === "/hold" || path === "/upload-hold") {
        // never answers
      } else if (path === "/forever") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        while (!gone) {
          if (!res.write(FOREVER_CHUNK)) {
            await new Promise<void>((resolve) => {
              res.once("drain", resolve);
              res.once("close", resolve);
            });
          }
          await sleep(5);
        }
      } else if (path === "/upload") {
        // answered on "end" below
      } else {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok");
      }
    };
    let length = 0;
    req.on("data", (chunk: Uint8Array) => {
      if (length === 0) events.emit("body-start", id);
      length += chunk.length;
    });
    req.on("end", () => {
      if (path === "/upload") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(String(length));
      }
    });
    req.on("error", () => {});
    run().catch(() => res.destroy());
  };

  // Heads up to 128 KiB (node's default is 16 KiB): the limit tests send big ones through.
  const server = createServer({ maxHeaderSize: 128 * 1024 }, handler);
  server.keepAliveTimeout = 5000;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    events,
    openConnections: () => sockets.size,
    requests: () => requests,
    closedEarly: () => closedEarly,
    sent: () => sent,
    release() {
      const waiting = gates;
      gates = [];
      for (const resolve of waiting) resolve();
    },
    close() {
      const waiting = gates;
      gates = [];
      for (const resolve of waiting) resolve();
      for (const socket of sockets) socket.destroy();
      sockets.clear();
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

/** Polls `check` every 20 ms until it is true; rejects with `what` after `ms`. */
export async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Waits for a realtime upstream's events by id, with one listener per event name however many
 * requests wait (the abort tests wait for thousands).
 */
export class EventWaiter {
  readonly #seen = new Set<string>();
  readonly #waiting = new Map<string, () => void>();

  constructor(emitter: EventEmitter, names: readonly string[]) {
    for (const name of names) {
      emitter.on(name, (id: string) => {
        const key = `${name} ${id}`;
        const resolve = this.#waiting.get(key);
        if (resolve === undefined) this.#seen.add(key);
        else {
          this.#waiting.delete(key);
          resolve();
        }
      });
    }
  }

  /** Resolves once `name` has fired for `id` (before or after this call); rejects after `ms`. */
  wait(name: string, id: string, ms = 5000): Promise<void> {
    const key = `${name} ${id}`;
    if (this.#seen.delete(key)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        reject(new Error(`no "${name}" for request ${id} within ${ms} ms`));
      }, ms);
      this.#waiting.set(key, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
