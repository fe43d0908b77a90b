import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pid } from "node:process";
import { parseAddress } from "../../src/config/mod.ts";
import type { AdminSettings } from "../../src/config/admin.ts";
import { createAdminHandler, type ServerRow, type UpstreamRow } from "../../src/ops/admin/mod.ts";
import { quantile, RateSampler } from "../../src/ops/admin/rates.ts";
import type { LatencyHistogram, UpstreamStatus } from "../../src/ops/admin/mod.ts";
import { FakeView } from "./admin_fake_view.ts";
import { stickyCounts } from "../../src/ops/admin/mod.ts";

const TOKEN = "s3cret-token-0123456789";
const BASE = "http://127.0.0.1:9901";

function settings(listen = "127.0.0.1:9901", token?: string): AdminSettings {
  const address = parseAddress(listen);
  if (typeof address === "string") throw new Error(address);
  return token === undefined ? { listen: address } : { listen: address, token };
}

interface Ask {
  method?: string;
  host?: string | null;
  token?: string;
  authorization?: string;
  body?: string;
  origin?: string;
}

type Handler = (request: Request) => Promise<Response>;

function ask(handle: Handler, path: string, options: Ask = {}): Promise<Response> {
  const headers = new Headers();
  const host = options.host === undefined ? "127.0.0.1:9901" : options.host;
  if (host !== null) headers.set("host", host);
  if (options.token !== undefined) headers.set("authorization", `Bearer ${options.token}`);
  if (options.authorization !== undefined) headers.set("authorization", options.authorization);
  if (options.origin !== undefined) headers.set("origin", options.origin);
  if (options.body !== undefined) headers.set("content-type", "application/json");
  return handle(
    new Request(`${BASE}${path}`, { method: options.method ?? "GET", headers, body: options.body }),
  );
}

async function jsonOf(response: Response): Promise<Record<string, unknown>> {
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  return await response.json() as Record<string, unknown>;
}

function md5(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

async function upstreamsOf(handle: Handler, token?: string): Promise<UpstreamRow[]> {
  const response = await ask(handle, "/api/v1/upstreams", { token });
  assert.equal(response.status, 200);
  return (await jsonOf(response)).upstreams as UpstreamRow[];
}

function serverOf(upstreams: UpstreamRow[], upstream: string, id: string): ServerRow {
  const row = upstreams.find((u) => u.name === upstream)?.servers.find((s) => s.id === id);
  assert.ok(row, `${upstream}/${id} in the answer`);
  return row;
}

const putState = (handle: Handler, path: string, body: string, extra: Ask = {}) =>
  ask(handle, path, { method: "PUT", body, ...extra });

describe("admin API: reading", () => {
  it("GET /api/v1/upstreams lists every upstream and server with ids, cookie values and state", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings());
    const upstreams = await upstreamsOf(handle);
    assert.deepEqual(upstreams.map((u) => [u.name, u.stickyCookie]), [
      ["app", "route"],
      ["api", null],
    ]);
    assert.deepEqual(
      upstreams[0].servers.map((
        s,
      ) => [s.id, s.address, s.cookieValue, s.backup, s.weight, s.state]),
      [
        ["127.0.0.1:9001", "127.0.0.1:9001", md5("127.0.0.1:9001"), false, 1, "ready"],
        ["web-b", "127.0.0.1:9002", md5("127.0.0.1:9002"), false, 2, "ready"],
        ["spare", "127.0.0.1:9003", md5("127.0.0.1:9003"), true, 1, "ready"],
      ],
    );
    const api = serverOf(upstreams, "api", "api-1");
    assert.equal(api.cookieValue, "");
    assert.equal(api.state, "drain");
    assert.deepEqual(api.health, { passive: "ok", active: "unchecked", history: [] });
    assert.deepEqual(api.sticky, stickyCounts());
  });

  it("live figures: health, in-flight, sticky counts; a draining server's in-flight and time since its last sticky request", async () => {
    let now = 1_000_000;
    const view = new FakeView();
    const handle = createAdminHandler(view, settings(), { now: () => now });
    const b = view.server("app", "web-b");
    b.health = { passive: "failed", active: "down", history: [true, true, false] };
    b.inFlight = 3;
    b.sticky = stickyCounts({ hit: 10, new: 4, repin: 2, invalid: 1, refused: 0 });
    b.lastStickyMs = now - 1500;
    const api = view.server("api", "api-1");
    api.inFlight = 2;
    api.lastStickyMs = now - 65_000;
    let upstreams = await upstreamsOf(handle);
    const row = serverOf(upstreams, "app", "web-b");
    assert.deepEqual(row.health, {
      passive: "failed",
      active: "down",
      history: [true, true, false],
    });
    assert.equal(row.inFlight, 3);
    assert.deepEqual(
      row.sticky,
      stickyCounts({ hit: 10, new: 4, repin: 2, invalid: 1, refused: 0 }),
    );
    assert.equal(row.lastStickyMs, now - 1500);
    assert.equal(row.drain, null, "only a draining server has drain figures");
    assert.deepEqual(serverOf(upstreams, "api", "api-1").drain, {
      inFlight: 2,
      msSinceLastSticky: 65_000,
    });
    api.inFlight = 0;
    api.lastStickyMs = null;
    now += 5000;
    upstreams = await upstreamsOf(handle);
    assert.deepEqual(serverOf(upstreams, "api", "api-1").drain, {
      inFlight: 0,
      msSinceLastSticky: null,
    });
  });

  it("requests/s and p50/p99 over the last seconds, from totals and histogram buckets", async () => {
    let now = 5_000_000;
    const view = new FakeView();
    const handle = createAdminHandler(view, settings(), { now: () => now });
    const a = view.server("app", "127.0.0.1:9001");
    a.requests = 1000;
    a.counts = [0, 500, 900, 1000, 1000, 1000, 1000];
    let row = serverOf(await upstreamsOf(handle), "app", "127.0.0.1:9001");
    assert.deepEqual(row.requests, { total: 1000, perSecond: null }, "no earlier sample yet");
    assert.deepEqual(row.latencyMs, { p50: null, p99: null });

    // 40 requests in 2 s: 20 at most 10 ms (in 5..10), 20 in 50..100 ms.
    now += 2000;
    a.requests = 1040;
    a.counts = [0, 500, 920, 1020, 1040, 1040, 1040];
    row = serverOf(await upstreamsOf(handle), "app", "127.0.0.1:9001");
    assert.equal(row.requests.total, 1040);
    assert.equal(row.requests.perSecond, 20);
    assert.equal(row.latencyMs.p50, 10, "rank 20 of 40 is the top of the 5-10 ms bucket");
    assert.equal(row.latencyMs.p99, 99, "rank 39.6: 19.6 of the 20 in 50-100 ms");
    const other = serverOf(await upstreamsOf(handle), "app", "web-b");
    assert.deepEqual(other.latencyMs, { p50: null, p99: null }, "no requests: no percentiles");
    assert.equal(other.requests.perSecond, 0);

    // The window moves on: 12 s later the first samples are gone, the rate is recent.
    now += 12_000;
    a.requests = 1040 + 120;
    row = serverOf(await upstreamsOf(handle), "app", "127.0.0.1:9001");
    assert.equal(row.requests.perSecond, null, "every sample older than the window was dropped");
    now += 4000;
    a.requests += 40;
    row = serverOf(await upstreamsOf(handle), "app", "127.0.0.1:9001");
    assert.equal(row.requests.perSecond, 10);
  });

  it("GET /api/v1/upstreams/{u} gives one upstream; an unknown one is 404 naming the field", async () => {
    const handle = createAdminHandler(new FakeView(), settings());
    const one = await jsonOf(await ask(handle, "/api/v1/upstreams/api"));
    assert.equal((one.upstream as UpstreamRow).name, "api");
    assert.equal(typeof one.nowMs, "number");
    const missing = await ask(handle, "/api/v1/upstreams/nope");
    assert.equal(missing.status, 404);
    const body = await jsonOf(missing);
    assert.equal(body.field, "upstream");
    assert.match(String(body.error), /no upstream "nope"; upstreams: app, api/);
  });

  it("GET /metrics: the view's exposition as text/plain; version=0.0.4", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings());
    const response = await ask(handle, "/metrics");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(await response.text(), view.metrics);
  });

  it("GET /healthz and /readyz answer 200 or 503 with a short JSON, whatever the token and Host", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings("0.0.0.0:9901", TOKEN));
    const probe = async (path: string) => {
      const response = await ask(handle, path, { host: "10.0.0.7:9901" });
      return [response.status, await jsonOf(response)];
    };
    assert.deepEqual(await probe("/healthz"), [200, { status: "ok", pid }]);
    assert.deepEqual(await probe("/readyz"), [200, { status: "ready", pid }]);
    view.isReady = false;
    assert.deepEqual(await probe("/readyz"), [503, { status: "not ready", pid }]);
    view.isHealthy = false;
    assert.deepEqual(await probe("/healthz"), [503, { status: "unhealthy", pid }]);
    const elsewhere = createAdminHandler(view, settings());
    assert.equal((await ask(elsewhere, "/healthz", { host: "pod.cluster:1" })).status, 503);
  });

  it("every answer is Cache-Control: no-store, errors too; HEAD has no body", async () => {
    const handle = createAdminHandler(new FakeView(), settings("127.0.0.1:9901", TOKEN));
    const answers = [
      await ask(handle, "/healthz"),
      await ask(handle, "/metrics", { token: TOKEN }),
      await ask(handle, "/api/v1/upstreams", { token: TOKEN }),
      await ask(handle, "/status"),
      await ask(handle, "/api/v1/upstreams"),
      await ask(handle, "/nothing", { token: TOKEN }),
      await ask(handle, "/status", { host: "evil.example:9901" }),
    ];
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200, 401, 404, 421]);
    for (const response of answers) {
      assert.equal(response.headers.get("cache-control"), "no-store");
      await response.body?.cancel();
    }
    const head = await ask(handle, "/api/v1/upstreams", { method: "HEAD", token: TOKEN });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });

  it("a view that throws gives a 500 without detail and is reported", async () => {
    const view = new FakeView();
    const seen: unknown[] = [];
    const handle = createAdminHandler(view, settings(), { onError: (e) => seen.push(e) });
    view.failure = new Error("secret detail");
    const response = await ask(handle, "/api/v1/upstreams");
    assert.equal(response.status, 500);
    assert.deepEqual(await jsonOf(response), { error: "internal error" });
    assert.deepEqual(seen, [view.failure]);
  });
});

describe("admin API: PUT …/servers/{id}/state", () => {
  it("sets the state and answers the server's row", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings());
    const response = await putState(
      handle,
      "/api/v1/upstreams/app/servers/web-b/state",
      `{"state": "drain"}`,
    );
    assert.equal(response.status, 200);
    const body = await jsonOf(response);
    assert.equal(body.upstream, "app");
    const server = body.server as ServerRow;
    assert.equal(server.id, "web-b");
    assert.equal(server.state, "drain");
    assert.deepEqual(server.drain, { inFlight: 0, msSinceLastSticky: null });
    assert.deepEqual(view.stateCalls, [{ upstream: "app", id: "web-b", state: "drain" }]);
    assert.equal(serverOf(await upstreamsOf(handle), "app", "web-b").state, "drain");

    // An id with ":" (the address default), percent-encoded or not.
    for (const id of ["127.0.0.1%3A9001", "127.0.0.1:9001"]) {
      const again = await putState(
        handle,
        `/api/v1/upstreams/app/servers/${id}/state`,
        `{"state":"maint"}`,
      );
      assert.equal(again.status, 200, id);
      assert.equal(((await jsonOf(again)).server as ServerRow).state, "maint");
    }
    assert.equal(view.stateCalls.length, 3);
  });

  it("unknown upstream or server: 404 with a JSON error naming the field, nothing changed", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings());
    const noUpstream = await putState(
      handle,
      "/api/v1/upstreams/web/servers/a/state",
      `{"state":"drain"}`,
    );
    assert.equal(noUpstream.status, 404);
    assert.equal((await jsonOf(noUpstream)).field, "upstream");
    const noServer = await putState(
      handle,
      "/api/v1/upstreams/app/servers/web-z/state",
      `{"state":"drain"}`,
    );
    assert.equal(noServer.status, 404);
    const body = await jsonOf(noServer);
    assert.equal(body.field, "server");
    assert.match(
      String(body.error),
      /no server "web-z" in upstream "app"; ids: 127\.0\.0\.1:9001, web-b, spare/,
    );
    assert.deepEqual(view.stateCalls, []);
  });

  it("bad bodies: 400 naming the field", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings());
    const path = "/api/v1/upstreams/app/servers/web-b/state";
    const cases: [string, string, RegExp][] = [
      ["not json", "body", /not JSON; send \{"state": "drain"\}/],
      ["", "body", /not JSON/],
      [`["drain"]`, "body", /not a JSON object/],
      [`{}`, "state", /"state" is missing/],
      [`{"state": "down"}`, "state", /"down" is not a state; .*ready, drain, maint/],
      [`{"state": 1}`, "state", /1 is not a state/],
      [`{"state": "drain", "force": true}`, "force", /unknown field "force"/],
    ];
    for (const [body, field, message] of cases) {
      const response = await putState(handle, path, body);
      assert.equal(response.status, 400, body);
      const error = await jsonOf(response);
      assert.equal(error.field, field, body);
      assert.match(String(error.error), message, body);
    }
    const large = await putState(handle, path, `{"state": "drain", "x": "${"y".repeat(5000)}"}`);
    assert.equal(large.status, 413);
    assert.equal((await jsonOf(large)).field, "body");
    assert.deepEqual(view.stateCalls, []);
  });

  it("wrong method: 405 with Allow; an unknown path: 404", async () => {
    const handle = createAdminHandler(new FakeView(), settings());
    const get = await ask(handle, "/api/v1/upstreams/app/servers/web-b/state");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "PUT");
    const post = await ask(handle, "/api/v1/upstreams", { method: "POST", body: "{}" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.equal((await ask(handle, "/metrics", { method: "DELETE" })).status, 405);
    assert.equal((await ask(handle, "/healthz", { method: "PUT", body: "" })).status, 405);
    assert.equal((await ask(handle, "/api/v2/upstreams")).status, 404);
    const root = await ask(handle, "/");
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/status");
  });

  it("a PUT from another origin is refused (no CORS); from the page's own origin it passes", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings());
    const path = "/api/v1/upstreams/app/servers/web-b/state";
    const foreign = await putState(handle, path, `{"state":"drain"}`, {
      origin: "http://evil.example",
    });
    assert.equal(foreign.status, 403);
    assert.deepEqual(view.stateCalls, []);
    const own = await putState(handle, path, `{"state":"drain"}`, {
      origin: "http://localhost:9901",
      host: "localhost:9901",
    });
    assert.equal(own.status, 200);
  });
});

describe("admin API: token and Host", () => {
  it("with a token every endpoint but the probes and the page's shell needs it: 401 without detail", async () => {
    const view = new FakeView();
    const handle = createAdminHandler(view, settings("127.0.0.1:9901", TOKEN));
    const paths = ["/metrics", "/api/v1/upstreams", "/api/v1/upstreams/app", "/nothing"];
    for (const path of paths) {
      for (
        const authorization of [
          undefined,
          `Bearer ${TOKEN}x`,
          `Bearer ${TOKEN.slice(0, -1)}`,
          `Basic ${TOKEN}`,
          "Bearer",
          `Bearer ${TOKEN} extra`,
        ]
      ) {
        const response = await ask(handle, path, { authorization });
        assert.equal(response.status, 401, `${path} ${authorization}`);
        assert.equal(response.headers.get("www-authenticate"), "Bearer");
        assert.deepEqual(await jsonOf(response), { error: "unauthorized" });
      }
    }
    const put = await putState(
      handle,
      "/api/v1/upstreams/app/servers/web-b/state",
      `{"state":"maint"}`,
    );
    assert.equal(put.status, 401);
    assert.deepEqual(view.stateCalls, [], "a refused PUT changes nothing");

    assert.equal((await ask(handle, "/metrics", { token: TOKEN })).status, 200);
    assert.equal((await ask(handle, "/metrics", { authorization: `bearer ${TOKEN}` })).status, 200);
    const put2 = await putState(
      handle,
      "/api/v1/upstreams/app/servers/web-b/state",
      `{"state":"maint"}`,
      { token: TOKEN },
    );
    assert.equal(put2.status, 200);
    const page = await ask(handle, "/status");
    assert.equal(page.status, 200, "the page's shell holds no data; its requests carry the token");
    assert.doesNotMatch(await page.text(), /web-b|9001/);
  });

  it("without a token (loopback) everything is open", async () => {
    const handle = createAdminHandler(new FakeView(), settings());
    assert.equal((await ask(handle, "/metrics")).status, 200);
    assert.equal((await ask(handle, "/api/v1/upstreams", { token: "anything" })).status, 200);
  });

  it("Host must name the listener: loopback names with its port (DNS rebinding), else 421", async () => {
    const handle = createAdminHandler(new FakeView(), settings());
    const status = async (host: string | null) =>
      (await ask(handle, "/api/v1/upstreams", { host })).status;
    for (const host of ["127.0.0.1:9901", "localhost:9901", "LOCALHOST:9901", "[::1]:9901"]) {
      assert.equal(await status(host), 200, host);
    }
    for (
      const host of [
        "evil.example:9901",
        "127.0.0.1:9902",
        "127.0.0.1",
        "localhost",
        "127.0.0.1.evil.example:9901",
        "",
        null,
      ]
    ) {
      assert.equal(await status(host), 421, String(host));
    }
    const body = await jsonOf(await ask(handle, "/metrics", { host: "evil.example:9901" }));
    assert.match(String(body.error), /Host header/);
  });

  it("a non-loopback listen accepts its own host; a wildcard one any host with its port", async () => {
    const specific = createAdminHandler(new FakeView(), settings("10.0.0.5:9901", TOKEN));
    const at = async (handle: Handler, host: string) =>
      (await ask(handle, "/metrics", { host, token: TOKEN })).status;
    assert.equal(await at(specific, "10.0.0.5:9901"), 200);
    assert.equal(await at(specific, "localhost:9901"), 421);
    const wildcard = createAdminHandler(new FakeView(), settings("0.0.0.0:9901", TOKEN));
    assert.equal(await at(wildcard, "gateway.internal:9901"), 200);
    assert.equal(await at(wildcard, "gateway.internal:9902"), 421);
    const ephemeral = createAdminHandler(new FakeView(), settings("127.0.0.1:0"));
    assert.equal((await ask(ephemeral, "/metrics", { host: "127.0.0.1:43210" })).status, 200);
    assert.equal((await ask(ephemeral, "/metrics", { host: "evil.example:43210" })).status, 421);
  });
});

describe("admin status page: the document", () => {
  it("is self-contained HTML whose script and style the CSP allows by hash, and nothing else", async () => {
    const handle = createAdminHandler(new FakeView(), settings());
    const response = await ask(handle, "/status");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(response.headers.get("x-frame-options"), "DENY");
    const html = await response.text();
    assert.doesNotMatch(html, /\s(src|href)="(?!data:)/, "no external asset");
    const csp = response.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    const hash = (text: string) => createHash("sha256").update(text).digest("base64");
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? "";
    const style = /<style>([\s\S]*)<\/style>/.exec(html)?.[1] ?? "";
    assert.match(script, /\/api\/v1\/upstreams/);
    assert.ok(csp.includes(`script-src 'sha256-${hash(script)}'`), "the script runs under the CSP");
    assert.ok(csp.includes(`style-src 'sha256-${hash(style)}'`), "the style applies under the CSP");
  });
});

describe("admin rates", () => {
  const upstream = (requests: number, latency: LatencyHistogram | null): UpstreamStatus[] => [{
    name: "app",
    stickyCookie: null,
    servers: [{
      id: "a",
      address: "127.0.0.1:1",
      cookieValue: "",
      backup: false,
      weight: 1,
      state: "ready",
      health: { passive: "ok", active: "unchecked", history: [] },
      inFlight: 0,
      requests,
      latency,
      sticky: stickyCounts(),
      lastStickyMs: null,
    }],
  }];

  it("a server without a latency histogram has a rate but no percentiles", () => {
    const sampler = new RateSampler();
    sampler.observe(upstream(10, null), 0);
    assert.deepEqual(sampler.observe(upstream(30, null), 4000)("app", "a"), {
      perSecond: 5,
      p50Ms: null,
      p99Ms: null,
    });
  });

  it("a counter that went back (a restart behind the view) gives no figures", () => {
    const sampler = new RateSampler();
    sampler.observe(upstream(100, null), 0);
    assert.equal(sampler.observe(upstream(10, null), 2000)("app", "a").perSecond, null);
  });

  it("quantiles interpolate inside the bucket; the +Inf bucket gives the last finite bound", () => {
    assert.equal(quantile(0.5, [10, 100, Infinity], [0, 4, 4]), 55);
    assert.equal(quantile(0.99, [10, 100, Infinity], [0, 4, 8]), 100);
    assert.equal(quantile(0.5, [10, Infinity], [0, 0]), null);
  });
});
