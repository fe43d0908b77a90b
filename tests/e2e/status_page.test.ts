/**
 * The status page of the real gateway process in headless Chromium (issue 9 point 4): it renders
 * the upstream's servers, shows a server going down within one refresh, and its drain button
 * drains the server for real (the pinned client stays, new clients go elsewhere).
 *
 * `STATUS_PAGE_SCREENSHOT=docs/status-page.png` also saves a screenshot of the page (for the
 * README) after some traffic.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { adminPortOf, sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5 } from "../support/http.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";
import { type Browser, launchBrowser, openPage, textOf } from "../support/browser.ts";

/** Chromium starts (or is installed) in the first test; Bun's hooks cannot wait that long. */
const SLOW = { timeout: 120_000 };

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;
let D: NamedUpstream;

const cookieFor = (u: NamedUpstream) => `route=${md5(u.address)}`;
const row = (id: string) => `section[data-upstream="app"] tr[data-server="${id}"]`;

/** `checks`: active health checks every second and a backup, D (what the screenshot shows). */
function config(adminPort: number, checks = false): string {
  const backup = `\n  { address = "${D.address}", id = "spare", backup = true },`;
  const health = `\n[upstreams.app.health]\npath = "/"\ninterval = "1s"\nfall = 2\n`;
  return `
[admin]
listen = "127.0.0.1:${adminPort}"

[upstreams.app]
servers = [
  { address = "${A.address}", id = "web-a" },
  { address = "${B.address}", id = "web-b", weight = 2 },
  { address = "${C.address}", id = "web-c", max_fails = 1, fail_timeout = "60s" },${
    checks ? backup : ""
  }
]

[upstreams.app.sticky]
${checks ? health : ""}`;
}

async function startWithAdmin(checks = false) {
  const gw = await startGateway(config(0, checks));
  const adminPort = await adminPortOf(gw);
  return { gw, url: `http://127.0.0.1:${adminPort}/status` };
}

describe("status page of the running gateway, in Chromium", () => {
  let launched: Promise<Browser> | undefined;
  const open = async () => {
    launched ??= launchBrowser();
    return openPage(await launched);
  };

  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    C = await startNamedUpstream("C");
    D = await startNamedUpstream("D");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await (await launched)?.close();
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("renders the servers, and a server failing shows within one refresh", SLOW, async () => {
    const { gw, url } = await startWithAdmin();
    const { page, errors } = await open();
    await page.goto(url);
    await page.waitForSelector(row("web-c"), { timeout: 5000 });
    const ids = await page.$$eval(
      'section[data-upstream="app"] tbody tr',
      (rows) => rows.map((r) => r.getAttribute("data-server")),
    );
    assert.deepEqual(ids, ["web-a", "web-b", "web-c"]);
    assert.equal(await textOf(page, `${row("web-b")} .state`), "ready");
    assert.equal(await page.$(`${row("web-c")}.down`), null);

    for (let i = 0; i < 3; i++) await ask(gw.port, { cookies: [cookieFor(A)] });
    await page.waitForFunction(
      `document.querySelector(${
        JSON.stringify(`${row("web-a")} .sticky`)
      })?.textContent === "3 / 0 / 0"`,
      { timeout: 3000 },
    );

    // C stops; a client pinned to it is re-pinned and C is marked failed (max_fails = 1).
    await C.close();
    const moved = await ask(gw.port, { cookies: [cookieFor(C)] });
    assert.equal(moved.status, 200);
    assert.notEqual(moved.servedBy, "C");
    const start = Date.now();
    await page.waitForSelector(`${row("web-c")}.down .health-failed`, { timeout: 2600 });
    assert.ok(Date.now() - start <= 2600, "within one refresh (2 s)");
    await C.restart();
    assert.deepEqual(errors, []);
    await page.close();
  });

  it(
    "the drain button drains the server: its pinned client stays, new clients go elsewhere",
    SLOW,
    async () => {
      const { gw, url } = await startWithAdmin(true);
      const { page, errors } = await open();
      await page.goto(url);
      const drain = `${row("web-b")} button[data-action="drain"]`;
      await page.waitForSelector(drain, { timeout: 5000 });
      await page.click(drain);
      await page.waitForSelector(`${row("web-b")} .state-drain`, { timeout: 3000 });
      // The active checks' results: "up" and a dot per check.
      await page.waitForSelector(`${row("web-a")} .health-up + .dots .dot`, { timeout: 3000 });

      const before = B.requests.length;
      assert.equal((await ask(gw.port, { cookies: [cookieFor(B)] })).servedBy, "B");
      for (let i = 0; i < 6; i++) assert.notEqual((await ask(gw.port)).servedBy, "B");
      assert.equal(B.requests.length - before, 1);
      await page.waitForFunction(
        `document.querySelector(${
          JSON.stringify(`${row("web-b")} .last-sticky`)
        })?.textContent.endsWith("s ago")`,
        { timeout: 3000 },
      );

      const screenshot = process.env.STATUS_PAGE_SCREENSHOT;
      if (screenshot !== undefined && screenshot !== "") {
        // Some traffic, and C stopped until its checks fail (fall = 2): the page in the README.
        await C.close();
        const clients = [cookieFor(A), cookieFor(C), cookieFor(B)];
        for (let i = 0; i < 200; i++) {
          await ask(gw.port, i % 5 === 4 ? {} : { cookies: [clients[i % 3]] });
          if (i % 50 === 49) await sleep(700);
        }
        await sleep(2200);
        await page.setViewport({ width: 1180, height: 320 });
        await page.screenshot({ path: screenshot, fullPage: true });
        await C.restart();
      }
      assert.deepEqual(errors, []);
      await page.close();
    },
  );
});
