/**
 * A reload's swap in one thread (issue 10): the gateway takes new requests on the new generation
 * while one under way finishes on its own, and the upstream client keeps the pools of servers
 * still configured while closing those of removed ones.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";
import { parseConfig, type Server } from "../../src/config/mod.ts";
import { Gateway } from "../../src/proxy/gateway.ts";
import { Http1Transport } from "../../src/proxy/http1.ts";
import type { Transport, UpstreamResponse } from "../../src/proxy/transport.ts";
import { SharedState } from "../../src/state/shared_state.ts";
import { sameRotation } from "../../src/reload/changes.ts";
import { toResponse } from "../../src/runtime/shared/answer.ts";
import { connectNodeSocket } from "../../src/runtime/shared/node_socket.ts";

const CLIENT = { remoteAddress: "192.0.2.1", protocol: "http" as const };

function config(servers: string, httponly = false) {
  return parseConfig(`
[upstreams.app]
servers = [${servers}]
[upstreams.app.sticky]
httponly = ${httponly}
`);
}

describe("reload: the gateway's swap", () => {
  it("takes new requests on the new generation; one under way finishes on its own", async () => {
    const gen1 = config(`"127.0.0.1:1"`);
    let release: (() => void) | undefined;
    const transport: Transport = {
      async send(server: Server): Promise<UpstreamResponse> {
        if (server.address.port === 1) await new Promise<void>((r) => release = r);
        const body = new TextEncoder().encode(server.address.text);
        return { status: 200, statusText: "OK", headers: [], body };
      },
      close() {},
    };
    const state1 = SharedState.create(gen1);
    const gateway = new Gateway(gen1, transport, { state: state1 });
    const slow = gateway.handle(new Request("http://gw.test/"), CLIENT);
    while (release === undefined) await new Promise((r) => setTimeout(r, 1));

    const gen2 = config(`"127.0.0.1:2"`, true);
    gateway.reload(gen2, SharedState.carry(gen2, state1, gen1, sameRotation));
    const fresh = toResponse(await gateway.handle(new Request("http://gw.test/"), CLIENT));
    assert.equal(await fresh.text(), "127.0.0.1:2");
    assert.match(fresh.headers.get("set-cookie") ?? "", /HttpOnly/);

    release();
    const old = toResponse(await slow);
    assert.equal(await old.text(), "127.0.0.1:1", "the request under way keeps its generation");
    assert.doesNotMatch(old.headers.get("set-cookie") ?? "", /HttpOnly/);
  });
});

/** An upstream answering `ok` to each request, keeping connections open; counts closes. */
async function upstream() {
  let closed = 0;
  let opened = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    opened++;
    sockets.add(socket);
    socket.on("data", (data: Buffer) => {
      if (data.includes("\r\n\r\n")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closed++;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get opened() {
      return opened;
    },
    get closed() {
      return closed;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serverAt(port: number): Server {
  return config(`"127.0.0.1:${port}"`).upstreams.get("app")!.servers[0];
}

async function waitFor(check: () => boolean, what: string) {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("reload: the upstream client's pools", () => {
  it("keeps the pools of servers still configured and closes those of removed ones", async () => {
    const kept = await upstream();
    const gone = await upstream();
    const transport = new Http1Transport(connectNodeSocket);
    const limits = { connectTimeoutMs: 2000, readTimeoutMs: 2000 };
    const get = {
      method: "GET",
      target: "/",
      headers: [["host", "h"]] as [string, string][],
      body: null,
    };
    try {
      for (const port of [kept.port, gone.port]) {
        const answer = await transport.send(serverAt(port), get, limits);
        assert.equal(answer.status, 200);
      }
      assert.equal(transport.idleCount(), 2);
      // A new snapshot's Server object for the same address: the same pool.
      transport.retain([serverAt(kept.port)]);
      assert.equal(transport.idleCount(), 1);
      await waitFor(() => gone.closed === 1, "the removed server's idle connection closes");
      await transport.send(serverAt(kept.port), get, limits);
      assert.equal(kept.opened, 1, "the kept server's connection is reused");
      // A connection to a removed server that was in use is not pooled when its request ends.
      await transport.send(serverAt(gone.port), get, limits);
      assert.equal(transport.idleCount(), 1);
      await waitFor(() => gone.closed === 2, "closed after its request");
    } finally {
      transport.close();
      await kept.close();
      await gone.close();
    }
  });
});
