/**
 * WebSocket proxying (issue #3 §1): the handshake is routed by the same sticky decision as any
 * request, then messages, close codes and pings flow both ways. The upstreams are `ws` servers
 * under Node.js (tests/support/ws_upstream.mjs); clients are the runtime's own `WebSocket`
 * (Deno's or Bun's, both take a `headers` option) and a raw client that sees the 101's header
 * lines (tests/support/ws_client.ts).
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/realtime.ts";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { sleep, startGateway, stopAllGateways, withTimeout } from "../support/gateway.ts";
import { header, headerValues, md5 } from "../support/http.ts";
import { closedPort, startHangingServer } from "../support/upstreams.ts";
import {
  type Line,
  startWsUpstreams,
  stopAllNodeUpstreams,
  type WsUpstreams,
} from "../support/node_upstreams.ts";
import { type Certificates, makeCertificates } from "../support/tls.ts";
import { rawWebSocket } from "../support/ws_client.ts";

let ups: WsUpstreams;
const A = () => ups.address("A");
const B = () => ups.address("B");
const C = () => ups.address("C");
const setCookie = (address: string) => `route=${md5(address)}; Path=/`;

function stickyConfig(servers: string[], sticky = ""): string {
  return `
[upstreams.app]
servers = [${servers.map((s) => JSON.stringify(s)).join(", ")}]
[upstreams.app.sticky]
${sticky}
`;
}

/** The runtime's WebSocket, open; rejects if it closes or errors first. */
function openWebSocket(
  url: string,
  init: { protocols?: string[]; cookie?: string } = {},
): Promise<WebSocket> {
  const options: Record<string, unknown> = {};
  if (init.protocols !== undefined) options.protocols = init.protocols;
  if (init.cookie !== undefined) options.headers = { cookie: init.cookie };
  // Both runtimes take an options object with `protocols` and `headers` (not in the DOM types).
  const ws = new WebSocket(url, options as unknown as string[]);
  ws.binaryType = "arraybuffer";
  return withTimeout(
    new Promise<WebSocket>((resolve, reject) => {
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("WebSocket error before open"));
      ws.onclose = (event) => reject(new Error(`closed before open: ${event.code}`));
    }),
    10_000,
    `WebSocket ${url}`,
  );
}

/** Messages arriving on `ws`, one at a time. */
function inbox(ws: WebSocket): (ms?: number) => Promise<string | Uint8Array> {
  const queue: (string | Uint8Array)[] = [];
  let wake: (() => void) | undefined;
  ws.onmessage = (event: MessageEvent) => {
    queue.push(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    wake?.();
  };
  return async (ms = 5000) => {
    while (queue.length === 0) {
      await withTimeout(new Promise<void>((resolve) => wake = resolve), ms, "WebSocket message");
    }
    return queue.shift()!;
  };
}

function closed(ws: WebSocket, ms = 10_000): Promise<{ code: number; reason: string }> {
  return withTimeout(
    new Promise((resolve) => {
      ws.onclose = (event: CloseEvent) => resolve({ code: event.code, reason: event.reason });
    }),
    ms,
    "WebSocket close",
  );
}

const upgrades = (name?: string) =>
  ups.lines.filter((l) => l.event === "upgrade" && (name === undefined || l.name === name));

function headerOf(line: Line, name: string): string | undefined {
  return (line.headers as [string, string][]).find(([n]) => n.toLowerCase() === name)?.[1];
}

describe("WebSocket proxying", () => {
  before(async () => {
    ups = await startWsUpstreams(["A", "B", "C"]);
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await stopAllNodeUpstreams();
  });

  it("a legacy (1.2.x) cookie: the 101 goes to its server and re-issues the cookie in the current format", async () => {
    const gw = await startGateway(stickyConfig([A(), B(), C()], "accept_legacy = true"));
    // The 1.2.x module hashed the binary struct sockaddr_in: family 2, port, address, 8 zeros.
    const [host, port] = B().split(":");
    const sockaddr = Buffer.alloc(16);
    sockaddr.writeUInt16LE(2, 0);
    sockaddr.writeUInt16BE(Number(port), 2);
    host.split(".").forEach((byte, i) => sockaddr[4 + i] = Number(byte));
    const legacy = createHash("md5").update(sockaddr).digest("hex");
    const ws = await rawWebSocket(gw.port, {
      path: "/chat",
      headers: [["Cookie", `route=${legacy}`]],
    });
    assert.equal(ws.status, 101);
    assert.equal(header(ws, "x-upstream"), "B");
    assert.equal(headerValues(ws, "set-cookie")[0], setCookie(B()));
    ws.close(1000);
  });

  it("no cookie: round robin, and the 101 carries the Set-Cookie of the server that took it", async () => {
    const gw = await startGateway(stickyConfig([A(), B(), C()]));
    for (const [name, address] of [["A", A()], ["B", B()], ["C", C()]]) {
      const ws = await rawWebSocket(gw.port, {
        path: "/chat?room=1",
        headers: [["Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"]],
      });
      assert.equal(ws.status, 101);
      assert.deepEqual(
        headerValues(ws, "set-cookie"),
        [setCookie(address), "app=ws; Path=/"],
        "the gateway's cookie first, then the upstream's own headers",
      );
      assert.equal(header(ws, "x-upstream"), name);
      assert.equal(header(ws, "sec-websocket-extensions"), undefined, "no extension negotiated");
      ws.send("whoami");
      assert.equal(await ws.nextText(), name);
      ws.close(1000);
    }
    const seen = upgrades("A").at(-1)!;
    assert.equal(seen.url, "/chat?room=1", "path and query as the client sent them");
    assert.equal(headerOf(seen, "host"), `127.0.0.1:${gw.port}`, "Host as the client sent it");
    assert.equal(headerOf(seen, "x-forwarded-for"), "127.0.0.1");
    assert.equal(headerOf(seen, "x-forwarded-proto"), "http");
    assert.equal(headerOf(seen, "upgrade"), "websocket");
    assert.equal(headerOf(seen, "sec-websocket-version"), "13");
    assert.equal(
      headerOf(seen, "sec-websocket-extensions"),
      undefined,
      "permessage-deflate dropped",
    );
  });

  it("a cookie pins the upgrade to its server: the same one every time, no Set-Cookie", async () => {
    const gw = await startGateway(stickyConfig([A(), B(), C()]));
    for (let i = 0; i < 3; i++) {
      const ws = await rawWebSocket(gw.port, {
        headers: [["Cookie", `theme=dark; route=${md5(B())}`]],
      });
      assert.equal(ws.status, 101);
      assert.deepEqual(headerValues(ws, "set-cookie"), ["app=ws; Path=/"], "no sticky cookie");
      ws.send("whoami");
      assert.equal(await ws.nextText(), "B");
      ws.close(1000);
    }
    assert.equal(headerOf(upgrades("B").at(-1)!, "cookie"), `theme=dark; route=${md5(B())}`);
    // The runtime's own client, with the cookie as a header.
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`, { cookie: `route=${md5(C())}` });
    const next = inbox(ws);
    ws.send("whoami");
    assert.equal(await next(), "C");
    ws.close();
  });

  it("a normal request and the WebSocket of one client land on the same server", async () => {
    const gw = await startGateway(stickyConfig([A(), B()]));
    const first = await fetch(`${gw.url}/`);
    assert.equal(await first.text(), "A");
    const cookie = first.headers.get("set-cookie")!.split(";")[0];
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`, { cookie });
    const next = inbox(ws);
    ws.send("whoami");
    assert.equal(await next(), "A", "the upgrade followed the cookie of the first request");
    ws.close();
  });

  it("text and binary messages pass both ways, whatever their size; fragments are joined", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`);
    const next = inbox(ws);
    ws.send("héllo ✓ 👋");
    assert.equal(await next(), "héllo ✓ 👋");
    const small = new Uint8Array([0, 1, 2, 255]);
    ws.send(small);
    assert.deepEqual(await next(), small);
    const medium = "x".repeat(70_000); // a 16-bit length
    ws.send(medium);
    assert.equal(await next(), medium);
    const large = new Uint8Array(3 * 1024 * 1024).map((_, i) => i * 7); // a 64-bit length
    ws.send(large);
    const echoed = await next(10_000);
    assert.ok(echoed instanceof Uint8Array);
    assert.equal(Buffer.compare(Buffer.from(echoed), Buffer.from(large)), 0);
    ws.send("fragments");
    assert.equal(await next(), "frag-mented");
    // Many small messages keep their order.
    for (let i = 0; i < 200; i++) ws.send(`m${i}`);
    for (let i = 0; i < 200; i++) assert.equal(await next(), `m${i}`);
    ws.close();
  });

  it("a client that reads slowly loses nothing: reading from the upstream waits for it", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    const ws = await rawWebSocket(gw.port);
    ws.pause();
    ws.send("flood 48 1048576");
    await sleep(1000); // 48 MiB do not fit in the socket buffers: the gateway must hold back
    ws.resume();
    for (let k = 0; k < 48; k++) {
      const frame = await ws.next(10_000);
      assert.equal(frame.type, "binary", `message ${k}`);
      const data = (frame as { data: Uint8Array }).data;
      assert.equal(data.length, 1048576);
      assert.equal(data[0], k & 255, `message ${k} in order`);
      assert.equal(data[1048575], (k + 1048575) & 255);
    }
    assert.equal(await ws.nextText(), "flood done");
    ws.close(1000);
  });

  it("close codes and reasons pass both ways", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    // The client closes.
    const client = await openWebSocket(`ws://127.0.0.1:${gw.port}/`);
    const clientClosed = closed(client);
    client.close(4001, "client says bye");
    const seen = await ups.waitFor(
      (l) => l.event === "close" && l.code === 4001,
      5000,
      "upstream sees the client's close",
    );
    assert.equal(seen.reason, "client says bye");
    assert.equal((await clientClosed).code, 4001, "the close handshake completed");
    // The upstream closes.
    for (
      const [code, reason] of [[4002, "server says bye"], [1001, "going away"], [1011, "oops"]]
    ) {
      const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`);
      const done = closed(ws);
      ws.send(`close ${code} ${reason}`);
      assert.deepEqual(await done, { code, reason });
    }
  });

  it("the subprotocol is the one the upstream chose from the client's list", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`, {
      protocols: ["nope", "superchat", "chat"],
    });
    assert.equal(ws.protocol, "superchat");
    assert.equal(headerOf(upgrades().at(-1)!, "sec-websocket-protocol"), "nope, superchat, chat");
    ws.close();
    const raw = await rawWebSocket(gw.port, { headers: [["Sec-WebSocket-Protocol", "chat"]] });
    assert.equal(header(raw, "sec-websocket-protocol"), "chat");
    raw.close(1000);
    const none = await rawWebSocket(gw.port, { headers: [["Sec-WebSocket-Protocol", "other"]] });
    assert.equal(none.status, 101);
    assert.equal(header(none, "sec-websocket-protocol"), undefined, "the upstream chose none");
    none.close(1000);
  });

  it("an upstream refusing the upgrade: the client gets its status, headers and body (not a hang)", async () => {
    const gw = await startGateway(stickyConfig([A(), B()]));
    const raw = await rawWebSocket(gw.port, { path: "/refuse" });
    assert.equal(raw.status, 403);
    assert.equal(raw.body.toString(), "refused by A");
    assert.equal(header(raw, "x-upstream"), "A");
    assert.deepEqual(headerValues(raw, "set-cookie"), [setCookie(A()), "app=1; Path=/"]);
    // The runtime's client fails at once.
    const failed = await openWebSocket(`ws://127.0.0.1:${gw.port}/refuse`).then(
      () => "opened",
      (error: Error) => error.message,
    );
    assert.notEqual(failed, "opened");
  });

  it("a pinned server refusing connections: the next server and a new cookie; counted as a failure", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(stickyConfig([refusing, A(), B()]));
    const ws = await rawWebSocket(gw.port, { headers: [["Cookie", `route=${md5(refusing)}`]] });
    assert.equal(ws.status, 101);
    assert.deepEqual(headerValues(ws, "set-cookie"), [setCookie(A()), "app=ws; Path=/"]);
    ws.send("whoami");
    assert.equal(await ws.nextText(), "A");
    ws.close(1000);
    // The structured event (stderr), written soon after the answer.
    await eventually(() => /connect_refused/.test(gw.stderr()), 2000, "the connect_refused event");
    // max_fails = 1: the refusing server is now skipped by new sessions (B, then A).
    const fresh = await rawWebSocket(gw.port);
    assert.equal(header(fresh, "set-cookie"), setCookie(B()));
    fresh.close(1000);
  });

  it("a pinned server refusing under no_fallback, or no server at all → 502, as for a GET", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const strict = await startGateway(stickyConfig([refusing, A()], "no_fallback = true"));
    const pinned = await rawWebSocket(strict.port, {
      headers: [["Cookie", `route=${md5(refusing)}`]],
    });
    assert.equal(pinned.status, 502);
    assert.equal(header(pinned, "x-gateway-error"), "connect_refused");
    assert.deepEqual(headerValues(pinned, "set-cookie"), []);
    await strict.stop();

    const down = await startGateway(stickyConfig([refusing, `127.0.0.1:${await closedPort()}`]));
    const none = await rawWebSocket(down.port);
    assert.equal(none.status, 502);
    assert.equal(header(none, "x-gateway-error"), "connect_refused");
  });

  it("an upstream that accepts but never answers the handshake → 504 after read_timeout", async () => {
    const hanging = await startHangingServer();
    const gw = await startGateway(
      `[server]\nread_timeout = "300ms"\n${stickyConfig([hanging.address])}`,
    );
    const started = Date.now();
    const answer = await rawWebSocket(gw.port);
    assert.equal(answer.status, 504);
    assert.equal(header(answer, "x-gateway-error"), "read_timeout");
    assert.ok(Date.now() - started < 5000);
    await hanging.close();
  });

  it("upstream pings reach the client end to end (the gateway's own WebSocket server on plain HTTP)", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`);
    const next = inbox(ws);
    ws.send("ping heartbeat-1");
    assert.equal(await next(), "pong heartbeat-1", "the upstream got its pong with the payload");
    ws.close();
    // The raw client sees the ping itself: plain-HTTP listeners are served by the gateway's own
    // WebSocket end on both runtimes (src/runtime/front/websocket.ts), which relays pings.
    const raw = await rawWebSocket(gw.port);
    raw.send("ping heartbeat-2");
    const frame = await raw.next();
    assert.deepEqual(frame.type, "ping");
    // The raw client does not answer: no pong reaches the upstream.
    raw.destroy();
  });

  it("client pings are answered by the gateway's runtime", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    const raw = await rawWebSocket(gw.port);
    raw.ping("are-you-there");
    const frame = await raw.next();
    assert.equal(frame.type, "pong");
    assert.equal(Buffer.from((frame as { data: Uint8Array }).data).toString(), "are-you-there");
    raw.close(1000);
  });

  it("either side going away closes the other", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    // The client drops its TCP connection: the upstream sees an abnormal closure.
    const raw = await rawWebSocket(gw.port);
    raw.send("whoami");
    await raw.nextText();
    const before = ups.lines.length;
    raw.destroy();
    const seen = await ups.waitFor(
      (l) => l.event === "close" && ups.lines.indexOf(l) >= before,
      5000,
      "upstream close after the client vanished",
    );
    assert.equal(seen.code, 1006);
    // The upstream drops its connection: the gateway drops the client's too, an abnormal closure
    // (1006; Deno's WebSocket client reports it as code 0).
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`);
    const done = closed(ws);
    ws.send("terminate");
    const code = (await done).code;
    assert.ok(code === 1006 || ("Deno" in globalThis && code === 0), `close code ${code}`);
  });

  it("stopping the gateway closes open sessions with 1001 and does not wait for them", async () => {
    const gw = await startGateway(stickyConfig([A()]));
    const ws = await openWebSocket(`ws://127.0.0.1:${gw.port}/`);
    const done = closed(ws);
    const before = ups.lines.length;
    const started = Date.now();
    assert.equal(await gw.stop("SIGTERM"), 0);
    assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`);
    assert.equal((await done).code, 1001);
    const seen = await ups.waitFor(
      (l) => l.event === "close" && ups.lines.indexOf(l) >= before,
      5000,
      "upstream close on stop",
    );
    assert.ok(seen.code === 1001 || seen.code === 1006, `upstream saw ${seen.code}`);
    await sleep(0);
  });
});

describe("WebSocket with TLS on both sides", () => {
  let certs: Certificates;
  let secure: WsUpstreams;
  before(async () => {
    certs = makeCertificates();
    secure = await startWsUpstreams(["S"], certs);
  });
  after(async () => {
    await stopAllGateways();
    await secure.stop();
    certs.remove();
  });

  it("wss from the client (TLS terminated by the gateway) to a wss upstream (tls = true)", async () => {
    const gw = await startGateway(`
[server]
tls = { cert = ${JSON.stringify(certs.certFile)}, key = ${JSON.stringify(certs.keyFile)} }

[upstreams.app]
servers = ["${secure.address("S")}"]
tls = true
ca = ${JSON.stringify(certs.caFile)}
[upstreams.app.sticky]
secure = true
`);
    const ws = await rawWebSocket(gw.port, { ca: certs.ca });
    assert.equal(ws.status, 101);
    assert.deepEqual(
      headerValues(ws, "set-cookie")[0],
      `route=${md5(secure.address("S"))}; Path=/; Secure`,
      "the cookie value comes from the address text, TLS or not",
    );
    ws.send("whoami");
    assert.equal(await ws.nextText(), "S");
    ws.send(new Uint8Array([9, 8, 7]));
    const binary = await ws.next();
    assert.equal(binary.type, "binary");
    assert.deepEqual([...(binary as { data: Uint8Array }).data], [9, 8, 7]);
    const seen = secure.lines.findLast((l) => l.event === "upgrade")!;
    assert.equal(headerOf(seen, "x-forwarded-proto"), "https");
    ws.close(4000, "done");
    const closed = await secure.waitFor((l) => l.event === "close", 5000, "upstream close");
    assert.deepEqual([closed.code, closed.reason], [4000, "done"]);
  });
});
