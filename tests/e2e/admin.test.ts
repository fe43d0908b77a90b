/**
 * The admin listener of the real gateway process (issue 9 points 4 and 5): the upstreams API,
 * the token and the Host check, probes, metrics, and a state set through the API changing the
 * routing of every worker thread: `drain` keeps the pinned client and takes no new one, `maint`
 * re-pins it, `ready` takes new clients again. A bad `[admin]` exits 2 naming the key.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  adminPortOf,
  runGateway,
  startGateway,
  stopAllGateways,
  writeTempFile,
} from "../support/gateway.ts";
import { ask, type Header, header, md5, rawRequest, type RawResponse } from "../support/http.ts";
import {
  closeAllUpstreams,
  closedPort,
  type NamedUpstream,
  startNamedUpstream,
} from "../support/upstreams.ts";

const TOKEN = "e2e-admin-token-0123456789";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;

const cookieFor = (u: NamedUpstream) => `route=${md5(u.address)}`;

interface ServerRow {
  id: string;
  address: string;
  cookieValue: string;
  state: string;
  inFlight: number;
  requests: { total: number; perSecond: number | null };
  sticky: Record<string, number>;
  lastStickyMs: number | null;
  drain: { inFlight: number; msSinceLastSticky: number | null } | null;
}

interface UpstreamRow {
  name: string;
  stickyCookie: string | null;
  servers: ServerRow[];
}

/** A, B (id web-b) and C (id web-c) behind one sticky upstream; the admin listener on `port`. */
function config(adminPort: number, extra = "", workers = 1): string {
  return `
[server]
workers = ${workers}

[admin]
listen = "127.0.0.1:${adminPort}"
${extra}

[upstreams.app]
servers = [
  "${A.address}",
  { address = "${B.address}", id = "web-b" },
  { address = "${C.address}", id = "web-c" },
]

[upstreams.app.sticky]
`;
}

interface Call {
  method?: string;
  token?: string;
  host?: string;
  body?: string;
}

function admin(port: number, path: string, call: Call = {}): Promise<RawResponse> {
  const headers: Header[] = [];
  if (call.host !== undefined) headers.push(["Host", call.host]);
  if (call.token !== undefined) headers.push(["Authorization", `Bearer ${call.token}`]);
  if (call.body !== undefined) headers.push(["Content-Type", "application/json"]);
  return rawRequest(port, { method: call.method, path, headers, body: call.body });
}

function json(response: RawResponse): Record<string, unknown> {
  assert.match(header(response, "content-type") ?? "", /^application\/json/);
  return JSON.parse(response.body.toString("utf8")) as Record<string, unknown>;
}

async function startWithAdmin(extra = "", workers = 1) {
  const gw = await startGateway(config(0, extra, workers));
  const adminPort = await adminPortOf(gw);
  return { gw, adminPort };
}

async function servers(port: number, token?: string): Promise<Map<string, ServerRow>> {
  const response = await admin(port, "/api/v1/upstreams", { token });
  assert.equal(response.status, 200, response.body.toString());
  const upstreams = json(response).upstreams as UpstreamRow[];
  return new Map(upstreams[0].servers.map((s) => [s.id, s]));
}

function setState(port: number, id: string, state: string, token?: string) {
  return admin(port, `/api/v1/upstreams/app/servers/${encodeURIComponent(id)}/state`, {
    method: "PUT",
    body: JSON.stringify({ state }),
    token,
  });
}

describe("admin listener", () => {
  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    C = await startNamedUpstream("C");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("GET /api/v1/upstreams: ids, cookie values, states; counts follow the traffic", async () => {
    const { gw, adminPort } = await startWithAdmin();
    const response = await admin(adminPort, "/api/v1/upstreams");
    assert.equal(header(response, "cache-control"), "no-store");
    const [app] = json(response).upstreams as UpstreamRow[];
    assert.equal(app.name, "app");
    assert.equal(app.stickyCookie, "route");
    assert.deepEqual(
      app.servers.map((s) => [s.id, s.address, s.cookieValue, s.state]),
      [
        [A.address, A.address, md5(A.address), "ready"],
        ["web-b", B.address, md5(B.address), "ready"],
        ["web-c", C.address, md5(C.address), "ready"],
      ],
    );

    for (let i = 0; i < 3; i++) {
      assert.equal((await ask(gw.port, { cookies: [cookieFor(B)] })).servedBy, "B");
    }
    const before = Date.now();
    const row = (await servers(adminPort)).get("web-b")!;
    assert.equal(row.sticky.hit, 3);
    assert.equal(row.requests.total, 3);
    assert.equal(row.inFlight, 0);
    assert.ok(row.lastStickyMs !== null && row.lastStickyMs <= before + 5, "last sticky seen");
    assert.ok(before - row.lastStickyMs! < 5000, `recent: ${before - row.lastStickyMs!} ms ago`);

    const one = await admin(adminPort, "/api/v1/upstreams/app");
    assert.equal((json(one).upstream as UpstreamRow).servers.length, 3);
    const missing = await admin(adminPort, "/api/v1/upstreams/nope");
    assert.equal(missing.status, 404);
    assert.equal(json(missing).field, "upstream");
  });

  it("PUT drain (workers = 2): the pinned client stays, no new client goes there; the API shows it drained", async () => {
    const { gw, adminPort } = await startWithAdmin("", 2);
    const put = await setState(adminPort, "web-b", "drain");
    assert.equal(put.status, 200, put.body.toString());
    const body = json(put);
    assert.equal((body.server as ServerRow).state, "drain");

    const before = B.requests.length;
    for (let i = 0; i < 4; i++) {
      const pinned = await ask(gw.port, { cookies: [cookieFor(B)] });
      assert.equal(pinned.servedBy, "B", "a draining server keeps its clients");
      assert.deepEqual(pinned.sticky, [], "and does not re-pin them");
    }
    for (let i = 0; i < 12; i++) {
      const fresh = await ask(gw.port);
      assert.equal(fresh.status, 200);
      assert.notEqual(fresh.servedBy, "B", "no new client for a draining server, in any worker");
    }
    assert.equal(B.requests.length - before, 4);

    const row = (await servers(adminPort)).get("web-b")!;
    assert.equal(row.state, "drain");
    assert.equal(row.drain?.inFlight, 0);
    assert.ok(
      row.drain?.msSinceLastSticky !== null && row.drain!.msSinceLastSticky! < 5000,
      JSON.stringify(row.drain),
    );
  });

  it("PUT maint re-pins the server's clients; PUT ready gives it new clients again", async () => {
    const { gw, adminPort } = await startWithAdmin();
    assert.equal((await setState(adminPort, "web-b", "maint")).status, 200);
    const moved = await ask(gw.port, { cookies: [cookieFor(B)] });
    assert.equal(moved.status, 200);
    assert.notEqual(moved.servedBy, "B");
    assert.equal(moved.sticky.length, 1, "re-pinned with a new cookie");

    assert.equal((await setState(adminPort, "web-b", "ready")).status, 200);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await ask(gw.port)).servedBy ?? "-");
    assert.ok(seen.has("B"), `new clients reach B again: ${[...seen]}`);
    assert.equal((await ask(gw.port, { cookies: [cookieFor(B)] })).servedBy, "B");
  });

  it("bad input: unknown server 404, bad state 400, each naming the field; wrong method 405", async () => {
    const { adminPort } = await startWithAdmin();
    const noServer = await setState(adminPort, "web-z", "drain");
    assert.equal(noServer.status, 404);
    assert.equal(json(noServer).field, "server");
    const badState = await setState(adminPort, "web-b", "down");
    assert.equal(badState.status, 400);
    assert.equal(json(badState).field, "state");
    const badJson = await admin(adminPort, "/api/v1/upstreams/app/servers/web-b/state", {
      method: "PUT",
      body: "{state: drain}",
    });
    assert.equal(badJson.status, 400);
    assert.equal(json(badJson).field, "body");
    const get = await admin(adminPort, "/api/v1/upstreams/app/servers/web-b/state");
    assert.equal(get.status, 405);
    assert.equal(header(get, "allow"), "PUT");
    assert.equal((await servers(adminPort)).get("web-b")!.state, "ready", "nothing changed");
  });

  it("/readyz turns 503 when no server can take a new client; /healthz stays 200; /metrics is text", async () => {
    const { gw, adminPort } = await startWithAdmin();
    assert.equal((await admin(adminPort, "/readyz")).status, 200);
    for (const id of [A.address, "web-b", "web-c"]) {
      assert.equal((await setState(adminPort, id, "maint")).status, 200, id);
    }
    const ready = await admin(adminPort, "/readyz");
    assert.equal(ready.status, 503);
    // The pid tells which process answered (a restart shares the port for a moment).
    assert.deepEqual(json(ready), {
      status: "not ready",
      pid: gw.process.pid,
      upstreams: {
        app: "no server takes new clients (all down, failed, draining or in maintenance)",
      },
    });
    assert.equal((await admin(adminPort, "/healthz")).status, 200);
    const metrics = await admin(adminPort, "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(header(metrics, "content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(metrics.body.toString(), /^sticky_gateway_\w+/m);
  });

  it("token: every endpoint but the probes needs it (401 without detail); Host must name the listener", async () => {
    const { gw, adminPort } = await startWithAdmin(`token = "${TOKEN}"`);
    for (const path of ["/api/v1/upstreams", "/metrics"]) {
      for (const token of [undefined, "wrong-token-0123456789"]) {
        const refused = await admin(adminPort, path, { token });
        assert.equal(refused.status, 401, `${path} ${token}`);
        assert.deepEqual(json(refused), { error: "unauthorized" });
      }
      assert.equal((await admin(adminPort, path, { token: TOKEN })).status, 200, path);
    }
    const put = await setState(adminPort, "web-b", "maint");
    assert.equal(put.status, 401);
    assert.equal((await ask(gw.port, { cookies: [cookieFor(B)] })).servedBy, "B", "unchanged");
    assert.equal((await admin(adminPort, "/healthz")).status, 200);
    assert.equal((await admin(adminPort, "/readyz")).status, 200);

    const rebound = await admin(adminPort, "/api/v1/upstreams", {
      token: TOKEN,
      host: `attacker.example:${adminPort}`,
    });
    assert.equal(rebound.status, 421, "DNS rebinding: a foreign Host is refused");
    const local = await admin(adminPort, "/api/v1/upstreams", {
      token: TOKEN,
      host: `localhost:${adminPort}`,
    });
    assert.equal(local.status, 200);
  });

  it("a bad [admin] exits 2 naming the key", async () => {
    const port = await closedPort();
    const cases: [string, RegExp][] = [
      [
        `[admin]\nlisten = "0.0.0.0:${port}"`,
        /admin\.listen: "0\.0\.0\.0:\d+" is not loopback; set admin\.token or admin\.token_file/,
      ],
      [`[admin]\ntoken = "${TOKEN}"`, /admin\.listen: is required/],
      [`[admin]\nlisten = "127.0.0.1:${port}"\ntoken = "short"`, /admin\.token: .*at least 16/],
      [
        `[admin]\nlisten = "127.0.0.1:${port}"\ntoken_file = "missing.token"`,
        /admin\.token_file: cannot read "missing\.token".*no such file/,
      ],
    ];
    for (const [table, expected] of cases) {
      const file = writeTempFile(
        "admin.toml",
        `${table}\n\n[upstreams.app]\nservers = ["${A.address}"]\n`,
      );
      const result = await runGateway(["--config", file]);
      assert.equal(result.code, 2, `${table}\n${result.stderr}`);
      assert.match(result.stderr, expected);
    }
  });
});
