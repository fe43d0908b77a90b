/**
 * The status page in headless Chromium, served by the admin handler over a fake view on
 * node:http: it renders, shows a server going down within one refresh, its buttons set states,
 * and with a token it asks for it (form or `#token=`) and sends it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { parseAddress } from "../../src/config/mod.ts";
import type { AdminSettings } from "../../src/config/admin.ts";
import { createAdminHandler } from "../../src/ops/admin/mod.ts";
import { type Browser, launchBrowser, openPage, type Page, textOf } from "../support/browser.ts";
import { FakeView } from "./admin_fake_view.ts";
import { stickyCounts } from "../../src/ops/admin/mod.ts";

const TOKEN = "page-token-0123456789abcdef";

type Handler = (request: Request) => Promise<Response>;

/** The handler on node:http (127.0.0.1, an ephemeral port), as the runtime would serve it. */
class AdminServer {
  handler: Handler = () => Promise.resolve(new Response("not ready", { status: 503 }));
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      this.#serve(req, res).catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return (this.#server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const one of Array.isArray(value) ? value : [value]) {
        if (one !== undefined) headers.append(name, one);
      }
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://127.0.0.1${req.url ?? "/"}`, {
      method: req.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    const response = await this.handler(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  }
}

function settings(port: number, token?: string): AdminSettings {
  const listen = parseAddress(`127.0.0.1:${port}`);
  if (typeof listen === "string") throw new Error(listen);
  return token === undefined ? { listen } : { listen, token };
}

const row = (upstream: string, id: string) =>
  `section[data-upstream="${upstream}"] tr[data-server="${id}"]`;

/** Resolves when `selector` matches, failing after `ms` (the page refreshes every 2 s). */
async function waitFor(page: Page, selector: string, ms: number): Promise<number> {
  const start = Date.now();
  await page.waitForSelector(selector, { timeout: ms });
  return Date.now() - start;
}

/** Per test: Chromium starts (or is installed) in the first one; Bun's hooks cannot wait long. */
const SLOW = { timeout: 120_000 };

describe("status page in Chromium", () => {
  let launched: Promise<Browser> | undefined;
  const server = new AdminServer();
  let port = 0;
  let base = "";
  /** A page of the one browser, started by the first test that needs it. */
  const open = async () => {
    launched ??= launchBrowser();
    return openPage(await launched);
  };

  before(async () => {
    port = await server.start();
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await (await launched)?.close();
    await server.close();
  });

  it(
    "renders a table per upstream: state, health, in-flight, req/s, p50/p99, sticky counts, last sticky",
    SLOW,
    async () => {
      const view = new FakeView();
      const b = view.server("app", "web-b");
      b.inFlight = 7;
      b.sticky = stickyCounts({ hit: 120, new: 8, repin: 3, invalid: 1, refused: 0 });
      b.health = { passive: "ok", active: "up", history: [true, false, true, true] };
      let now = Date.now();
      b.lastStickyMs = now - 12_000;
      server.handler = createAdminHandler(view, settings(port), { now: () => now });
      const { page, errors } = await open();
      await page.goto(`${base}/status`);
      await waitFor(page, row("app", "web-b"), 3000);

      const sections = await page.$$eval(
        "section",
        (all) => all.map((s) => s.getAttribute("data-upstream")),
      );
      assert.deepEqual(sections, ["app", "api"]);
      const ids = await page.$$eval(
        'section[data-upstream="app"] tbody tr',
        (rows) => rows.map((r) => r.getAttribute("data-server")),
      );
      assert.deepEqual(ids, ["127.0.0.1:9001", "web-b", "spare"]);
      assert.equal(await textOf(page, `${row("app", "web-b")} .state`), "ready");
      assert.equal(await textOf(page, `${row("api", "api-1")} .state`), "drain");
      assert.equal(await textOf(page, `${row("app", "web-b")} .inflight`), "7");
      assert.equal(await textOf(page, `${row("app", "web-b")} .sticky`), "120 / 8 / 3");
      assert.equal(await textOf(page, `${row("app", "web-b")} .last-sticky`), "12 s ago");
      assert.equal(await textOf(page, `${row("app", "spare")} .last-sticky`), "never");
      assert.equal(await textOf(page, `${row("app", "web-b")} .health-up`), "up");
      const dots = await page.$$eval(
        `${row("app", "web-b")} .dot`,
        (all) => all.map((d) => d.classList.contains("fail")),
      );
      assert.deepEqual(dots, [false, true, false, false], "one dot per check, oldest first");
      assert.match(
        (await textOf(page, 'section[data-upstream="app"] .upstream-head')) ?? "",
        /3 of 3 servers take new clients, cookie route/,
      );
      assert.equal(await textOf(page, `${row("app", "web-b")} .rate`), "–", "no rate yet");

      // The next refresh has an earlier sample: a rate and percentiles.
      const a = view.server("app", "127.0.0.1:9001");
      now += 2000;
      a.requests = 50;
      a.counts = [10, 40, 50, 50, 50, 50, 50];
      await page.waitForFunction(
        `document.querySelector(${
          JSON.stringify(`${row("app", "127.0.0.1:9001")} .rate`)
        })?.textContent === "25.0"`,
        { timeout: 3000 },
      );
      assert.equal(await textOf(page, `${row("app", "127.0.0.1:9001")} .latency`), "3.0 / 9.8");
      assert.deepEqual(errors, []);
      await page.close();
    },
  );

  it("shows a server going down within one refresh", SLOW, async () => {
    const view = new FakeView();
    server.handler = createAdminHandler(view, settings(port));
    const { page, errors } = await open();
    await page.goto(`${base}/status`);
    await waitFor(page, `${row("app", "web-b")} .health-ok`, 3000);
    assert.equal(await page.$(`${row("app", "web-b")}.down`), null);

    view.server("app", "web-b").health = {
      passive: "ok",
      active: "down",
      history: [true, true, false, false, false],
    };
    const waited = await waitFor(page, `${row("app", "web-b")}.down .health-down`, 2600);
    assert.ok(waited <= 2600, `shown after ${waited} ms`);
    assert.match(
      (await textOf(page, 'section[data-upstream="app"] .upstream-head')) ?? "",
      /2 of 3 servers take new clients/,
    );
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("its drain button sets the state through the API; the row shows it", SLOW, async () => {
    const view = new FakeView();
    server.handler = createAdminHandler(view, settings(port));
    const { page, errors } = await open();
    await page.goto(`${base}/status`);
    const drain = `${row("app", "web-b")} button[data-action="drain"]`;
    await waitFor(page, drain, 3000);
    assert.equal(await page.$eval(drain, (b) => b.hasAttribute("disabled")), false);
    await page.click(drain);
    await waitFor(page, `${row("app", "web-b")} .state-drain`, 3000);
    assert.deepEqual(view.stateCalls, [{ upstream: "app", id: "web-b", state: "drain" }]);
    assert.equal(await page.$eval(drain, (b) => b.hasAttribute("disabled")), true);
    assert.equal(await textOf(page, `${row("app", "web-b")} .idle`), "idle");

    // An id with ":" (the address default) goes through the URL intact.
    await page.click(`${row("app", "127.0.0.1:9001")} button[data-action="maint"]`);
    await waitFor(page, `${row("app", "127.0.0.1:9001")} .state-maint`, 3000);
    assert.deepEqual(view.stateCalls.at(-1), {
      upstream: "app",
      id: "127.0.0.1:9001",
      state: "maint",
    });
    assert.deepEqual(errors, []);
    await page.close();
  });

  it(
    "with a token: asks for it, refuses a wrong one, sends the right one on every request",
    SLOW,
    async () => {
      const view = new FakeView();
      server.handler = createAdminHandler(view, settings(port, TOKEN));
      const { page, errors } = await open();
      await page.goto(`${base}/status`);
      await waitFor(page, "form#login:not([hidden])", 3000);
      assert.equal(await page.$("section"), null, "no data without the token");

      await page.type("#token", "wrong-token-0123456789");
      await page.click('form#login button[type="submit"]');
      await page.waitForFunction(
        `document.getElementById("login-why")?.textContent === "That token was refused."`,
        { timeout: 3000 },
      );
      await page.type("#token", TOKEN);
      await page.click('form#login button[type="submit"]');
      await waitFor(page, row("app", "web-b"), 3000);
      assert.equal(await page.$eval("form#login", (f) => f.hasAttribute("hidden")), true);

      await page.click(`${row("app", "web-b")} button[data-action="maint"]`);
      await waitFor(page, `${row("app", "web-b")} .state-maint`, 3000);
      assert.deepEqual(view.stateCalls, [{ upstream: "app", id: "web-b", state: "maint" }]);
      assert.deepEqual(errors, []);
      await page.close();
    },
  );

  it("with a token: /status#token=… opens it once and leaves the address bar", SLOW, async () => {
    server.handler = createAdminHandler(new FakeView(), settings(port, TOKEN));
    const { page, errors } = await open();
    await page.goto(`${base}/status#token=${TOKEN}`);
    await waitFor(page, row("app", "web-b"), 3000);
    assert.equal(page.url(), `${base}/status`);
    assert.equal(
      await page.evaluate(`sessionStorage.getItem("sticky-gateway-admin-token")`),
      TOKEN,
    );
    await page.reload();
    await waitFor(page, row("app", "web-b"), 3000);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
