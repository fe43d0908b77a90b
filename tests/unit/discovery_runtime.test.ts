/**
 * DNS discovery's main-thread side (issue 13 point 1 and its "Bad input"): the answers kept
 * between questions (a failure keeps the last good one, logged once per kind of failure and
 * counted each time; a change is announced once; a vanished address stays as vanishing for
 * `vanish_grace`; 10,000 addresses are bounded by `max_servers`, also when they rotate), and the
 * `node:dns` asker against real UDP servers on loopback that answer garbage or nothing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { parseConfig } from "../../src/config/mod.ts";
import { Discovery, discoverySettings } from "../../src/discovery/discovery.ts";
import {
  LookupError,
  type LookupResult,
  type Lookups,
  NodeDnsLookups,
  type Question,
} from "../../src/discovery/lookup.ts";
import type { DiscoveredAddress } from "../../src/discovery/types.ts";

/** Answers from a script: a list of addresses, or an error code. */
class ScriptedLookups implements Lookups {
  next: readonly DiscoveredAddress[] | string = [];
  asked: Question[] = [];
  lookup(question: Question): Promise<LookupResult> {
    this.asked.push(question);
    const next = this.next;
    if (typeof next === "string") return Promise.reject(new LookupError(next, `A x: ${next}`));
    return Promise.resolve({ addresses: next, leftOut: 0 });
  }
}

interface Logged {
  level: string;
  event: string;
  fields: Record<string, unknown>;
}

function setup(entry = `{ dns = "app.internal:8080" }`) {
  const config = parseConfig(`[upstreams.app]\nservers = [${entry}]\n`);
  const lookups = new ScriptedLookups();
  const logged: Logged[] = [];
  let changes = 0;
  let now = 1000;
  const discovery = new Discovery(discoverySettings(config), {
    lookups: () => lookups,
    log: (level, event, fields = {}) => void logged.push({ level, event, fields }),
    onChange: () => void changes++,
    now: () => now,
  });
  return {
    discovery,
    lookups,
    logged,
    changes: () => changes,
    advance: (ms: number) => void (now += ms),
    answer: () => discovery.snapshot().get("A app.internal"),
  };
}

describe("Discovery", () => {
  it("keeps the last good answer when the resolver fails; logs each new failure once, counts all", async () => {
    const t = setup();
    t.lookups.next = [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }];
    await t.discovery.first(1000);
    assert.equal(t.changes(), 1);
    for (const failure of ["ETIMEOUT", "ETIMEOUT", "ETIMEOUT", "EBADRESP"]) {
      t.lookups.next = failure;
      await t.discovery.first(1000);
    }
    assert.deepEqual(t.answer(), [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }]);
    assert.equal(t.changes(), 1, "a failure is no change");
    const failed = t.logged.filter((l) => l.event === "dns_failed").map((l) => l.fields.error);
    assert.deepEqual(failed, ["A x: ETIMEOUT", "A x: EBADRESP"]);
    const [figure] = t.discovery.figures();
    assert.deepEqual(
      [figure.resolutions, figure.failures, figure.addresses, figure.error],
      [1, 4, 2, "A x: EBADRESP"],
    );
    t.lookups.next = [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }];
    await t.discovery.first(1000);
    assert.ok(t.logged.some((l) => l.event === "dns_recovered"));
    assert.equal(t.discovery.figures()[0].error, undefined);
  });

  it("a name that never resolves gives no answer at all (its upstream has no server)", async () => {
    const t = setup();
    t.lookups.next = "EREFUSED";
    await t.discovery.first(1000);
    assert.equal(t.answer(), undefined);
    assert.equal(t.discovery.figures()[0].resolved, false);
    assert.equal(t.changes(), 0);
  });

  it("announces a change once per changed answer, not for the same answer in another order", async () => {
    const t = setup();
    t.lookups.next = [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }];
    await t.discovery.first(1000);
    t.lookups.next = [{ ip: "10.0.0.2" }, { ip: "10.0.0.1" }];
    await t.discovery.first(1000);
    assert.equal(t.changes(), 1);
    t.lookups.next = [{ ip: "10.0.0.2" }, { ip: "10.0.0.3" }];
    await t.discovery.first(1000);
    assert.equal(t.changes(), 2);
    assert.deepEqual(t.answer(), [{ ip: "10.0.0.2" }, { ip: "10.0.0.3" }]);
  });

  it("keeps a vanished address as vanishing for vanish_grace, then drops it", async () => {
    const t = setup(`{ dns = "app.internal:8080", vanish_grace = "10s" }`);
    t.lookups.next = [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }];
    await t.discovery.first(1000);
    t.advance(1000);
    t.lookups.next = [{ ip: "10.0.0.1" }];
    await t.discovery.first(1000);
    assert.deepEqual(t.answer(), [{ ip: "10.0.0.1" }, { ip: "10.0.0.2", vanishing: true }]);
    t.advance(8000);
    await t.discovery.first(1000);
    assert.equal(t.answer()?.length, 2, "still within the grace");
    t.advance(1500);
    await t.discovery.first(1000);
    assert.deepEqual(t.answer(), [{ ip: "10.0.0.1" }]);
    // Back before the grace is over: live again, not vanishing.
    t.lookups.next = [{ ip: "10.0.0.1" }, { ip: "10.0.0.3" }];
    await t.discovery.first(1000);
    t.advance(1000);
    t.lookups.next = [{ ip: "10.0.0.1" }];
    await t.discovery.first(1000);
    t.advance(1000);
    t.lookups.next = [{ ip: "10.0.0.1" }, { ip: "10.0.0.3" }];
    await t.discovery.first(1000);
    assert.deepEqual(t.answer(), [{ ip: "10.0.0.1" }, { ip: "10.0.0.3" }]);
  });

  it("bounds 10,000 addresses by max_servers, logged; rotating answers do not grow what is kept", async () => {
    const t = setup(`{ dns = "app.internal:8080", max_servers = 100, vanish_grace = "1h" }`);
    const block = (from: number) =>
      Array.from(
        { length: 10_000 },
        (_, i) => ({
          ip: `10.${(from + i) >> 16 & 255}.${(from + i) >> 8 & 255}.${(from + i) & 255}`,
        }),
      );
    t.lookups.next = block(0);
    await t.discovery.first(1000);
    assert.equal(t.lookups.asked[0].limit, 100, "the asker is told the bound");
    assert.equal(t.answer()?.length, 100);
    assert.equal(t.discovery.figures()[0].leftOut, 9_900);
    assert.ok(
      t.logged.some((l) => l.event === "dns_servers_left_out" && l.fields.left_out === 9_900),
    );
    for (let round = 1; round <= 20; round++) {
      t.advance(1000);
      t.lookups.next = block(round * 10_000);
      await t.discovery.first(1000);
      assert.ok(t.answer()!.length <= 200, `round ${round}: ${t.answer()!.length} kept`);
    }
  });

  it("follows a reload's entries: a name no entry asks is dropped, a new one is asked", async () => {
    const t = setup();
    t.lookups.next = [{ ip: "10.0.0.1" }];
    await t.discovery.first(1000);
    t.discovery.configure(
      discoverySettings(
        parseConfig(`[upstreams.app]\nservers = [{ dns = "other.internal:80" }]\n`),
      ),
    );
    assert.deepEqual([...t.discovery.snapshot().keys()], []);
    assert.deepEqual(t.discovery.figures().map((f) => f.query), ["A other.internal"]);
  });

  it("re-asks on the interval once running, and stops", async () => {
    const t = setup(`{ dns = "app.internal:8080", interval = "100ms" }`);
    t.lookups.next = [{ ip: "10.0.0.1" }];
    await t.discovery.first(1000);
    t.discovery.run(t.discovery.snapshot());
    await new Promise((resolve) => setTimeout(resolve, 450));
    t.discovery.stop();
    const asked = t.lookups.asked.length;
    assert.ok(asked >= 3 && asked <= 6, `${asked} questions in 450 ms at 100 ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(t.lookups.asked.length, asked, "none after stop");
  });
});

/** A UDP "DNS server" on loopback that answers every question with `reply(question)`. */
async function udpServer(
  reply: (question: Buffer) => Buffer | undefined,
): Promise<{ socket: Socket; address: string }> {
  const socket = createSocket("udp4");
  socket.on("message", (message, remote) => {
    const answer = reply(message);
    if (answer !== undefined) socket.send(answer, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { socket, address: `127.0.0.1:${socket.address().port}` };
}

describe("NodeDnsLookups against a broken resolver", () => {
  it("a resolver answering garbage (its own id, random bytes) is a LookupError, not a crash", async () => {
    const garbage = await udpServer((q) =>
      Buffer.concat([q.subarray(0, 2), Buffer.from("\xff\xfe garbage, not DNS", "latin1")])
    );
    try {
      const lookups = new NodeDnsLookups([garbage.address], 1000);
      for (const type of ["A", "SRV"] as const) {
        const started = performance.now();
        await assert.rejects(
          lookups.lookup({ type, name: "app.internal", limit: 10 }),
          LookupError,
        );
        assert.ok(performance.now() - started < 1500, "within the timeout");
      }
    } finally {
      garbage.socket.close();
    }
  });

  it("a resolver that never answers times out (ETIMEOUT) within the timeout", async () => {
    const silent = await udpServer(() => undefined);
    try {
      const lookups = new NodeDnsLookups([silent.address], 600);
      const started = performance.now();
      await assert.rejects(
        lookups.lookup({ type: "A", name: "app.internal", limit: 10 }),
        (error: LookupError) => error.code === "ETIMEOUT",
      );
      const took = performance.now() - started;
      assert.ok(took >= 500 && took < 1200, `${took} ms`);
      lookups.cancel();
    } finally {
      silent.socket.close();
    }
  });
});
