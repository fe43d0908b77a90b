/**
 * Client aborts propagate (issue 3, point 4), with each upstream client: a client that goes away
 * while the upstream prepares its answer, while the answer streams, or in the middle of an
 * upload makes the gateway close that upstream connection (the upstream sees it close before
 * its answer is complete), and nothing is left behind: after 1,000 aborted requests the
 * upstream's open connections are back to what they were, and the next request is served (an
 * abort is never counted against the upstream server).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import { startGateway, stopAllGateways, withTimeout } from "../support/gateway.ts";
import { ask } from "../support/http.ts";
import {
  eventually,
  EventWaiter,
  type RealtimeUpstream,
  startRealtimeUpstream,
} from "../support/realtime.ts";

/** Runs `task(0..count-1)` with at most `width` at a time. */
async function inParallel(
  count: number,
  width: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: width }, lane));
}

/** A client connection sending `head` (and `body`); resolves once it is connected and written. */
function openClient(port: number, head: string, body?: Uint8Array): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.on("error", () => {});
    socket.once("connect", () => {
      socket.write(Buffer.from(head, "latin1"));
      if (body !== undefined) socket.write(body);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Resolves on the first `data` from `socket` holding bytes after the response head. */
function firstBodyBytes(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen += chunk.toString("latin1");
      const headEnd = seen.indexOf("\r\n\r\n");
      if (headEnd >= 0 && seen.length > headEnd + 4) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.once(
      "close",
      () => reject(new Error(`closed before body bytes: ${seen.slice(0, 200)}`)),
    );
  });
}

const CHUNK = new Uint8Array(16 * 1024).fill(97);

for (const client of ["http1", "fetch"] as const) {
  describe(`client aborts (upstream_client = "${client}")`, () => {
    let U: RealtimeUpstream;
    let waiter: EventWaiter;
    let port = 0;
    let baseline = 0;
    before(async () => {
      U = await startRealtimeUpstream();
      waiter = new EventWaiter(U.events, ["request", "body-start", "closed-early"]);
      port = (await startGateway(`
[server]
upstream_client = "${client}"
[upstreams.app]
servers = ["${U.address}"]
`)).port;
      assert.equal((await ask(port)).status, 200);
      baseline = U.openConnections();
    });
    after(async () => {
      await stopAllGateways();
      await U.close();
    });

    /** The upstream's connections return to the baseline and the next request is served. */
    async function assertNothingLeft(): Promise<void> {
      await eventually(
        () => U.openConnections() <= baseline,
        5000,
        `upstream connections back to ${baseline} (now ${U.openConnections()})`,
      );
      const next = await ask(port);
      assert.equal(next.status, 200, "the next request is served (the server is not marked down)");
      assert.equal(next.body, "ok");
    }

    it("1,000 clients that leave while the upstream prepares the answer: each upstream request sees its connection close", async () => {
      const closedBefore = U.closedEarly();
      await withTimeout(
        inParallel(1000, 50, async (i) => {
          const id = `wait-${i}`;
          const arrived = waiter.wait("request", id);
          const socket = await openClient(
            port,
            `GET /hold?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
          );
          await arrived;
          const closed = waiter.wait("closed-early", id);
          socket.destroy();
          await closed;
        }),
        60_000,
        "1,000 aborted requests",
      );
      assert.equal(U.closedEarly() - closedBefore, 1000);
      await assertNothingLeft();
    });

    it("100 clients that leave while the answer streams: the upstream stops streaming to each", async () => {
      const closedBefore = U.closedEarly();
      await withTimeout(
        inParallel(100, 20, async (i) => {
          const id = `stream-${i}`;
          const socket = await openClient(
            port,
            `GET /forever?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
          );
          await firstBodyBytes(socket);
          const closed = waiter.wait("closed-early", id);
          socket.destroy();
          await closed;
        }),
        30_000,
        "100 aborted downloads",
      );
      assert.equal(U.closedEarly() - closedBefore, 100);
      await assertNothingLeft();
    });

    it("100 clients that leave mid-upload (50 chunked, 50 with Content-Length): the upstream sees each upload's connection close", async () => {
      const closedBefore = U.closedEarly();
      await withTimeout(
        inParallel(100, 20, async (i) => {
          const id = `upload-${i}`;
          const framing = i % 2 === 0
            ? "Transfer-Encoding: chunked"
            : `Content-Length: ${10 * CHUNK.length}`;
          const first = i % 2 === 0
            ? Buffer.concat([
              Buffer.from(`${CHUNK.length.toString(16)}\r\n`),
              CHUNK,
              Buffer.from("\r\n"),
            ])
            : CHUNK;
          const started = waiter.wait("body-start", id);
          const socket = await openClient(
            port,
            `POST /upload-hold?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n${framing}\r\n\r\n`,
            first,
          );
          await started;
          const closed = waiter.wait("closed-early", id);
          socket.destroy();
          await closed;
        }),
        30_000,
        "100 aborted uploads",
      );
      assert.equal(U.closedEarly() - closedBefore, 100);
      await assertNothingLeft();
    });
  });
}
