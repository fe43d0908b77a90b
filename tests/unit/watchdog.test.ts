/**
 * The watchdog's list of exchanges: watches end in any order (the last moves into an ended one's
 * slot), an exchange that times out can end others during the same tick, and every watch is
 * stopped once and no longer counted after its end.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TICK_MS, Watchdog } from "../../src/proxy/watchdog.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("Watchdog", () => {
  it("counts the watches under way, whatever order they end in", () => {
    const watchdog = new Watchdog();
    try {
      const watches = Array.from({ length: 6 }, () => watchdog.watch(undefined, () => {}));
      assert.equal(watchdog.size, 6);
      for (const i of [2, 0, 5, 3]) watches[i].end();
      assert.equal(watchdog.size, 2);
      watches[2].end(); // twice: no effect
      assert.equal(watchdog.size, 2);
      watches[1].end();
      watches[4].end();
      assert.equal(watchdog.size, 0);
    } finally {
      watchdog.stop();
    }
  });

  it("times out each waiting exchange once, also when a timeout ends other watches in its tick", async () => {
    const watchdog = new Watchdog();
    try {
      const stops = new Map<number, number>();
      const watches = Array.from({ length: 5 }, (_, i) =>
        watchdog.watch(undefined, () => {
          stops.set(i, (stops.get(i) ?? 0) + 1);
          watches[i].end();
          // The first to time out also ends two others that are not waiting.
          if (i === 4) { for (const other of [0, 1]) watches[other].end(); }
        }));
      for (const i of [2, 3, 4]) watches[i].waitFor(1);
      const late = watchdog.watch(undefined, () => assert.fail("not waiting: never stopped"));
      await sleep(3 * TICK_MS);
      assert.deepEqual([...stops.entries()].sort(), [[2, 1], [3, 1], [4, 1]]);
      assert.ok(watches.slice(2).every((w) => w.timedOut));
      assert.equal(watchdog.size, 1);
      late.end();
      assert.equal(watchdog.size, 0);
    } finally {
      watchdog.stop();
    }
  });
});
