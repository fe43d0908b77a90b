/**
 * A byte-level WebSocket tunnel, the baseline of the bench's "ws" phase
 * (bench/phases/websocket.ts): what relaying a WebSocket costs on a runtime's own sockets when
 * nothing is parsed after the handshake, as HAProxy does in `tunnel` mode. It reads a client's
 * request head (up to the blank line; 64 KiB at most), connects to the next of UPSTREAMS (round
 * robin, no cookie, no header rewritten), writes the head and whatever followed it, and from
 * then on copies bytes both ways until either side closes (then closes the other). No HTTP is
 * answered by the tunnel itself: the upstream's 101 (or any answer) goes back as bytes.
 *
 * On Bun it uses `Bun.listen`/`Bun.connect` (the sockets of the gateway's Bun front and
 * upstream client: what `write` could not take waits for `drain`); on Deno `Deno.listen`/
 * `Deno.connect` with a read loop per direction (64 KiB buffer, each chunk written fully before
 * the next read), as the gateway's Deno sockets.
 *
 *   LISTEN=127.0.0.1:28080 UPSTREAMS=28130,28131,28132 bun bench/baselines/ws_tunnel.ts
 *   LISTEN=127.0.0.1:28080 UPSTREAMS=28130,28131,28132 deno run -A bench/baselines/ws_tunnel.ts
 *
 * @module
 */
import process from "node:process";

const [host, portText] = (process.env.LISTEN ?? "127.0.0.1:28080").split(":");
const port = Number(portText);
const upstreams = (process.env.UPSTREAMS ?? "").split(",").filter(Boolean).map(Number);
if (upstreams.length === 0) throw new Error("UPSTREAMS must list ports");
const MAX_HEAD = 64 * 1024;
let next = 0;

/** The next upstream port (round robin). */
function pick(): number {
  next = (next + 1) % upstreams.length;
  return upstreams[next];
}

/** Where the head ends (just past "\r\n\r\n") in `bytes`, or -1. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bun

/** The part of a Bun TCP socket this file uses. */
interface BunSocket {
  data: Side | undefined;
  write(bytes: Uint8Array): number;
  end(): void;
  setNoDelay?(on: boolean): void;
}

/** Socket handlers as `Bun.listen`/`Bun.connect` take them. */
interface BunHandlers {
  open?(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Uint8Array): void;
  drain(socket: BunSocket): void;
  close(socket: BunSocket): void;
  error?(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
}

/** The part of the `Bun` global this file uses. */
interface BunGlobal {
  listen(options: { hostname: string; port: number; socket: BunHandlers }): unknown;
  connect(options: { hostname: string; port: number; socket: BunHandlers }): Promise<unknown>;
}

/** One end of a tunnel on Bun: its socket, what waits to be written to it, its peer. */
class Side {
  socket: BunSocket | undefined;
  peer: Side | undefined;
  queue: Uint8Array[] = [];
  head: Uint8Array | undefined = new Uint8Array(0);
  closed = false;

  /** Writes now what the socket takes; keeps (a copy of) the rest for `drain`. */
  write(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.socket === undefined || this.queue.length > 0) {
      this.queue.push(bytes.slice());
      return;
    }
    const n = this.socket.write(bytes);
    if (n < bytes.length) this.queue.push(bytes.slice(Math.max(n, 0)));
  }

  flush(): void {
    while (this.socket !== undefined && this.queue.length > 0 && !this.closed) {
      const bytes = this.queue[0];
      const n = this.socket.write(bytes);
      if (n < bytes.length) {
        this.queue[0] = bytes.subarray(Math.max(n, 0));
        return;
      }
      this.queue.shift();
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.socket?.end();
    this.peer?.close();
  }
}

const relay: Omit<BunHandlers, "data"> = {
  drain(socket) {
    socket.data?.flush();
  },
  close(socket) {
    socket.data?.close();
  },
  error(socket) {
    socket.data?.close();
  },
};

function bunTunnel(bun: BunGlobal): void {
  const upstreamHandlers: BunHandlers = {
    ...relay,
    open(socket) {
      socket.setNoDelay?.(true);
      socket.data!.flush();
    },
    data(socket, chunk) {
      socket.data?.peer?.write(chunk);
    },
    connectError(socket) {
      socket.data?.close();
    },
  };
  bun.listen({
    hostname: host,
    port,
    socket: {
      ...relay,
      open(socket) {
        socket.setNoDelay?.(true);
        const client = new Side();
        client.socket = socket;
        socket.data = client;
      },
      data(socket, chunk) {
        const client = socket.data!;
        if (client.head === undefined) {
          client.peer?.write(chunk);
          return;
        }
        client.head = concat(client.head, chunk);
        if (headEnd(client.head) < 0) {
          if (client.head.length > MAX_HEAD) client.close();
          return;
        }
        const upstream = new Side();
        upstream.peer = client;
        client.peer = upstream;
        upstream.queue.push(client.head);
        client.head = undefined;
        bun.connect({
          hostname: host,
          port: pick(),
          socket: {
            ...upstreamHandlers,
            open(s) {
              if (upstream.closed) return s.end();
              s.data = upstream;
              upstream.socket = s;
              upstreamHandlers.open!(s);
            },
          },
        }).catch(() => client.close());
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Deno

type DenoApi = typeof Deno;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/** Copies `from` to `to` until `from` ends or either fails; then `onEnd`. */
async function pump(from: Deno.Conn, to: Deno.Conn, onEnd: () => void): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      await writeAll(to, buffer.subarray(0, n));
    }
  } catch { /* either side gone */ }
  onEnd();
}

async function denoConnection(deno: DenoApi, client: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  let head: Uint8Array = new Uint8Array(0);
  try {
    client.setNoDelay(true);
    while (headEnd(head) < 0) {
      const n = await client.read(buffer);
      if (n === null || head.length > MAX_HEAD) throw new Error("no request head");
      head = concat(head, buffer.subarray(0, n));
    }
    const upstream = await deno.connect({ hostname: host, port: pick() });
    upstream.setNoDelay(true);
    await writeAll(upstream, head);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      for (const c of [client, upstream]) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    };
    void pump(client, upstream, close);
    void pump(upstream, client, close);
  } catch {
    try {
      client.close();
    } catch { /* closed */ }
  }
}

async function denoTunnel(deno: DenoApi): Promise<void> {
  for await (const conn of deno.listen({ hostname: host, port })) {
    void denoConnection(deno, conn);
  }
}

// ---------------------------------------------------------------------------------------------

const runtime = globalThis as unknown as { Bun?: BunGlobal; Deno?: DenoApi };
if (runtime.Bun !== undefined) bunTunnel(runtime.Bun);
else if (runtime.Deno !== undefined) void denoTunnel(runtime.Deno);
else throw new Error("ws_tunnel.ts runs on Bun or Deno");
console.log(`ws tunnel on ${host}:${port} to ${upstreams.join(",")}`);
