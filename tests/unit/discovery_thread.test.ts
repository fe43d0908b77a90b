/**
 * DNS discovery in its own thread (src/discovery/thread.ts, src/discovery_worker.ts), against a
 * real dnsmasq on loopback: the answers come from the thread, not from this thread's `node:dns`
 * (made to throw here); unchanged answers are figures only (resolutions counted, no change
 * announced); a changed one is announced and served by snapshot(); a name a reload drops leaves
 * the figures at once; stop ends the thread. And node:dns answers: unchanged records give the
 * last result again.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Resolver } from "node:dns";
import { parseConfig } from "../../src/config/mod.ts";
import { discoverySettings } from "../../src/discovery/discovery.ts";
import { DiscoveryThread } from "../../src/discovery/thread.ts";
import { NodeDnsLookups } from "../../src/discovery/lookup.ts";
import { locateDnsmasq, startDnsmasq } from "../dns/dnsmasq.ts";

const found = locateDnsmasq();
const WORKER = new URL("../../src/discovery_worker.ts", import.meta.url).href;

async function until(what: string, test: () => boolean, ms = 5000): Promise<void> {
  const start = performance.now();
  while (!test()) {
    if (performance.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("DiscoveryThread", () => {
  it("resolves in its own thread: unchanged answers are figures only, a change is announced", {
    skip: "reason" in found ? found.reason : false,
  }, async () => {
    const dns = await startDnsmasq((found as { binary: string }).binary, {
      hosts: ["127.0.0.2 app.internal"],
    });
    // Nothing in this thread may ask DNS: the thread's node:dns is its own.
    const prototype = Resolver.prototype as { resolve4: unknown };
    const resolve4 = prototype.resolve4;
    prototype.resolve4 = () => {
      throw new Error("asked in the main thread");
    };
    const config = parseConfig(
      `[server]\nresolver = "127.0.0.1:${dns.port}"\n[upstreams.app]\n` +
        `servers = [{ dns = "app.internal:8080", interval = "100ms" }]\n`,
    );
    let changes = 0;
    const thread = new DiscoveryThread(
      new Worker(WORKER, { type: "module" }),
      discoverySettings(config),
      () => changes++,
    );
    try {
      await thread.first(3000);
      const ips = () => thread.snapshot().get("A app.internal")?.map((a) => a.ip);
      assert.deepEqual(ips(), ["127.0.0.2"]);
      thread.run(thread.snapshot());
      const resolutions = () => thread.figures()[0]?.resolutions ?? 0;
      await until("four more questions", () => resolutions() >= 5);
      assert.equal(changes, 0, "the same answer is no change");
      assert.equal(thread.figures()[0].addresses, 1);

      dns.setHosts(["127.0.0.3 app.internal"]);
      await until("the change announced", () => changes > 0);
      assert.deepEqual(ips(), ["127.0.0.3"]);
      assert.equal(changes, 1);

      // A reload that drops the entry: its name leaves the figures (/metrics, /readyz) at once.
      thread.configure(
        discoverySettings(parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:1"]\n`)),
      );
      await until("the name gone from the figures", () => thread.figures().length === 0, 1000);

      thread.stop();
      const after = resolutions();
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(resolutions(), after, "no figures after stop");
    } finally {
      prototype.resolve4 = resolve4;
      thread.stop();
      await dns.stop();
    }
  });

  it(
    "node:dns: unchanged SRV records give the last result again (the same array); a changed target a new one",
    {
      skip: "reason" in found ? found.reason : false,
    },
    async () => {
      const srv = [8001, 8002, 8003].map((port) =>
        `_http._tcp.app.internal,a.internal,${port},10,1`
      );
      const dns = await startDnsmasq((found as { binary: string }).binary, {
        hosts: ["127.0.0.2 a.internal"],
        srv,
      });
      try {
        const lookups = new NodeDnsLookups([`127.0.0.1:${dns.port}`]);
        const question = { type: "SRV" as const, name: "_http._tcp.app.internal", limit: 10 };
        const first = await lookups.lookup(question);
        const again = await lookups.lookup(question);
        assert.equal(first.addresses.length, 3);
        assert.equal(again.addresses, first.addresses, "the same array: nothing to merge");
        // Another limit is another question.
        const fewer = await lookups.lookup({ ...question, limit: 2 });
        assert.equal(fewer.addresses.length, 2);
        assert.equal(fewer.leftOut, 1);
        dns.setHosts(["127.0.0.3 a.internal"]);
        // Once the 1 s TTL has passed (a runtime may keep the answer that long).
        let changed = await lookups.lookup(question);
        for (let i = 0; i < 40 && changed.addresses === first.addresses; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          changed = await lookups.lookup(question);
        }
        assert.notEqual(changed.addresses, first.addresses);
        assert.deepEqual(changed.addresses.map((a) => `${a.ip}:${a.port}`), [
          "127.0.0.3:8001",
          "127.0.0.3:8002",
          "127.0.0.3:8003",
        ]);
        const a = await lookups.lookup({ type: "A", name: "a.internal", limit: 10 });
        assert.equal(
          (await lookups.lookup({ type: "A", name: "a.internal", limit: 10 })).addresses,
          a.addresses,
        );
        // What is kept is bounded: 256 other questions (a limit each), and the first is forgotten.
        for (let limit = 11; limit < 11 + 256; limit++) {
          await lookups.lookup({ type: "A", name: "a.internal", limit });
        }
        const later = await lookups.lookup({ type: "A", name: "a.internal", limit: 10 });
        assert.notEqual(later.addresses, a.addresses, "forgotten: at most 256 questions kept");
        assert.deepEqual(later.addresses, a.addresses);
      } finally {
        await dns.stop();
      }
    },
  );
});
