/**
 * Client connection limits of the HTTP/1.1 front (issue 8 point 9), with the real gateway process
 * and raw sockets: `client_header_timeout` closes a silent connection (408 when part of a head
 * came), `keepalive_timeout` closes an idle keep-alive connection silently, `max_connections`
 * answers the connection beyond it with 503 and closes it; the gateway serves others meanwhile.
 * Before the front, Deno.serve kept a silent connection open for minutes and had no connection
 * cap.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { type RunningGateway, startGateway, stopAllGateways } from "../support/gateway.ts";
import { rawRequest } from "../support/http.ts";
import { eventually, type RealtimeUpstream, startRealtimeUpstream } from "../support/realtime.ts";

/** A raw client connection: what it received so far, and whether the gateway closed it. */
interface Raw {
  readonly socket: Socket;
  received(): string;
  closed(): boolean;
}

function open(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    let text = "";
    let ended = false;
    const socket = connect({ host: "127.0.0.1", port });
    socket.on("data", (chunk) => text += chunk.toString("latin1"));
    socket.on("error", () => ended = true);
    socket.on("close", () => ended = true);
    socket.once("connect", () => resolve({ socket, received: () => text, closed: () => ended }));
    socket.once("error", reject);
  });
}

/** One whole 200 "ok" (the upstream may answer with a length or chunked). */
const OK = /^HTTP\/1\.1 200 [^]*\r\n\r\n(ok|2\r\nok\r\n0\r\n\r\n)$/;
/** Whole "ok" bodies in `text`. */
const oks = (text: string) => text.match(/\r\n\r\n(ok|2\r\nok\r\n0\r\n\r\n)/g)?.length ?? 0;

describe("client connection limits (the HTTP/1.1 front)", () => {
  let U: RealtimeUpstream;
  let timeouts: RunningGateway;
  let capped: RunningGateway;
  const sockets: Socket[] = [];
  before(async () => {
    U = await startRealtimeUpstream();
    const upstream = `[upstreams.app]\nservers = ["${U.address}"]\n`;
    timeouts = await startGateway(
      `[server]\nclient_header_timeout = "1s"\nkeepalive_timeout = "1s"\n${upstream}`,
    );
    capped = await startGateway(`[server]\nmax_connections = 2\n${upstream}`);
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await stopAllGateways();
    await U.close();
  });

  async function client(port: number): Promise<Raw> {
    const raw = await open(port);
    sockets.push(raw.socket);
    return raw;
  }

  it("client_header_timeout: a connection that sends nothing is closed (silently)", async () => {
    const silent = await client(timeouts.port);
    const served = await rawRequest(timeouts.port);
    assert.equal(served.status, 200, "the gateway serves others meanwhile");
    await eventually(silent.closed, 5000, "the silent connection closed");
    assert.equal(silent.received(), "");
  });

  it("client_header_timeout: a head still incomplete after it gets 408 request_timeout, then the close", async () => {
    const slow = await client(timeouts.port);
    slow.socket.write("GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: ");
    await eventually(slow.closed, 5000, "the slow connection closed");
    assert.match(slow.received(), /^HTTP\/1\.1 408 /);
    assert.match(slow.received(), /\r\nx-gateway-error: request_timeout\r\n/);
    assert.match(slow.received(), /\r\nconnection: close\r\n/);
  });

  it("client_header_timeout counts from a head's first byte: a head trickled within it is served", async () => {
    const trickle = await client(timeouts.port);
    trickle.socket.write("GET / HTTP/1.1\r\n");
    await new Promise((resolve) => setTimeout(resolve, 300));
    trickle.socket.write("Host: x\r\nConnection: close\r\n\r\n");
    await eventually(trickle.closed, 5000, "the answer");
    assert.match(trickle.received(), OK);
  });

  it("keepalive_timeout: an idle keep-alive connection is closed silently after its answer", async () => {
    const idle = await client(timeouts.port);
    idle.socket.write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(() => OK.test(idle.received()), 5000, "the first answer");
    const answered = idle.received();
    assert.doesNotMatch(answered, /connection: close/i);
    await eventually(idle.closed, 5000, "the idle connection closed");
    assert.equal(idle.received(), answered, "nothing more was sent (no 408)");
    const served = await rawRequest(timeouts.port);
    assert.equal(served.status, 200);
  });

  it("a keep-alive connection in use is not cut: requests 600 ms apart for 2 s are all served", async () => {
    const busy = await client(timeouts.port);
    for (let i = 1; i <= 4; i++) {
      const before = busy.received().length;
      busy.socket.write(`GET /n${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await eventually(() => oks(busy.received().slice(before)) === 1, 5000, `answer ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 600));
    }
    assert.equal(busy.closed(), false);
    assert.equal(busy.received().match(/HTTP\/1\.1 200 /g)?.length, 4);
  });

  it("max_connections = 2: the third connection gets 503 too_many_connections and is closed; the first two are served; a freed slot is used again", async () => {
    const first = await client(capped.port);
    const second = await client(capped.port);
    first.socket.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    second.socket.write("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(
      () => OK.test(first.received()) && OK.test(second.received()),
      5000,
      "two answers",
    );
    const third = await client(capped.port);
    third.socket.write("GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(third.closed, 5000, "the third connection closed");
    assert.match(third.received(), /^HTTP\/1\.1 503 /);
    assert.match(third.received(), /\r\nx-gateway-error: too_many_connections\r\n/);
    // The two kept connections go on being served.
    first.socket.write("GET /a2 HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(() => oks(first.received()) === 2, 5000, "again");
    // Closing one frees its slot.
    first.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const served = await rawRequest(capped.port);
    assert.equal(served.status, 200);
  });
});
