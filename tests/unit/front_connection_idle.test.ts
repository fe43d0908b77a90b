/**
 * An idle keep-alive connection of the front gives its buffers back (Connection.shrink, called by
 * the sweep after SHRINK_IDLE_MS) and serves its next request as before; the next head is read
 * as the socket's own chunk, so no waiting read holds the buffer. In-memory socket: the parts
 * are the front's own.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Connection, type ConnectionHost } from "../../src/runtime/front/connection.ts";
import type { FrontSocket } from "../../src/runtime/front/socket.ts";

/** A socket fed by the test: what the client sends is queued, what the front writes is kept. */
class MemorySocket implements FrontSocket {
  readonly remoteAddress = "127.0.0.1";
  written = "";
  #queue: Uint8Array[] = [];
  #waiting: ((chunk: Uint8Array | null) => void) | undefined;
  #onWrite: (() => void) | undefined;

  send(text: string): void {
    const bytes = new TextEncoder().encode(text);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) waiting(bytes);
    else this.#queue.push(bytes);
  }

  /** Resolves once the output holds `count` responses. */
  responses(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.written.split("HTTP/1.1 200").length - 1 >= count) resolve();
        else this.#onWrite = check;
      };
      check();
    });
  }

  readChunk(max: number): Promise<Uint8Array | null> {
    const next = this.#queue.shift();
    if (next !== undefined) {
      if (next.length > max) this.#queue.unshift(next.subarray(max));
      return Promise.resolve(next.subarray(0, max));
    }
    return new Promise((resolve) => {
      this.#waiting = (chunk) => {
        if (chunk !== null && chunk.length > max) this.#queue.unshift(chunk.subarray(max));
        resolve(chunk === null ? null : chunk.subarray(0, max));
      };
    });
  }

  async read(into: Uint8Array): Promise<number | null> {
    const chunk = await this.readChunk(into.length);
    if (chunk === null) return null;
    into.set(chunk);
    return chunk.length;
  }

  write(data: Uint8Array): Promise<void> {
    this.written += new TextDecoder().decode(data);
    this.#onWrite?.();
    return Promise.resolve();
  }

  close(): void {
    this.#waiting?.(null);
  }

  closeWrite(): void {}
}

function serve(): { socket: MemorySocket; connection: Connection; ran: Promise<void> } {
  const socket = new MemorySocket();
  const host: ConnectionHost = {
    handler: (request) => Promise.resolve(new Response(`ok ${new URL(request.url).pathname}`)),
    authority: "gw.test:80",
    maxHead: 64 * 1024,
    discardLimit: 1 << 20,
    stopping: false,
    release() {},
  };
  const connection = new Connection(host, socket);
  return { socket, connection, ran: connection.run() };
}

describe("front: an idle connection gives its buffers back", () => {
  it("shrinks to no buffer while idle and serves the next request (and a head larger than one read)", async () => {
    const { socket, connection, ran } = serve();
    socket.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n");
    await socket.responses(1);
    assert.ok(connection.buf.length > 0);
    connection.shrink();
    assert.equal(connection.buf.length, 0, "an idle connection holds no input buffer");
    // A head of 3 KiB: more than one fresh read takes.
    socket.send(`GET /two HTTP/1.1\r\nHost: a\r\nX-Long: ${"v".repeat(3000)}\r\n\r\n`);
    await socket.responses(2);
    assert.match(socket.written, /ok \/one/);
    assert.match(socket.written, /ok \/two/);
    socket.close();
    await ran;
  });

  it("keeps what is buffered: no shrink while a head is partly read", async () => {
    const { socket, connection, ran } = serve();
    socket.send("GET /three HTTP/1.1\r\nHo");
    await new Promise((resolve) => setTimeout(resolve, 10));
    connection.shrink();
    assert.ok(connection.buf.length > 0, "a partial head stays");
    socket.send("st: a\r\n\r\n");
    await socket.responses(1);
    assert.match(socket.written, /ok \/three/);
    socket.close();
    await ran;
  });
});
