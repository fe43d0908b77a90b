/**
 * The upstream side of the gateway's HTTP/1.1 client, end to end (spec points 12-14): pooled
 * connections that went bad while idle are never used, requests nothing was taken from go
 * elsewhere (POSTs included), invalid upstream responses become 502 bad_response without marking
 * the server. Upstreams here are raw node:net servers, which write exactly the bytes each test
 * needs; the gateway is the real process.
 */
import { after, afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/realtime.ts";
import { Buffer } from "node:buffer";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, header, md5 } from "../support/http.ts";
import { closedPort } from "../support/upstreams.ts";

interface Received {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

/** Writes the answer to one request on `socket` (the connection's index given). */
type Respond = (request: Received, socket: Socket, connection: number) => void;

interface RawUpstream {
  readonly address: string;
  readonly requests: Received[];
  /** Connections accepted so far. */
  connections: number;
  /** Drops every connection (the gateway sees EOF) and stops listening. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

const upstreams: RawUpstream[] = [];

/** One request from `buffer` (Content-Length bodies only, as the gateway frames them). */
function parse(buffer: Buffer): { request: Received; rest: Buffer } | null {
  const end = buffer.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = buffer.subarray(0, end).toString("latin1");
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "0");
  if (buffer.length < end + 4 + length) return null;
  const [method, path] = head.split(" ");
  const body = buffer.subarray(end + 4, end + 4 + length).toString("latin1");
  return { request: { method, path, body }, rest: buffer.subarray(end + 4 + length) };
}

async function startRawUpstream(respond: Respond): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  let server: NetServer;
  let port = 0;
  const upstream: RawUpstream = {
    address: "",
    requests: [],
    connections: 0,
    async stop() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise((resolve) => server.close(resolve));
    },
    async start() {
      server = createServer((socket) => {
        const connection = upstream.connections++;
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => {});
        let pending: Buffer = Buffer.alloc(0);
        socket.on("data", (data: Buffer) => {
          pending = Buffer.concat([pending, data]);
          for (let parsed = parse(pending); parsed !== null; parsed = parse(pending)) {
            pending = parsed.rest;
            upstream.requests.push(parsed.request);
            respond(parsed.request, socket, connection);
          }
        });
      });
      await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
      port = (server.address() as AddressInfo).port;
      (upstream as { address: string }).address = `127.0.0.1:${port}`;
    },
  };
  await upstream.start();
  upstreams.push(upstream);
  return upstream;
}

/** An answer whose body is `text`, as Node would send it. */
function ok(text: string): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
}

/** A gateway with one upstream `app` of these servers (max_fails = 1: one failure marks). */
function config(servers: readonly string[], sticky = ""): string {
  const list = servers.map((s) => `"${s}"`).join(", ");
  return `[upstreams.app]\nservers = [${list}]\n${
    sticky === "" ? "" : `[upstreams.app.sticky]\n${sticky}\n`
  }`;
}

describe("the upstream connection pool (spec 12)", () => {
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await Promise.all(upstreams.map((u) => u.stop().catch(() => {})));
  });

  it("bytes an upstream sends after its response never reach the next client", async () => {
    const upstream = await startRawUpstream((request, socket) => {
      socket.write(ok(request.path));
      // A stray answer nobody asked for, after the real one was read.
      setTimeout(() => socket.write(ok("stray")), 30);
    });
    const gw = await startGateway(config([upstream.address]));
    assert.equal((await ask(gw.port, { path: "/first" })).body, "/first");
    await sleep(150);
    for (const path of ["/second", "/third"]) {
      const answer = await ask(gw.port, { path });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, path);
      await sleep(100);
    }
  });

  it("an idle connection the upstream closed is dropped: a POST after it gets a new one", async () => {
    const upstream = await startRawUpstream((request, socket) => {
      socket.write(ok(`${request.method} ${request.body}`));
      if (request.method === "GET") setTimeout(() => socket.end(), 20);
    });
    const gw = await startGateway(config([upstream.address]));
    assert.equal((await ask(gw.port)).body, "GET ");
    await sleep(100);
    const post = await ask(gw.port, { method: "POST", body: "payload" });
    assert.equal(post.status, 200, post.body);
    assert.equal(post.body, "POST payload");
    assert.equal(upstream.connections, 2);
  });

  it("after an upstream restart, the first POST on each previously pooled connection succeeds", async () => {
    const upstream = await startRawUpstream((request, socket) => {
      // Slow enough that concurrent requests each take their own connection.
      setTimeout(() => socket.write(ok(`${request.method} ${request.body}`)), 50);
    });
    const gw = await startGateway(config([upstream.address]));
    const warm = await Promise.all([1, 2, 3].map(() => ask(gw.port)));
    assert.deepEqual(warm.map((a) => a.status), [200, 200, 200]);
    assert.equal(upstream.connections, 3);
    await upstream.stop();
    await upstream.start();
    await sleep(50);
    const posts = await Promise.all(
      [1, 2, 3].map((i) => ask(gw.port, { method: "POST", body: `body-${i}` })),
    );
    assert.deepEqual(posts.map((a) => `${a.status} ${a.body}`), [
      "200 POST body-1",
      "200 POST body-2",
      "200 POST body-3",
    ]);
  });
});

describe("requests nothing was taken from go to another server (spec 13)", () => {
  afterEach(stopAllGateways);

  it("a POST whose cookie pins a refusing server: 200 from another, with a new cookie", async () => {
    const live = await startRawUpstream((request, socket) => socket.write(ok(request.body)));
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(config([refusing, live.address], `name = "route"`));
    const answer = await ask(gw.port, {
      method: "POST",
      body: "the body",
      cookies: [`route=${md5(refusing)}`],
    });
    assert.equal(answer.status, 200, answer.body);
    assert.equal(answer.body, "the body");
    assert.deepEqual(answer.sticky, [`route=${md5(live.address)}; Path=/`]);
    // The structured event (stderr), written soon after the answer.
    await eventually(() => /connect_refused/.test(gw.stderr()), 2000, "the connect_refused event");
  });

  it("under no_fallback it stays on the pinned server: 502, then pinned_unavailable", async () => {
    const live = await startRawUpstream((request, socket) => socket.write(ok(request.body)));
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(
      config([refusing, live.address], `name = "route"\nno_fallback = true`),
    );
    const pinned = { method: "POST", body: "x", cookies: [`route=${md5(refusing)}`] };
    const first = await ask(gw.port, pinned);
    assert.equal(first.status, 502);
    assert.equal(header(first.response, "x-gateway-error"), "connect_refused");
    const second = await ask(gw.port, pinned);
    assert.equal(second.status, 502);
    assert.equal(header(second.response, "x-gateway-error"), "pinned_unavailable");
    assert.deepEqual(second.sticky, []);
    assert.equal(live.requests.length, 0);
  });
});

describe("invalid upstream responses (spec 14)", () => {
  afterEach(stopAllGateways);

  const bad: Record<string, string> = {
    "/status-999": "HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok",
    "/nul": "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 2\r\n\r\nok",
    "/bare-cr": "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "/101": "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
    "/both": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
  };

  it("502 bad_response, logged, and the server is still used by the next request", async () => {
    const upstream = await startRawUpstream((request, socket) => {
      socket.write(Buffer.from(bad[request.path] ?? ok("fine"), "latin1"));
    });
    const gw = await startGateway(config([upstream.address]));
    for (const path of ["/status-999", "/nul", "/bare-cr", "/101"]) {
      const answer = await ask(gw.port, { path });
      assert.equal(answer.status, 502, `${path}: ${answer.body}`);
      assert.equal(header(answer.response, "x-gateway-error"), "bad_response", path);
      // max_fails = 1: had the failure been counted, no server would be left.
      const next = await ask(gw.port, { path: "/ok" });
      assert.equal(`${next.status} ${next.body}`, "200 fine", `after ${path}`);
    }
    // The structured event (stderr), written soon after the answer.
    await eventually(() => /bad_response/.test(gw.stderr()), 2000, "the bad_response event");
  });

  it("Content-Length with Transfer-Encoding: chunked: the client gets the chunked body whole", async () => {
    const upstream = await startRawUpstream((request, socket) => {
      socket.write(Buffer.from(bad[request.path] ?? ok("fine"), "latin1"));
    });
    const gw = await startGateway(config([upstream.address]));
    const answer = await ask(gw.port, { path: "/both" });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "hello world");
    assert.notEqual(header(answer.response, "content-length"), "3");
    assert.equal((await ask(gw.port, { path: "/ok" })).body, "fine");
  });
});
