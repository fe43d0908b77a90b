/**
 * Stopping: SIGTERM/SIGINT let in-flight requests finish and exit 0 promptly (a container's
 * `stop` must not hang); idle keep-alive connections do not hold the process; the grace period
 * bounds a request that takes too long.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import { startGateway, stopAllGateways, withTimeout } from "../support/gateway.ts";
import { ask } from "../support/http.ts";
import {
  closeAllUpstreams,
  type NamedUpstream,
  nextEvent,
  type RecordedRequest,
  startNamedUpstream,
} from "../support/upstreams.ts";

/** Whether a new TCP connection to `port` is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("shutdown", () => {
  let U: NamedUpstream;
  before(async () => {
    U = await startNamedUpstream("U");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });
  const config = (extra = "") => `
[server]
${extra}

[upstreams.app]
servers = ["${U.address}"]
[upstreams.app.sticky]
`;

  it("SIGTERM with a slow request in flight: it completes, new connections are refused, exit 0 promptly", async () => {
    const gw = await startGateway(config());
    const arrived = nextEvent<RecordedRequest>(U.events, "request", 5000);
    const inflight = ask(gw.port, { path: "/slow?ms=1500", timeoutMs: 10_000 });
    await arrived;
    const signalled = Date.now();
    const exit = gw.stop("SIGTERM", 8000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await accepts(gw.port), false, "still accepting connections after SIGTERM");
    const answer = await inflight;
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "U (slow)");
    const code = await exit;
    const took = Date.now() - signalled;
    assert.equal(code, 0, gw.stderr());
    assert.ok(
      took < 4000,
      `exit ${took} ms after SIGTERM (the request needed ~1.5 s; grace period 10 s)`,
    );
    assert.match(gw.stdout(), /SIGTERM/);
  });

  it("SIGINT when idle → exit 0 at once", async () => {
    const gw = await startGateway(config());
    assert.equal((await ask(gw.port)).status, 200);
    const start = Date.now();
    assert.equal(await gw.stop("SIGINT", 5000), 0);
    assert.ok(Date.now() - start < 2000, `took ${Date.now() - start} ms`);
  });

  it("an idle keep-alive client connection does not hold up the exit", async () => {
    const gw = await startGateway(config());
    const socket: Socket = connect({ host: "127.0.0.1", port: gw.port });
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
    });
    socket.on("error", () => {});
    await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), 5000, "connect");
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`);
    await withTimeout(
      new Promise<void>((resolve) => {
        // Body "U", with Content-Length or chunked.
        const check = () => (/\r\n\r\n(U|1\r\nU\r\n0\r\n\r\n)$/.test(received)
          ? resolve()
          : setTimeout(check, 10));
        check();
      }),
      5000,
      "keep-alive response",
    );
    const start = Date.now();
    try {
      assert.equal(await gw.stop("SIGTERM", 8000), 0);
      assert.ok(
        Date.now() - start < 3000,
        `took ${Date.now() - start} ms with an idle connection open`,
      );
    } finally {
      socket.destroy();
    }
  });

  it("a request longer than grace_period does not keep the process: exit 0 after the grace period", async () => {
    const gw = await startGateway(config(`grace_period = "1s"`));
    const arrived = nextEvent<RecordedRequest>(U.events, "request", 5000);
    const inflight = ask(gw.port, { path: "/slow?ms=20000", timeoutMs: 25_000 }).then(
      (answer) => `status ${answer.status}`,
      (error: Error) => `failed: ${error.message.split("\n")[0]}`,
    );
    await arrived;
    const start = Date.now();
    assert.equal(await gw.stop("SIGTERM", 8000), 0);
    const took = Date.now() - start;
    assert.ok(took >= 900 && took < 4000, `exit ${took} ms after SIGTERM with grace_period 1s`);
    const outcome = await withTimeout(inflight, 5000, "the cut request to end");
    assert.notEqual(outcome, "status 200", "the slow request cannot have completed");
  });
});
