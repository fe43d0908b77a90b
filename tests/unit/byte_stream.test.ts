/**
 * The seam's upstream sockets (node:net everywhere, Deno.connect on Deno, Bun.connect on Bun):
 * watching an idle stream (anything arriving is told once, and nothing is lost) and connect
 * errors normalised to ConnectFailure by code, not by message.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { type ByteStream, type Connect, ConnectFailure } from "../../src/runtime/contracts.ts";
import { connectNodeSocket } from "../../src/runtime/shared/node_socket.ts";
import { connectDenoSocket } from "../../src/runtime/deno/socket.ts";
import { connectBunSocket } from "../../src/runtime/bun/socket.ts";
import { toUpstreamError } from "../../src/proxy/errors.ts";
import { fetchConnectFailure } from "../../src/runtime/shared/fetch_errors.ts";

// deno-lint-ignore no-explicit-any
const runtime = globalThis as any;
const connects: [string, Connect][] = [["node:net", connectNodeSocket]];
if (runtime.Deno !== undefined) {
  connects.push(["Deno.connect", (host, port) => connectDenoSocket(runtime.Deno, host, port)]);
}
if (runtime.Bun !== undefined) {
  connects.push(["Bun.connect", (host, port) => connectBunSocket(runtime.Bun, host, port)]);
}

/** A server whose one accepted socket the test drives; closed when `body` ends. */
async function withPeer(
  connect: Connect,
  body: (stream: ByteStream, peer: Socket) => Promise<void>,
): Promise<void> {
  let accepted: (socket: Socket) => void = () => {};
  const peer = new Promise<Socket>((resolve) => accepted = resolve);
  const server = createServer((socket) => {
    socket.on("error", () => {});
    accepted(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const stream = await connect("127.0.0.1", (server.address() as AddressInfo).port);
  const socket = await peer;
  try {
    await body(stream, socket);
  } finally {
    stream.close();
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

function activity(stream: ByteStream): { count: () => number; next: Promise<void> } {
  let count = 0;
  let told: () => void = () => {};
  const next = new Promise<void>((resolve) => told = resolve);
  stream.watchIdle(() => {
    count++;
    told();
  });
  return { count: () => count, next };
}

async function readText(stream: ByteStream, size = 64): Promise<string | null> {
  const into = new Uint8Array(size);
  const n = await stream.read(into);
  return n === null ? null : Buffer.from(into.subarray(0, n)).toString("latin1");
}

for (const [name, connect] of connects) {
  describe(`${name}: an idle stream under watch`, () => {
    it("tells of bytes that arrive, once, and keeps them for the next read", async () => {
      await withPeer(connect, async (stream, peer) => {
        const watched = activity(stream);
        peer.write("stray");
        await watched.next;
        peer.write("more");
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(watched.count(), 1);
        let text = "";
        while (text.length < 9) text += await readText(stream);
        assert.equal(text, "straymore");
      });
    });

    it("tells of the end of the stream, and reads null after it", async () => {
      await withPeer(connect, async (stream, peer) => {
        const watched = activity(stream);
        peer.end();
        await watched.next;
        assert.equal(await readText(stream), null);
      });
    });

    it("tells nothing once unwatched, and nothing is lost either way", async () => {
      await withPeer(connect, async (stream, peer) => {
        const watched = activity(stream);
        stream.unwatchIdle();
        peer.write("answer");
        assert.equal(await readText(stream), "answer");
        assert.equal(watched.count(), 0);
        // Watched again after a read: quiet until something new comes.
        const again = activity(stream);
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(again.count(), 0);
        stream.unwatchIdle();
        await stream.write(new Uint8Array(Buffer.from("ping")));
      });
    });

    it("tells at once when bytes were already waiting", async () => {
      await withPeer(connect, async (stream, peer) => {
        peer.write("early");
        await new Promise((resolve) => setTimeout(resolve, 30));
        const first = activity(stream);
        await first.next;
        stream.unwatchIdle();
        assert.equal(await readText(stream, 2), "ea");
        // Bytes of the arrived chunk not read yet count as activity too.
        const rest = activity(stream);
        await rest.next;
        stream.unwatchIdle();
        assert.equal(await readText(stream), "rly");
      });
    });
  });

  describe(`${name}: connect errors`, () => {
    it("a refused connect rejects with ConnectFailure kind refused", async () => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as AddressInfo).port;
      await new Promise((resolve) => server.close(resolve));
      await assert.rejects(connect("127.0.0.1", port), (error: unknown) => {
        assert.ok(error instanceof ConnectFailure, String(error));
        assert.equal(error.kind, "refused");
        assert.equal(toUpstreamError(error, "connect").code, "connect_refused");
        return true;
      });
    });
  });
}

describe("ConnectFailure to the catalogue", () => {
  it("maps by kind, never by message", () => {
    const cases = [
      ["refused", "connect_refused"],
      ["unreachable", "connect_error"],
      ["timeout", "connect_timeout"],
      ["tls", "upstream_tls"],
      ["other", "connect_error"],
    ] as const;
    for (const [kind, code] of cases) {
      // A message that says something else: only the kind counts.
      const failure = new ConnectFailure(kind, "connection refused: certificate TLS");
      assert.equal(toUpstreamError(failure, "response").code, code, kind);
    }
  });

  it("fetch's rejections: the seam's best-effort reading", () => {
    const deno = new TypeError("fetch failed", {
      cause: new Error("client error (Connect): invalid peer certificate: UnknownIssuer"),
    });
    assert.equal(fetchConnectFailure(deno)?.kind, "tls");
    const bun = Object.assign(new Error("Unable to connect"), { code: "ECONNREFUSED" });
    assert.equal(fetchConnectFailure(bun)?.kind, "refused");
    assert.equal(fetchConnectFailure(new TypeError("connection reset")), undefined);
  });
});
