/**
 * socket.io end to end (issue #3 §2): three socket.io servers in separate Node.js processes, no
 * adapter (a session lives on one process only), the gateway in front, and the official
 * `socket.io-client` in the test runner. Each client starts with HTTP long-polling, then
 * upgrades to WebSocket, exchanging messages before and after, and must never see a session
 * error. The same clients against the same servers with sticky off (plain round robin) must
 * fail with "Session ID unknown": proof that the test can fail.
 *
 * The cookie jar: socket.io-client's `withCredentials: true` turns on engine.io-client's own
 * cookie jar on Node-compatible runtimes (Deno and Bun both qualify): it keeps the sticky
 * Set-Cookie of the first polling response and sends it on every later poll and on the
 * WebSocket handshake, as a browser would. Nothing is pre-fetched or hand-carried.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import { startGateway, stopAllGateways, withTimeout } from "../support/gateway.ts";
import {
  type SocketIoUpstream,
  startSocketIoUpstream,
  stopAllNodeUpstreams,
} from "../support/node_upstreams.ts";

let servers: SocketIoUpstream[];

interface Ack {
  readonly server: string;
  readonly payload: unknown;
  readonly transport: string;
}

interface ClientRun {
  /** connect_error messages, unexpected disconnect reasons, failed acks. */
  readonly errors: string[];
  /** The servers that acknowledged this client's messages. */
  readonly servers: Set<string>;
  /** Transports the acknowledgements came over, in order. */
  readonly transports: string[];
  /** The transport the session was opened on. */
  openedOn: string;
  /** Whether engine.io upgraded the session to WebSocket. */
  upgraded: boolean;
}

function emitWithAck(socket: Socket, payload: unknown): Promise<Ack> {
  return withTimeout(
    new Promise<Ack>((resolve) => socket.emit("echo", payload, resolve)),
    5000,
    "echo acknowledgement",
  );
}

/** One client: connect (polling), 3 messages, upgrade, 3 more messages, disconnect. */
async function runClient(url: string, id: number): Promise<ClientRun> {
  const run: ClientRun = {
    errors: [],
    servers: new Set(),
    transports: [],
    openedOn: "",
    upgraded: false,
  };
  const socket = io(url, {
    transports: ["polling", "websocket"],
    withCredentials: true,
    forceNew: true,
    reconnection: false,
    timeout: 5000,
  });
  socket.on("connect_error", (error) => run.errors.push(`connect_error: ${error.message}`));
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") run.errors.push(`disconnect: ${reason}`);
  });
  const upgraded = new Promise<void>((resolve) => {
    socket.io.on("open", () => {
      run.openedOn = socket.io.engine.transport.name;
      socket.io.engine.on("upgrade", (transport: { name: string }) => {
        run.upgraded = transport.name === "websocket";
        resolve();
      });
    });
  });
  const echo = async (i: number) => {
    try {
      const ack = await emitWithAck(socket, { client: id, i });
      assert.deepEqual(ack.payload, { client: id, i });
      run.servers.add(ack.server);
      run.transports.push(ack.transport);
    } catch (error) {
      run.errors.push(`echo ${i}: ${(error as Error).message}`);
    }
  };
  try {
    const connected = await withTimeout(
      new Promise<boolean>((resolve) => {
        socket.once("connect", () => resolve(true));
        socket.once("connect_error", () => resolve(false));
      }),
      10_000,
      `client ${id} connect`,
    );
    if (!connected) return run;
    for (let i = 0; i < 3; i++) await echo(i);
    await withTimeout(upgraded, 5000, `client ${id} upgrade`).catch((error: Error) =>
      run.errors.push(error.message)
    );
    for (let i = 3; i < 6; i++) await echo(i);
  } catch (error) {
    run.errors.push((error as Error).message);
  } finally {
    socket.disconnect();
  }
  return run;
}

/** `count` clients through the gateway at once. */
function runClients(url: string, count: number): Promise<ClientRun[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => runClient(url, i)));
}

const sessionErrors = () =>
  servers.flatMap((s) => s.lines.filter((l) => l.event === "session_error"));

describe("socket.io through the gateway", () => {
  before(async () => {
    servers = await Promise.all(["A", "B", "C"].map(startSocketIoUpstream));
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await stopAllNodeUpstreams();
  });

  const config = (sticky: boolean) => `
[upstreams.io]
servers = [${servers.map((s) => `"${s.address}"`).join(", ")}]
${sticky ? "[upstreams.io.sticky]" : ""}
`;

  it("sticky on: every client polls, upgrades to WebSocket and stays on one server, with no session error", async () => {
    const gw = await startGateway(config(true));
    const errorsBefore = sessionErrors().length;
    const runs = await runClients(gw.url, 9);
    for (const [i, run] of runs.entries()) {
      assert.deepEqual(run.errors, [], `client ${i} saw no error`);
      assert.equal(run.servers.size, 1, `client ${i} stayed on one server`);
      assert.ok(run.upgraded, `client ${i} upgraded to WebSocket`);
      assert.equal(run.openedOn, "polling", `client ${i} opened its session by long-polling`);
      assert.equal(run.transports.at(-1), "websocket", `client ${i} ended on WebSocket`);
    }
    const used = new Set(runs.flatMap((run) => [...run.servers]));
    assert.deepEqual([...used].sort(), ["A", "B", "C"], "new sessions were balanced");
    assert.deepEqual(sessionErrors().slice(errorsBefore), [], "no server refused a session");
  });

  it("sticky off (plain round robin): the same clients fail with session errors", async () => {
    const gw = await startGateway(config(false));
    const errorsBefore = sessionErrors().length;
    const runs = await runClients(gw.url, 9);
    const failed = runs.filter((run) => run.errors.length > 0);
    assert.ok(failed.length > 0, "without stickiness the test must fail");
    assert.ok(
      failed.length >= runs.length / 2,
      `most clients fail (${failed.length} of ${runs.length})`,
    );
    const refused = sessionErrors().slice(errorsBefore);
    assert.ok(refused.length > 0, "the servers refused sessions they did not know");
    assert.ok(
      refused.every((l) => l.message === "Session ID unknown"),
      JSON.stringify(refused.slice(0, 3)),
    );
  });
});
