import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";
import type { Server } from "../../src/config/mod.ts";
import { Http1Transport } from "../../src/proxy/http1.ts";
import type { ByteStream, Connect } from "../../src/runtime/contracts.ts";
import { type FailureCode, UpstreamError } from "../../src/proxy/errors.ts";
import {
  RequestBody,
  type UpstreamLimits,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../../src/proxy/transport.ts";
import { connectNodeSocket } from "../../src/runtime/shared/node_socket.ts";
import { TICK_MS } from "../../src/proxy/watchdog.ts";

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 upstream on 127.0.0.1: it parses requests (Content-Length or chunked bodies)
// and lets each test write whatever bytes it wants back.

interface Received {
  readonly head: string;
  readonly body: Buffer;
}

type Handler = (request: Received, socket: Socket, connection: number) => void;

interface RawUpstream {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections that have closed so far. */
  readonly closed: number;
  readonly requests: readonly Received[];
  /** Every byte received, on all connections, as latin1 text. */
  rawText(): string;
  close(): Promise<void>;
}

function parseRequest(buffer: Buffer): { request: Received; rest: Buffer } | null {
  const headEnd = buffer.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const head = buffer.subarray(0, headEnd).toString("latin1");
  const rest = buffer.subarray(headEnd + 4);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length !== null) {
    const n = Number(length[1]);
    if (rest.length < n) return null;
    return { request: { head, body: rest.subarray(0, n) }, rest: rest.subarray(n) };
  }
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf("\r\n", at);
      if (lineEnd < 0) return null;
      const size = parseInt(rest.subarray(at, lineEnd).toString("latin1"), 16);
      const start = lineEnd + 2;
      if (rest.length < start + size + 2) return null;
      if (size === 0) {
        return { request: { head, body: Buffer.concat(chunks) }, rest: rest.subarray(start + 2) };
      }
      chunks.push(rest.subarray(start, start + size));
      at = start + size + 2;
    }
  }
  return { request: { head, body: Buffer.alloc(0) }, rest };
}

async function startUpstream(handler: Handler): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const requests: Received[] = [];
  const raw: Buffer[] = [];
  let connections = 0;
  let closed = 0;
  const server = createServer((socket) => {
    const connection = connections++;
    sockets.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (data: Buffer) => {
      raw.push(data);
      pending = Buffer.concat([pending, data]);
      for (let parsed = parseRequest(pending); parsed !== null; parsed = parseRequest(pending)) {
        pending = parsed.rest;
        requests.push(parsed.request);
        handler(parsed.request, socket, connection);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closed++;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    get closed() {
      return closed;
    },
    requests,
    rawText: () => Buffer.concat(raw).toString("latin1"),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs `body` with an upstream and a transport, closing both whatever happens. */
async function withUpstream(
  handler: Handler,
  body: (upstream: RawUpstream, transport: Http1Transport, server: Server) => Promise<void>,
): Promise<void> {
  const upstream = await startUpstream(handler);
  const transport = new Http1Transport(connectNodeSocket);
  try {
    await body(upstream, transport, serverAt(upstream.port));
  } finally {
    transport.close();
    await upstream.close();
  }
}

function serverAt(port: number): Server {
  return {
    index: 0,
    id: `127.0.0.1:${port}`,
    address: { text: `127.0.0.1:${port}`, host: "127.0.0.1", port },
    weight: 1,
    maxFails: 1,
    failTimeoutMs: 10_000,
    backup: false,
    state: "ready",
    down: false,
    cookieValue: "",
  };
}

const LIMITS: UpstreamLimits = { connectTimeoutMs: 2000, readTimeoutMs: 3000 };

function get(target = "/", extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { method: "GET", target, headers: [["host", "app.example"]], body: null, ...extra };
}

/** The whole body, whatever form it came in; null for no body. */
async function bodyText(body: UpstreamResponse["body"]): Promise<string | null> {
  if (body === null) return null;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("latin1");
  const parts: Uint8Array[] = [];
  for (const reader = body.getReader();;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return Buffer.concat(parts).toString("latin1");
}

/** A request body that yields these strings one by one, each only once `gate(i)` resolves. */
function streamOf(
  parts: readonly string[],
  gate: (i: number) => Promise<void> = () => Promise.resolve(),
): RequestBody {
  let i = 0;
  return new RequestBody(
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (i === parts.length) return controller.close();
        await gate(i);
        controller.enqueue(new Uint8Array(Buffer.from(parts[i++], "latin1")));
      },
    }),
  );
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Asserts that `promise` rejects with an UpstreamError of this code. */
async function rejectsWith(promise: Promise<unknown>, code: FailureCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `not an UpstreamError: ${error}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// ---------------------------------------------------------------------------------------------

describe("Http1Transport: response bodies", () => {
  it("sends the request line and headers as given", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      await transport.send(
        server,
        get("/a/b?c=1&d", { headers: [["host", "App.Example"], ["x-a", "1"], ["x-a", "2"]] }),
        LIMITS,
      );
      assert.equal(
        upstream.requests[0].head,
        "GET /a/b?c=1&d HTTP/1.1\r\nhost: App.Example\r\nx-a: 1\r\nx-a: 2",
      );
    });
  });

  it("sends each char of a header value as the byte it came as (latin1), and heads of any size", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      // A value with bytes 0x80-0xFF (the runtimes hand them over as chars U+0080-U+00FF), then
      // plain ASCII on the same connection (its reused head buffer), then a head over 4 KiB.
      const values = ["caf\u00e9 \u00ff", "plain", "x".repeat(6000)];
      for (const value of values) {
        await transport.send(server, get("/", { headers: [["x-v", value]] }), LIMITS);
      }
      assert.deepEqual(
        upstream.requests.map((r) => r.head),
        values.map((value) => `GET / HTTP/1.1\r\nx-v: ${value}`),
      );
      const raw = upstream.rawText();
      assert.ok(
        Buffer.from(raw, "latin1").includes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff])),
      );
    });
  });

  it("returns a Content-Length body that came with the head as bytes, with status and headers", async () => {
    const response =
      "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello";
    await withUpstream(
      (_, socket) => socket.write(response),
      async (_upstream, transport, server) => {
        const res = await transport.send(server, get(), LIMITS);
        assert.equal(res.status, 201);
        assert.equal(res.statusText, "Created");
        assert.deepEqual(res.headers, [
          ["content-length", "5"],
          ["x-a", "1"],
          ["set-cookie", "a=1"],
          ["set-cookie", "b=2"],
        ]);
        assert.ok(res.body instanceof Uint8Array);
        assert.equal(await bodyText(res.body), "hello");
      },
    );
  });

  it("reads each byte of a response head as the char it is (latin1), ASCII or not", async () => {
    // Bytes 0x80-0xFF in a value (obs-text) and a reason phrase, then an ASCII head on the same
    // connection: each byte one char U+0000-U+00FF, never decoded as UTF-8.
    const heads = [
      Buffer.from(
        "HTTP/1.1 200 Gr\u00fc\u00dfe\r\nX-V: caf\u00e9 \u00ff\r\nContent-Length: 1\r\n\r\na",
        "latin1",
      ),
      Buffer.from("HTTP/1.1 200 OK\r\nX-V: plain\r\nContent-Length: 1\r\n\r\nb", "latin1"),
    ];
    let next = 0;
    await withUpstream(
      (_, socket) => socket.write(heads[next++]),
      async (_upstream, transport, server) => {
        const first = await transport.send(server, get(), LIMITS);
        assert.equal(first.statusText, "Gr\u00fc\u00dfe");
        assert.deepEqual(first.headers[0], ["x-v", "caf\u00e9 \u00ff"]);
        const second = await transport.send(server, get(), LIMITS);
        assert.equal(second.statusText, "OK");
        assert.deepEqual(second.headers[0], ["x-v", "plain"]);
      },
    );
  });

  it("streams a Content-Length body that arrives after the head", async () => {
    await withUpstream(async (_, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhel");
      await delay(30);
      socket.write("lo world");
    }, async (_upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.ok(res.body instanceof ReadableStream);
      assert.equal(await bodyText(res.body), "hello world");
      assert.equal(transport.idleCount(), 1);
    });
  });

  it("decodes a chunked body with chunk extensions and trailers, then keeps the connection", async () => {
    await withUpstream(async (_, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhel");
      await delay(20);
      socket.write("lo\r\n6\r");
      await delay(20);
      socket.write("\n world\r\nA ; x\r\n0123456789\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n");
    }, async (upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.deepEqual(res.headers, [["transfer-encoding", "chunked"]]);
      assert.equal(await bodyText(res.body), "hello world0123456789");
      assert.equal(transport.idleCount(), 1);
      await transport.send(server, get(), LIMITS);
      assert.equal(upstream.connections, 1);
    });
  });

  it("rejects a bad chunk size while reading the body", async () => {
    await withUpstream((_, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
    }, async (_upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      await rejectsWith(bodyText(res.body), "bad_response");
      assert.equal(transport.idleCount(), 0);
    });
  });

  it("holds a chunked body to the front's rules (one decoder): junk after the size, 0x, bare LF", async () => {
    const bodies = [
      "5 junk\r\nhello\r\n0\r\n\r\n", // was read as 5
      "0x5\r\nhello\r\n0\r\n\r\n", // parseInt's 0x prefix
      "5\nhello\r\n0\r\n\r\n", // bare LF after the size
      "5;a=\x01\r\nhello\r\n0\r\n\r\n", // a control character in an extension
      "5\r\nhello\r\n0\r\nX: 1\n\r\n", // bare LF in a trailer
    ];
    for (const body of bodies) {
      await withUpstream((_, socket) => {
        socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
      }, async (_upstream, transport, server) => {
        const res = await transport.send(server, get(), LIMITS);
        await rejectsWith(bodyText(res.body), "bad_response");
        assert.equal(transport.idleCount(), 0);
      });
    }
  });

  it("a chunked body cut short is upstream_reset", async () => {
    await withUpstream((_, socket) => {
      socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    }, async (_upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      await rejectsWith(bodyText(res.body), "upstream_reset");
      assert.equal(transport.idleCount(), 0);
    });
  });

  it("reads a body without length until the upstream closes, and does not keep the connection", async () => {
    await withUpstream(async (_, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1");
      await delay(30);
      socket.end("part2");
    }, async (_upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.equal(await bodyText(res.body), "part1part2");
      assert.equal(transport.idleCount(), 0);
    });
  });

  it("fails the body stream when the upstream closes before Content-Length bytes", async () => {
    await withUpstream((_, socket) => {
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    }, async (_upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      await rejectsWith(bodyText(res.body), "upstream_reset");
    });
  });

  it("reads no body for HEAD, 204 and 304, and reuses the connection", async () => {
    const answers = [
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
      "HTTP/1.1 204 No Content\r\n\r\n",
      'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\n\r\n',
      OK,
    ];
    await withUpstream(
      (_, socket) => socket.write(answers.shift()!),
      async (upstream, transport, server) => {
        const head = await transport.send(server, get("/", { method: "HEAD" }), LIMITS);
        assert.equal(head.status, 200);
        assert.equal(head.body, null);
        const noContent = await transport.send(server, get(), LIMITS);
        assert.equal(noContent.status, 204);
        assert.equal(noContent.body, null);
        const notModified = await transport.send(server, get(), LIMITS);
        assert.equal(notModified.status, 304);
        assert.equal(notModified.body, null);
        const last = await transport.send(server, get(), LIMITS);
        assert.equal(await bodyText(last.body), "ok");
        assert.equal(upstream.connections, 1);
        assert.equal(upstream.requests[0].head.startsWith("HEAD / HTTP/1.1\r\n"), true);
      },
    );
  });

  it("returns an empty Content-Length body as null", async () => {
    await withUpstream(
      (_, socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
      async (_u, transport, server) => {
        const res = await transport.send(server, get(), LIMITS);
        assert.equal(res.body, null);
        assert.equal(transport.idleCount(), 1);
      },
    );
  });

  it("skips 100 Continue and 103 Early Hints before the real answer", async () => {
    await withUpstream(async (_, socket) => {
      socket.write("HTTP/1.1 100 Continue\r\n\r\n");
      await delay(20);
      socket.write(`HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n${OK}`);
    }, async (_upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.equal(res.status, 200);
      assert.deepEqual(res.headers, [["content-length", "2"]]);
      assert.equal(await bodyText(res.body), "ok");
    });
  });
});

describe("Http1Transport: keep-alive", () => {
  it("reuses an idle connection for the next request", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      assert.equal(await bodyText((await transport.send(server, get("/1"), LIMITS)).body), "ok");
      assert.equal(transport.idleCount(), 1);
      assert.equal(await bodyText((await transport.send(server, get("/2"), LIMITS)).body), "ok");
      assert.equal(transport.idleCount(), 1);
      assert.equal(upstream.connections, 1);
      assert.deepEqual(upstream.requests.map((r) => r.head.split("\r\n")[0]), [
        "GET /1 HTTP/1.1",
        "GET /2 HTTP/1.1",
      ]);
    });
  });

  it("does not reuse a connection the upstream answered with Connection: close", async () => {
    const answer = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    await withUpstream((_, socket) => socket.write(answer), async (upstream, transport, server) => {
      await transport.send(server, get(), LIMITS);
      assert.equal(transport.idleCount(), 0);
      await transport.send(server, get(), LIMITS);
      assert.equal(upstream.connections, 2);
      await waitUntil(() => upstream.closed >= 1, "the first connection to close");
    });
  });

  it("does not reuse an HTTP/1.0 connection without keep-alive, and reuses one with it", async () => {
    const answers = [
      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
      OK,
    ];
    await withUpstream(
      (_, socket) => socket.write(answers.shift()!),
      async (upstream, transport, server) => {
        await transport.send(server, get(), LIMITS);
        assert.equal(transport.idleCount(), 0);
        await transport.send(server, get(), LIMITS);
        assert.equal(transport.idleCount(), 1);
        await transport.send(server, get(), LIMITS);
        assert.equal(upstream.connections, 2);
      },
    );
  });

  it("reads Connection by tokens, as the front does: 1.0 keep-alive with close is not kept", async () => {
    const answers = [
      "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.0 200 OK\r\nConnection: x-keep-alive\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nConnection: x-close\r\nContent-Length: 2\r\n\r\nok",
    ];
    await withUpstream(
      (_, socket) => socket.write(answers.shift()!),
      async (_upstream, transport, server) => {
        await transport.send(server, get(), LIMITS);
        assert.equal(transport.idleCount(), 0, "1.0 keep-alive, close");
        await transport.send(server, get(), LIMITS);
        assert.equal(transport.idleCount(), 0, "1.0 x-keep-alive");
        await transport.send(server, get(), LIMITS);
        assert.equal(transport.idleCount(), 1, "1.1 x-close");
      },
    );
  });

  it("retries a bodyless request on a new connection when the reused one was closed", async () => {
    await withUpstream((_, socket) => socket.end(OK), async (upstream, transport, server) => {
      await transport.send(server, get("/1"), LIMITS);
      assert.equal(transport.idleCount(), 1);
      await waitUntil(() => upstream.closed === 1, "the upstream to close the first connection");
      const res = await transport.send(server, get("/2"), LIMITS);
      assert.equal(res.status, 200);
      assert.equal(await bodyText(res.body), "ok");
      assert.equal(upstream.connections, 2);
      assert.deepEqual(upstream.requests.map((r) => r.head.split("\r\n")[0]), [
        "GET /1 HTTP/1.1",
        "GET /2 HTTP/1.1",
      ]);
    });
  });

  it("sends a POST on a new connection when the upstream closed the pooled one (idle watch)", async () => {
    await withUpstream((_, socket) => socket.end(OK), async (upstream, transport, server) => {
      await transport.send(server, get("/1"), LIMITS);
      await waitUntil(() => upstream.closed === 1, "the upstream to close the first connection");
      const post = get("/2", { method: "POST", body: streamOf(["data"]), bodyLength: 4 });
      const res = await transport.send(server, post, LIMITS);
      assert.equal(res.status, 200);
      assert.equal(upstream.connections, 2);
      assert.equal(upstream.requests[1].body.toString("latin1"), "data");
    });
  });

  it("closes idle connections on close()", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      await transport.send(server, get(), LIMITS);
      assert.equal(transport.idleCount(), 1);
      transport.close();
      assert.equal(transport.idleCount(), 0);
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
    });
  });
});

describe("Http1Transport: request bodies", () => {
  it("streams a body with Content-Length as is, piece by piece", async () => {
    let upstream: RawUpstream | undefined;
    // The second piece is only produced once the upstream has received the first one.
    const gate = (i: number) =>
      i === 0
        ? Promise.resolve()
        : waitUntil(() => upstream!.rawText().endsWith("hello"), "the first piece");
    await withUpstream((_, socket) => socket.write(OK), async (u, transport, server) => {
      upstream = u;
      const post = get("/upload", {
        method: "POST",
        headers: [["host", "h"]],
        body: streamOf(["hello", " world"], gate),
        bodyLength: 11,
      });
      const res = await transport.send(server, post, LIMITS);
      assert.equal(await bodyText(res.body), "ok");
      const [request] = u.requests;
      assert.equal(request.head, "POST /upload HTTP/1.1\r\nhost: h\r\ncontent-length: 11");
      assert.equal(request.body.toString("latin1"), "hello world");
      assert.ok(!/transfer-encoding/i.test(u.rawText()));
    });
  });

  it("sends a body without Content-Length chunked, skipping empty pieces", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      const post = get("/upload", {
        method: "PUT",
        headers: [["host", "h"]],
        body: streamOf(["hello", "", " world!!!!"]),
      });
      await transport.send(server, post, LIMITS);
      assert.equal(
        upstream.rawText(),
        "PUT /upload HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\na\r\n world!!!!\r\n0\r\n\r\n",
      );
      assert.equal(upstream.requests[0].body.toString("latin1"), "hello world!!!!");
    });
  });

  it("keeps the connection after a request body was sent in full", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      const post = get("/", { method: "POST", headers: [["host", "h"]], body: streamOf(["x"]) });
      assert.equal(await bodyText((await transport.send(server, post, LIMITS)).body), "ok");
      await transport.send(server, get(), LIMITS);
      assert.equal(upstream.connections, 1);
    });
  });
});

describe("Http1Transport: failures", () => {
  it("rejects a bad status line with bad_response", async () => {
    for (const line of ["HTTP/1.1 OK", "HTTP/2 200 OK", "SSH-2.0-OpenSSH_9.6", "HTTP/1.1 20 OK"]) {
      await withUpstream(
        (_, socket) => socket.write(`${line}\r\nContent-Length: 0\r\n\r\n`),
        async (_u, transport, server) => {
          await rejectsWith(transport.send(server, get(), LIMITS), "bad_response");
          assert.equal(transport.idleCount(), 0);
        },
      );
    }
  });

  it("rejects a bad header line and conflicting Content-Length with bad_response", async () => {
    const answers = [
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\n folded: value\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2a\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 1e1\r\n\r\n0123456789",
      "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\n",
    ];
    for (const answer of answers) {
      await withUpstream((_, socket) => socket.write(answer), async (_u, transport, server) => {
        await rejectsWith(transport.send(server, get(), LIMITS), "bad_response");
      });
    }
  });

  it("rejects a response head over 64 KiB that never ends with bad_response", async () => {
    await withUpstream((_, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70 * 1024)}`);
    }, async (_u, transport, server) => {
      await rejectsWith(transport.send(server, get(), LIMITS), "bad_response");
    });
  });

  it("rejects a complete response head over 64 KiB with bad_response", async () => {
    await withUpstream((_, socket) => {
      socket.write(
        `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(100 * 1024)}\r\nContent-Length: 2\r\n\r\nok`,
      );
    }, async (_u, transport, server) => {
      await rejectsWith(transport.send(server, get(), LIMITS), "bad_response");
    });
  });

  it("accepts a response head just under 64 KiB", async () => {
    await withUpstream((_, socket) => {
      socket.write(
        `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(60 * 1024)}\r\nContent-Length: 2\r\n\r\nok`,
      );
    }, async (_u, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.equal(res.headers[0][1].length, 60 * 1024);
      assert.equal(await bodyText(res.body), "ok");
    });
  });

  it("gives read_timeout when the upstream does not answer in time, and closes the connection", async () => {
    await withUpstream(() => {}, async (upstream, transport, server) => {
      const started = Date.now();
      await rejectsWith(
        transport.send(server, get(), { connectTimeoutMs: 2000, readTimeoutMs: 100 }),
        "read_timeout",
      );
      assert.ok(Date.now() - started >= 90, "timed out too early");
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
      assert.equal(transport.idleCount(), 0);
    });
  });

  it("gives upstream_reset when the upstream closes without answering", async () => {
    await withUpstream((_, socket) => socket.destroy(), async (_u, transport, server) => {
      await rejectsWith(transport.send(server, get(), LIMITS), "upstream_reset");
    });
  });

  it("gives upstream_reset when the upstream closes in the middle of the head", async () => {
    await withUpstream(
      (_, socket) => socket.end("HTTP/1.1 200 OK\r\nContent-"),
      async (_u, transport, server) => {
        await rejectsWith(transport.send(server, get(), LIMITS), "upstream_reset");
      },
    );
  });

  it("gives connect_timeout when connecting takes too long, and closes the late socket", async () => {
    let closed = false;
    let resolveLate: ((stream: ByteStream) => void) | undefined;
    const slowConnect: Connect = () => new Promise((resolve) => resolveLate = resolve);
    const transport = new Http1Transport(slowConnect);
    try {
      const started = Date.now();
      await rejectsWith(
        transport.send(serverAt(9), get(), { connectTimeoutMs: 50, readTimeoutMs: 1000 }),
        "connect_timeout",
      );
      assert.ok(Date.now() - started >= 45, "timed out too early");
      resolveLate!({
        read: () => Promise.resolve(null),
        readChunk: () => Promise.resolve(null),
        write: () => Promise.resolve(),
        watchIdle: () => {},
        unwatchIdle: () => {},
        close: () => closed = true,
      });
      await waitUntil(() => closed, "the late socket to be closed");
    } finally {
      transport.close();
    }
  });

  it("gives connect_timeout when connecting never finishes", async () => {
    const transport = new Http1Transport(() => new Promise<ByteStream>(() => {}));
    try {
      await rejectsWith(
        transport.send(serverAt(9), get(), { connectTimeoutMs: 30, readTimeoutMs: 1000 }),
        "connect_timeout",
      );
    } finally {
      transport.close();
    }
  });

  it("gives connect_refused when nothing listens on the port", async () => {
    const upstream = await startUpstream(() => {});
    const port = upstream.port;
    await upstream.close();
    const transport = new Http1Transport(connectNodeSocket);
    try {
      await rejectsWith(transport.send(serverAt(port), get(), LIMITS), "connect_refused");
    } finally {
      transport.close();
    }
  });
});

describe("Http1Transport: the client going away", () => {
  it("closes the upstream connection when the response stream is cancelled", async () => {
    await withUpstream((_, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n${"x".repeat(10)}`);
    }, async (upstream, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.ok(res.body instanceof ReadableStream);
      const reader = res.body.getReader();
      const first = await reader.read();
      assert.equal(first.done, false);
      await reader.cancel();
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
      assert.equal(transport.idleCount(), 0);
    });
  });

  it("closes the upstream connection when the request is aborted while waiting for the answer", async () => {
    await withUpstream(() => {}, async (upstream, transport, server) => {
      const abort = new AbortController();
      const sending = transport.send(
        server,
        get("/", { client: { signal: abort.signal } }),
        LIMITS,
      );
      await waitUntil(() => upstream.requests.length === 1, "the request to arrive");
      abort.abort();
      // client_closed: never retried elsewhere, never counted against the server.
      await rejectsWith(sending, "client_closed");
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
    });
  });

  it("sends nothing for a client that left before the request went out (client_closed)", async () => {
    await withUpstream(() => {}, async (upstream, transport, server) => {
      const abort = new AbortController();
      abort.abort();
      await rejectsWith(
        transport.send(server, get("/", { client: { signal: abort.signal } }), LIMITS),
        "client_closed",
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(upstream.requests.length, 0);
      // The connection was opened but is clean: it waits in the pool for the next request.
      assert.equal(transport.idleCount(), 1);
    });
  });

  it("does not retry on a new connection when the client leaves during a reused one's exchange", async () => {
    let answered = false;
    await withUpstream((_, socket) => {
      if (!answered) {
        answered = true;
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      }
    }, async (upstream, transport, server) => {
      const first = await transport.send(server, get(), LIMITS);
      assert.ok(first.body instanceof Uint8Array);
      assert.equal(transport.idleCount(), 1);
      const abort = new AbortController();
      const sending = transport.send(
        server,
        get("/", { client: { signal: abort.signal } }),
        LIMITS,
      );
      await waitUntil(() => upstream.requests.length === 2, "the second request to arrive");
      abort.abort();
      await rejectsWith(sending, "client_closed");
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(upstream.connections, 1, "no new connection was opened to retry");
    });
  });

  it("leaves the client's signal unread for an exchange answered within a tick", async () => {
    // Reading it is what costs on Deno (watchdog.ts): a fast exchange on a kept-alive
    // connection must not, a slow one must (below).
    await withUpstream((_, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }, async (_upstream, transport, server) => {
      await transport.send(server, get(), LIMITS);
      const client = countingClient();
      for (let i = 0; i < 20; i++) {
        const res = await transport.send(server, get("/", { client }), LIMITS);
        assert.equal(await bodyText(res.body), "ok");
      }
      await new Promise((resolve) => setTimeout(resolve, 2 * TICK_MS));
      assert.equal(client.reads, 0);
      assert.equal(transport.idleCount(), 1);
    });
  });

  it("watches the client of an exchange that lasts a tick, and stops watching when it ends", async () => {
    await withUpstream((_, socket) => {
      setTimeout(() => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 4 * TICK_MS);
    }, async (_upstream, transport, server) => {
      const client = countingClient();
      const res = await transport.send(server, get("/", { client }), LIMITS);
      assert.equal(await bodyText(res.body), "ok");
      assert.equal(client.reads, 1);
      assert.equal(client.listeners(), 0, "the abort listener is removed when the body is done");
    });
  });
});

/** A client side that counts how often its signal is read and how many listeners it has. */
function countingClient() {
  const abort = new AbortController();
  let listeners = 0;
  const signal = abort.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<AbortSignal["addEventListener"]>) => {
    listeners++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<AbortSignal["removeEventListener"]>) => {
    listeners--;
    remove(...args);
  };
  const client = {
    reads: 0,
    listeners: () => listeners,
    get signal() {
      client.reads++;
      return signal;
    },
  };
  return client;
}

/** A Connect over node:net whose streams never report idle activity (a FIN still in flight). */
const blindConnect: Connect = async (host, port) => {
  const stream = await connectNodeSocket(host, port);
  return {
    read: (into) => stream.read(into),
    readChunk: (max) => stream.readChunk(max),
    write: (data) => stream.write(data),
    watchIdle: () => {},
    unwatchIdle: () => {},
    close: () => stream.close(),
  };
};

describe("Http1Transport: the gateway frames every request (spec 11)", () => {
  it("never copies the client's Content-Length or Transfer-Encoding: a dropped body cannot eat the next request", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      // As the runtime hands over a GET whose body it dropped: the header, no bytes.
      const declared = get("/1", {
        headers: [["host", "h"], ["content-length", "22"], ["transfer-encoding", "chunked"]],
      });
      assert.equal(await bodyText((await transport.send(server, declared, LIMITS)).body), "ok");
      const next = await transport.send(server, get("/2"), LIMITS);
      assert.equal(await bodyText(next.body), "ok");
      assert.deepEqual(upstream.requests.map((r) => r.head), [
        "GET /1 HTTP/1.1\r\nhost: h",
        "GET /2 HTTP/1.1\r\nhost: app.example",
      ]);
      assert.equal(upstream.connections, 1);
    });
  });

  it("sends Content-Length: 0 for a POST, PUT or PATCH without a body, and for a declared empty one", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
        await transport.send(server, get("/", { method, headers: [["host", "h"]] }), LIMITS);
      }
      await transport.send(server, get("/", { method: "DELETE", bodyLength: 0 }), LIMITS);
      assert.deepEqual(upstream.requests.map((r) => r.head), [
        "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0",
        "PUT / HTTP/1.1\r\nhost: h\r\ncontent-length: 0",
        "PATCH / HTTP/1.1\r\nhost: h\r\ncontent-length: 0",
        "DELETE / HTTP/1.1\r\nhost: h",
        "DELETE / HTTP/1.1\r\nhost: app.example\r\ncontent-length: 0",
      ]);
    });
  });

  it("a body that ends short of its length: bad_request, the connection destroyed", async () => {
    await withUpstream(() => {}, async (upstream, transport, server) => {
      const post = get("/", { method: "POST", body: streamOf(["abc"]), bodyLength: 10 });
      await rejectsWith(transport.send(server, post, LIMITS), "bad_request");
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
      assert.equal(transport.idleCount(), 0);
    });
  });

  it("a body that runs past its length: bad_request, nothing past the length sent", async () => {
    await withUpstream(() => {}, async (upstream, transport, server) => {
      const post = get("/", { method: "POST", body: streamOf(["ab", "cdefgh"]), bodyLength: 4 });
      await rejectsWith(transport.send(server, post, LIMITS), "bad_request");
      await waitUntil(() => upstream.closed === 1, "the upstream to see the connection close");
      assert.ok(upstream.rawText().endsWith("\r\n\r\nab"), upstream.rawText());
    });
  });

  it("a body that ends short after the upstream answered: the connection is not pooled", async () => {
    // An upstream that answers as soon as a request starts, before its body.
    let connections = 0;
    let closed = 0;
    const early = createServer((socket) => {
      connections++;
      socket.once("data", () => socket.write(OK));
      socket.on("error", () => {});
      socket.on("close", () => closed++);
    });
    await new Promise<void>((resolve) => early.listen(0, "127.0.0.1", resolve));
    const transport = new Http1Transport(connectNodeSocket);
    try {
      const server = serverAt((early.address() as { port: number }).port);
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => release = resolve);
      const post = get("/", {
        method: "POST",
        body: streamOf(["ab", ""], (i) => i === 1 ? held : Promise.resolve()),
        bodyLength: 5,
      });
      const res = await transport.send(server, post, LIMITS);
      assert.equal(await bodyText(res.body), "ok");
      release();
      await waitUntil(() => closed === 1, "the upstream to see the connection close");
      assert.equal(transport.idleCount(), 0);
      assert.equal(connections, 1);
    } finally {
      transport.close();
      await new Promise((resolve) => early.close(resolve));
    }
  });
});

describe("Http1Transport: idle pooled connections are watched (spec 12)", () => {
  it("drops an idle connection at once when the upstream closes it", async () => {
    await withUpstream((_, socket) => {
      socket.write(OK);
      setTimeout(() => socket.end(), 20);
    }, async (upstream, transport, server) => {
      await transport.send(server, get(), LIMITS);
      assert.equal(transport.idleCount(), 1);
      await waitUntil(() => transport.idleCount() === 0, "the idle connection to be dropped");
      await transport.send(server, get(), LIMITS);
      assert.equal(upstream.connections, 2);
    });
  });

  it("never reads bytes that arrive on an idle connection as the next answer", async () => {
    const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil";
    await withUpstream((_, socket) => {
      socket.write(OK);
      setTimeout(() => socket.write(evil), 20);
    }, async (upstream, transport, server) => {
      await transport.send(server, get("/1"), LIMITS);
      await waitUntil(() => transport.idleCount() === 0, "the poisoned connection to be dropped");
      await waitUntil(() => upstream.closed === 1, "the upstream to see it close");
      const res = await transport.send(server, get("/2"), LIMITS);
      assert.equal(await bodyText(res.body), "ok");
      assert.equal(upstream.connections, 2);
    });
  });
});

describe("Http1Transport: requests nothing was taken from are sent again (spec 13)", () => {
  it("a POST meeting a pooled connection closed under it (FIN not seen yet) goes on a new one", async () => {
    const upstream = await startUpstream((_, socket) => socket.end(OK));
    const transport = new Http1Transport(blindConnect);
    try {
      const server = serverAt(upstream.port);
      await transport.send(server, get("/1"), LIMITS);
      await waitUntil(() => upstream.closed === 1, "the upstream to close the first connection");
      await delay(20);
      assert.equal(transport.idleCount(), 1, "not seen: the stream reports no activity");
      const body = streamOf(["data"]);
      const post = get("/2", { method: "POST", body, bodyLength: 4 });
      // Writing the head fails (the socket has ended): nothing of the body was taken yet.
      const res = await transport.send(server, post, LIMITS);
      assert.equal(res.status, 200);
      assert.equal(upstream.connections, 2);
      assert.equal(upstream.requests.at(-1)!.body.toString("latin1"), "data");
    } finally {
      transport.close();
      await upstream.close();
    }
  });
});

describe("Http1Transport: upstream responses are validated (spec 14)", () => {
  for (
    const [what, answer] of [
      ["status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok"],
      ["a NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 2\r\n\r\nok"],
      ["a bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok"],
      ["a name that is not a token", "HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok"],
      ["101 without an upgrade request", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"],
    ]
  ) {
    it(`${what}: bad_response, the connection not kept`, async () => {
      await withUpstream((_, socket) => socket.write(answer), async (_u, transport, server) => {
        await rejectsWith(transport.send(server, get(), LIMITS), "bad_response");
        assert.equal(transport.idleCount(), 0);
      });
    });
  }

  it("Content-Length with Transfer-Encoding: chunked: chunked wins, the length is dropped", async () => {
    const answer =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    await withUpstream((_, socket) => socket.write(answer), async (_u, transport, server) => {
      const res = await transport.send(server, get(), LIMITS);
      assert.deepEqual(res.headers, [["transfer-encoding", "chunked"]]);
      assert.equal(await bodyText(res.body), "hello");
      assert.equal(transport.idleCount(), 0, "a connection that sent both is not trusted again");
    });
  });
});

describe("Http1Transport: upgrades (the WebSocket handshake)", () => {
  it("hands the connection over on 101, with the bytes that came after the head", async () => {
    await withUpstream((_, socket) => {
      socket.write(
        Buffer.from(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u0081\u0002hi",
          "latin1",
        ),
      );
    }, async (upstream, transport, server) => {
      const res = await transport.send(server, get("/ws", { upgrade: true }), LIMITS);
      assert.equal(res.status, 101);
      assert.ok(res.upgraded !== undefined);
      assert.equal(Buffer.from(res.upgraded.buffered).toString("latin1"), "\u0081\u0002hi");
      await res.upgraded.stream.write(new Uint8Array(Buffer.from("after")));
      await waitUntil(() => upstream.rawText().endsWith("after"), "bytes through the stream");
      assert.equal(transport.idleCount(), 0);
      res.upgraded.stream.close();
    });
  });

  it("answers anything but 101 as an ordinary response, on a fresh connection never pooled", async () => {
    await withUpstream((_, socket) => socket.write(OK), async (upstream, transport, server) => {
      await transport.send(server, get(), LIMITS);
      const res = await transport.send(server, get("/ws", { upgrade: true }), LIMITS);
      assert.equal(res.status, 200);
      assert.equal(res.upgraded, undefined);
      assert.equal(await bodyText(res.body), "ok");
      assert.equal(upstream.connections, 2);
      assert.equal(transport.idleCount(), 1);
    });
  });
});
