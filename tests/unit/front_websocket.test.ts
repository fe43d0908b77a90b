/**
 * The front's server-side WebSocket (src/runtime/front/websocket.ts) over real loopback TCP: a
 * node:net server hands each connection, as the front will after its 101, to
 * `createServerWebSocket` over a NodeByteStream. Clients are real: the runtime's `WebSocket`,
 * the `ws` package, and a raw socket for the frames no real client sends (unmasked, broken
 * UTF-8, oversized control frames, fragments on purpose).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import WsClient from "ws";
import { NodeByteStream } from "../../src/runtime/shared/node_socket.ts";
import { createServerWebSocket, type ServerWebSocket } from "../../src/runtime/front/websocket.ts";
import { MAX_MESSAGE_BYTES } from "../../src/proxy/websocket.ts";
import {
  encodeClose,
  encodeFrame,
  FrameReader,
  type Incoming,
  OPCODE,
} from "../../src/proxy/ws_frames.ts";
import { withTimeout } from "../support/gateway.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Tests that move tens of MiB: beyond bun test's default 5 s on a loaded machine. */
const HEAVY = { timeout: 30_000 };
const encoder = new TextEncoder();

/** Items arriving one at a time. */
class Inbox<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  async next(ms = 10_000): Promise<T> {
    while (this.#items.length === 0) {
      await withTimeout(new Promise<void>((resolve) => this.#wake = resolve), ms, "inbox");
    }
    return this.#items.shift()!;
  }
}

/** The server side of one session, as the tests see it. */
interface ServerEnd {
  readonly ws: ServerWebSocket;
  readonly leftoverBytes: number;
  readonly messages: Inbox<string | Uint8Array>;
  readonly pongs: Inbox<Uint8Array>;
  /** Every call of onclose. */
  readonly closes: [number, string][];
  readonly closed: Promise<[number, string]>;
}

/** A node:net server doing the handshake as the front does, then the socket under test. */
class Front {
  readonly sessions = new Inbox<ServerEnd>();
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  echo = true;
  closeTimeoutMs = 5000;
  idleTimeoutMs = 120_000;

  constructor() {
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.setNoDelay(true);
      // With closeWrite, as the front's sockets have it.
      const stream = Object.assign(new NodeByteStream(socket), { closeWrite: () => socket.end() });
      this.#accept(stream).catch(() => socket.destroy());
    });
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
  }

  stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #accept(stream: NodeByteStream): Promise<void> {
    let received = Buffer.alloc(0);
    let end = -1;
    while (end < 0) {
      const chunk = await stream.readChunk(64 * 1024);
      if (chunk === null) throw new Error("closed during the handshake");
      received = Buffer.concat([received, chunk]);
      end = received.indexOf("\r\n\r\n");
    }
    const key = /^sec-websocket-key:\s*(\S+)/im.exec(received.subarray(0, end).toString())![1];
    const accept = createHash("sha1").update(key + GUID).digest("base64");
    await stream.write(Buffer.from(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    ));
    const leftover = received.subarray(end + 4);
    const ws = createServerWebSocket(stream, leftover, {
      closeTimeoutMs: this.closeTimeoutMs,
      idleTimeoutMs: this.idleTimeoutMs,
    });
    const messages = new Inbox<string | Uint8Array>();
    const pongs = new Inbox<Uint8Array>();
    const closes: [number, string][] = [];
    const closed = new Promise<[number, string]>((resolve) => {
      ws.onclose = (code, reason) => {
        closes.push([code, reason]);
        resolve([code, reason]);
      };
    });
    ws.onmessage = (data) => {
      messages.push(data);
      if (this.echo) ws.send(data);
    };
    ws.onpong = (data) => pongs.push(data);
    this.sessions.push({ ws, leftoverBytes: leftover.length, messages, pongs, closes, closed });
    ws.open();
  }
}

/** The runtime's own WebSocket client, open, with its messages and its close event. */
async function runtimeClient(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  ws.binaryType = "arraybuffer";
  const messages = new Inbox<string | Uint8Array>();
  ws.onmessage = (event: MessageEvent) =>
    messages.push(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("WebSocket error before open"));
    }),
    10_000,
    "open",
  );
  return { ws, messages, closed };
}

/** The `ws` package's client, open. */
async function wsClient(port: number) {
  const ws = new WsClient(`ws://127.0.0.1:${port}/`);
  const messages = new Inbox<string | Uint8Array>();
  const pongs = new Inbox<string>();
  ws.on(
    "message",
    (data: Buffer, binary: boolean) =>
      messages.push(binary ? new Uint8Array(data) : data.toString()),
  );
  ws.on("pong", (data: Buffer) => pongs.push(data.toString()));
  ws.on("error", () => {});
  const closed = new Promise<[number, string]>((resolve) =>
    ws.on("close", (code: number, reason: Buffer) => resolve([code, reason.toString()]))
  );
  await withTimeout(new Promise((resolve) => ws.on("open", resolve)), 10_000, "open");
  return { ws, messages, pongs, closed };
}

/** A raw TCP client: the handshake (with `extra` bytes in the same write), then any bytes. */
async function rawClient(port: number, extra: Uint8Array = new Uint8Array(0)) {
  const socket = connect({ host: "127.0.0.1", port, noDelay: true });
  const key = randomBytes(16).toString("base64");
  const head =
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  socket.write(Buffer.concat([Buffer.from(head), extra]));
  const frames = new Inbox<Incoming>();
  // The server's frames must be unmasked: the client-role reader throws on a masked one.
  const reader = new FrameReader(64 * 1024 * 1024, "client");
  const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  let received = Buffer.alloc(0);
  let upgraded = false;
  await withTimeout(
    new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        if (!upgraded) {
          received = Buffer.concat([received, chunk]);
          const end = received.indexOf("\r\n\r\n");
          if (end < 0) return;
          assert.match(received.toString("latin1"), /^HTTP\/1\.1 101 /);
          upgraded = true;
          chunk = received.subarray(end + 4);
          resolve();
        }
        reader.push(new Uint8Array(chunk));
        for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
          frames.push(frame);
        }
      });
    }),
    10_000,
    "101",
  );
  return { socket, frames, ended, write: (bytes: Uint8Array) => socket.write(bytes) };
}

/** A client's (masked) frame; `fin` false for a fragment. */
function clientFrame(opcode: number, payload: Uint8Array | string, fin = true): Uint8Array {
  const frame = encodeFrame(
    opcode,
    typeof payload === "string" ? encoder.encode(payload) : payload,
    "client",
  );
  if (!fin) frame[0] &= 0x7f;
  return frame;
}

function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + seed) & 0xff;
  return bytes;
}

function sameBytes(actual: string | Uint8Array, expected: Uint8Array): void {
  assert.ok(actual instanceof Uint8Array, "a binary message");
  assert.equal(actual.length, expected.length);
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), "the same bytes");
}

/** onclose fired once with this code; later turns of the event loop add no second call. */
async function closedOnce(end: ServerEnd, code: number): Promise<void> {
  assert.equal((await withTimeout(end.closed, 10_000, "onclose"))[0], code);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(end.closes.length, 1, `onclose calls: ${JSON.stringify(end.closes)}`);
}

describe("createServerWebSocket over loopback TCP", () => {
  const front = new Front();
  before(() => front.listen());
  after(() => front.stop());

  it("text and binary messages both ways (the runtime's WebSocket)", async () => {
    front.echo = true;
    const client = await runtimeClient(front.port);
    const end = await front.sessions.next();
    client.ws.send("héllo ✓");
    client.ws.send(new Uint8Array([0, 1, 2, 255]));
    assert.equal(await end.messages.next(), "héllo ✓");
    sameBytes(await end.messages.next(), new Uint8Array([0, 1, 2, 255]));
    assert.equal(await client.messages.next(), "héllo ✓");
    sameBytes(await client.messages.next(), new Uint8Array([0, 1, 2, 255]));
    client.ws.close(1000);
    assert.equal((await client.closed).code, 1000);
    await closedOnce(end, 1000);
  });

  it(
    "64 KiB and 16 MiB (the limit) messages, text and binary, arrive whole both ways",
    HEAVY,
    async () => {
      front.echo = true;
      const client = await wsClient(front.port);
      const end = await front.sessions.next();
      const text = "x✓".repeat(16 * 1024); // 64 KiB of UTF-8
      const medium = pattern(64 * 1024, 1);
      const large = pattern(MAX_MESSAGE_BYTES, 2);
      client.ws.send(text);
      client.ws.send(medium);
      client.ws.send(large);
      assert.equal(await end.messages.next(), text);
      sameBytes(await end.messages.next(), medium);
      sameBytes(await end.messages.next(), large);
      assert.equal(await client.messages.next(), text);
      sameBytes(await client.messages.next(), medium);
      sameBytes(await client.messages.next(), large);
      client.ws.close(1000, "done");
      assert.deepEqual(await client.closed, [1000, ""]);
      await closedOnce(end, 1000);
      assert.deepEqual(end.closes[0], [1000, "done"]);
    },
  );

  it("a message of 16 MiB + 1 byte → close 1009 to the client, onclose 1009", HEAVY, async () => {
    front.echo = false;
    const client = await wsClient(front.port);
    const end = await front.sessions.next();
    client.ws.send(pattern(MAX_MESSAGE_BYTES + 1, 3));
    assert.equal((await withTimeout(client.closed, 10_000, "client close"))[0], 1009);
    await closedOnce(end, 1009);
  });

  it("fragmented messages are joined; a ping between fragments is answered at once", async () => {
    front.echo = false;
    const client = await rawClient(front.port);
    const end = await front.sessions.next();
    const text = encoder.encode("a✓b"); // ✓ split across fragments
    client.write(clientFrame(OPCODE.text, text.subarray(0, 2), false));
    client.write(clientFrame(OPCODE.ping, "between"));
    client.write(clientFrame(OPCODE.continuation, text.subarray(2, 3), false));
    client.write(clientFrame(OPCODE.continuation, text.subarray(3)));
    assert.deepEqual(await client.frames.next(), { type: "pong", data: encoder.encode("between") });
    assert.equal(await end.messages.next(), "a✓b");
    const binary = pattern(200_000, 4);
    client.write(clientFrame(OPCODE.binary, binary.subarray(0, 100), false));
    client.write(clientFrame(OPCODE.continuation, binary.subarray(100, 70_000), false));
    client.write(clientFrame(OPCODE.continuation, binary.subarray(70_000)));
    sameBytes(await end.messages.next(), binary);
    // The ws package's fragments too.
    const ws = await wsClient(front.port);
    const wsEnd = await front.sessions.next();
    ws.ws.send("frag-", { fin: false });
    ws.ws.send("ment", { fin: false });
    ws.ws.send("ed", { fin: true });
    assert.equal(await wsEnd.messages.next(), "frag-mented");
    ws.ws.close(1000);
    client.write(encodeClose(1000, "", "client"));
    assert.deepEqual(await client.frames.next(), { type: "close", code: 1000, reason: "" });
    await client.ended;
    await closedOnce(end, 1000);
    await closedOnce(wsEnd, 1000);
  });

  it("pings: the client's are answered; ping() reaches the client, whose pong comes to onpong", async () => {
    front.echo = false;
    const client = await wsClient(front.port);
    const end = await front.sessions.next();
    client.ws.ping("from the client");
    assert.equal(await client.pongs.next(), "from the client");
    end.ws.ping!(encoder.encode("from the server"));
    sameBytes(await end.pongs.next(), encoder.encode("from the server"));
    // An unsolicited pong (the gateway relays the upstream's) reaches the client.
    end.ws.pong!(encoder.encode("relayed"));
    assert.equal(await client.pongs.next(), "relayed");
    assert.throws(() => end.ws.ping!(new Uint8Array(126)), RangeError);
    client.ws.close(1000);
    await closedOnce(end, 1000);
  });

  it(
    "pings from a client that does not read: one pong waits, answering the latest",
    HEAVY,
    async () => {
      front.echo = false;
      const client = await rawClient(front.port);
      const end = await front.sessions.next();
      client.socket.pause();
      for (let k = 0; k < 32; k++) end.ws.send(pattern(1024 * 1024, k));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const before = end.ws.bufferedAmount;
      for (let k = 0; k < 1000; k++) {
        client.write(
          clientFrame(OPCODE.ping, `ping ${k}`.padEnd(125)),
        );
      }
      client.write(clientFrame(OPCODE.text, "after the pings"));
      assert.equal(await end.messages.next(), "after the pings");
      assert.ok(
        end.ws.bufferedAmount <= before + 127,
        `${end.ws.bufferedAmount - before} more bytes`,
      );
      client.socket.resume();
      for (let k = 0; k < 32; k++) assert.equal((await client.frames.next()).type, "binary");
      const pong = await client.frames.next();
      assert.equal(pong.type, "pong");
      assert.equal(
        new TextDecoder().decode((pong as { data: Uint8Array }).data).trim(),
        "ping 999",
      );
      client.socket.destroy();
      await closedOnce(end, 1006);
    },
  );

  it("the client's close code and reason reach onclose, and the echo carries the code", async () => {
    const client = await runtimeClient(front.port);
    const end = await front.sessions.next();
    client.ws.close(4001, "bye");
    const event = await client.closed;
    assert.equal(event.code, 4001);
    assert.equal(event.wasClean, true);
    await closedOnce(end, 4001);
    assert.deepEqual(end.closes[0], [4001, "bye"]);
  });

  it("a client close without a code → onclose 1005", async () => {
    const client = await runtimeClient(front.port);
    const end = await front.sessions.next();
    client.ws.close();
    assert.equal((await client.closed).code, 1005);
    await closedOnce(end, 1005);
  });

  it("close(code, reason) reaches the client; close() without a code is 1005 there", async () => {
    const client = await runtimeClient(front.port);
    const end = await front.sessions.next();
    end.ws.close(4002, "server done");
    end.ws.send("after the close: dropped");
    const event = await client.closed;
    assert.equal(event.code, 4002);
    assert.equal(event.reason, "server done");
    assert.equal(event.wasClean, true);
    await closedOnce(end, 4002);

    const second = await runtimeClient(front.port);
    const secondEnd = await front.sessions.next();
    secondEnd.ws.close();
    assert.equal((await second.closed).code, 1005);
    await closedOnce(secondEnd, 1005);
  });

  const violations: [string, Uint8Array, number][] = [
    ["an unmasked client frame", encodeFrame(OPCODE.text, encoder.encode("x"), "server"), 1002],
    ["text that is not UTF-8", clientFrame(OPCODE.text, new Uint8Array([0x61, 0xff, 0xfe])), 1007],
    ["a ping over 125 bytes", clientFrame(OPCODE.ping, new Uint8Array(126)), 1002],
    ["a fragmented ping", clientFrame(OPCODE.ping, "x", false), 1002],
  ];
  for (const [what, frame, code] of violations) {
    it(`${what} → close ${code} to the client, onclose ${code}`, async () => {
      front.echo = true;
      const client = await rawClient(front.port);
      const end = await front.sessions.next();
      client.write(frame);
      const answer = await client.frames.next();
      assert.equal(answer.type, "close");
      assert.equal(answer.type === "close" && answer.code, code);
      // As the ws package does: answer the close and end the connection.
      client.write(encodeClose(code, "", "client"));
      client.socket.end();
      await closedOnce(end, code);
      await client.ended;
    });
  }

  it(
    "after a protocol error the server sends FIN: a client waiting for it is not kept",
    HEAVY,
    async () => {
      front.closeTimeoutMs = 60_000; // out of reach: only the FIN can end this in time
      try {
        const client = await rawClient(front.port);
        const end = await front.sessions.next();
        client.write(encodeFrame(OPCODE.binary, new Uint8Array(3), "server"));
        const answer = await client.frames.next();
        assert.equal(answer.type === "close" && answer.code, 1002);
        // node:net's client ends its side when the server's ends (allowHalfOpen false), like a
        // browser closing after the server.
        await withTimeout(client.ended, 10_000, "the server's FIN");
        await closedOnce(end, 1002);
      } finally {
        front.closeTimeoutMs = 5000;
      }
    },
  );

  it("frames that came with the handshake are read first", async () => {
    front.echo = false;
    const client = await rawClient(front.port, clientFrame(OPCODE.text, "early"));
    const end = await front.sessions.next();
    assert.ok(end.leftoverBytes > 0, "the frame came in the handshake's packet");
    assert.equal(await end.messages.next(), "early");
    client.socket.destroy();
    await closedOnce(end, 1006);
  });

  it("the connection ending without a close frame → onclose 1006, once", async () => {
    const client = await wsClient(front.port);
    const end = await front.sessions.next();
    client.ws.terminate();
    await closedOnce(end, 1006);
  });

  it("abort() drops the connection without a close frame: the client sees 1006", async () => {
    // The ws package (Deno's WebSocket reports 0 here).
    const client = await wsClient(front.port);
    const end = await front.sessions.next();
    end.ws.abort();
    assert.deepEqual(await withTimeout(client.closed, 10_000, "client close"), [1006, ""]);
    await closedOnce(end, 1006);
  });

  it("a client that never answers close is dropped after the close timeout: 1006", async () => {
    front.closeTimeoutMs = 200;
    try {
      const client = await rawClient(front.port);
      const end = await front.sessions.next();
      end.ws.close(1000, "bye");
      assert.deepEqual(await client.frames.next(), { type: "close", code: 1000, reason: "bye" });
      await withTimeout(client.ended, 10_000, "connection dropped");
      await closedOnce(end, 1006);
    } finally {
      front.closeTimeoutMs = 5000;
    }
  });

  it("a silent client is pinged, and dropped (1006) if it stays silent", async () => {
    front.idleTimeoutMs = 100;
    try {
      const client = await rawClient(front.port); // which never answers a ping
      const end = await front.sessions.next();
      assert.deepEqual(await client.frames.next(), { type: "ping", data: new Uint8Array(0) });
      await withTimeout(client.ended, 10_000, "dropped");
      await closedOnce(end, 1006);
    } finally {
      front.idleTimeoutMs = 120_000;
    }
  });

  it("a client that answers the idle pings stays, however long it is silent", async () => {
    front.idleTimeoutMs = 50;
    front.echo = true;
    try {
      const client = await wsClient(front.port); // ws answers pings
      const end = await front.sessions.next();
      await new Promise((resolve) => setTimeout(resolve, 500)); // ten idle periods
      client.ws.send("still here");
      assert.equal(await client.messages.next(), "still here");
      assert.deepEqual(end.closes, []);
      client.ws.close(1000);
      await closedOnce(end, 1000);
    } finally {
      front.idleTimeoutMs = 120_000;
    }
  });

  it(
    "bufferedAmount counts what the client has not taken; drained() follows it down",
    HEAVY,
    async () => {
      front.echo = false;
      const client = await rawClient(front.port);
      const end = await front.sessions.next();
      client.socket.pause();
      const count = 32;
      for (let k = 0; k < count; k++) end.ws.send(pattern(1024 * 1024, k));
      // The kernel holds a few MiB of a paused connection at most; the rest waits here.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(end.ws.bufferedAmount > 16 * 1024 * 1024, `${end.ws.bufferedAmount} bytes`);
      client.socket.resume();
      let last = end.ws.bufferedAmount;
      while (end.ws.bufferedAmount > 0) {
        await withTimeout(end.ws.drained(), 10_000, "drained");
        assert.ok(end.ws.bufferedAmount < last, "drained() resolves once it went down");
        last = end.ws.bufferedAmount;
      }
      for (let k = 0; k < count; k++) {
        const frame = await client.frames.next();
        assert.equal(frame.type, "binary");
        sameBytes(frame.type === "binary" ? frame.data : "", pattern(1024 * 1024, k));
      }
      client.socket.destroy();
      await closedOnce(end, 1006);
    },
  );
});
