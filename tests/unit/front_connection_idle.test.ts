/**
 * A keep-alive connection of the front gives its buffers back to the thread's pool when an
 * exchange ends with nothing buffered, and serves its next request as before: the next head is
 * read as the socket's own chunk, so no waiting read holds a buffer. In-memory socket: the parts
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
  #closed = false;

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
    if (this.#closed) return Promise.resolve(null);
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

  readScratch(max: number): Promise<Uint8Array | null> {
    return this.readChunk(max);
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
    this.#closed = true;
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

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("front: an idle connection holds no buffer", () => {
  it("gives its buffer back after an exchange and serves the next request (and a head larger than one read)", async () => {
    const { socket, connection, ran } = serve();
    socket.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n");
    await socket.responses(1);
    await tick();
    assert.equal(connection.buf.length, 0, "an idle connection holds no input buffer");
    // A head of 3 KiB: more than one fresh read takes.
    socket.send(`GET /two HTTP/1.1\r\nHost: a\r\nX-Long: ${"v".repeat(3000)}\r\n\r\n`);
    await socket.responses(2);
    await tick();
    assert.equal(connection.buf.length, 0);
    assert.match(socket.written, /ok \/one/);
    assert.match(socket.written, /ok \/two/);
    socket.close();
    await ran;
  });

  it("keeps what is buffered: a partial head, and pipelined requests", async () => {
    const { socket, connection, ran } = serve();
    socket.send("GET /three HTTP/1.1\r\nHo");
    await tick();
    assert.ok(connection.buf.length > 0, "a partial head stays");
    socket.send("st: a\r\n\r\nGET /four HTTP/1.1\r\nHost: a\r\n\r\nGET /fi");
    await socket.responses(2);
    socket.send("ve HTTP/1.1\r\nHost: a\r\n\r\n");
    await socket.responses(3);
    assert.deepEqual(
      [...socket.written.matchAll(/ok (\/(?:three|four|five))/g)].map((m) => m[1]),
      ["/three", "/four", "/five"],
    );
    socket.close();
    await ran;
  });
});
