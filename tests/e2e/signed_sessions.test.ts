/**
 * Signed sessions (issue 12) on the real gateway process: tokens issued and routed; a token with
 * any character changed gets a new token and never reaches the server it names; a key rotation
 * under load moves no client (their tokens re-issued, `rotated` counted); three instances with
 * the same keys route every token alike; idle expiry; header stickiness; `indirect` (plain
 * requests and WebSocket handshakes); the `cookie` CLI and API; and no secret in any output.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { tmpdir } from "node:os";
import {
  adminPortOf,
  runGateway,
  type RunningGateway,
  sleep,
  startGateway,
  stopAllGateways,
  writeTempFile,
} from "../support/gateway.ts";
import { ask, rawRequest } from "../support/http.ts";
import {
  closeAllUpstreams,
  type NamedUpstream,
  requestHeaderValues,
  startNamedUpstream,
} from "../support/upstreams.ts";

const dir = mkdtempSync(join(tmpdir(), "signed-sessions-"));
const SECRET_OLD = "old-0f3c9a1e5b7d2468ace0-secret-of-key-k1";
const SECRET_NEW = "new-9e8d7c6b5a4f3e2d1c0b-secret-of-key-k2";
const SECRET_SHORT = "short-secret-9z";
const SECRETS = [SECRET_OLD, SECRET_NEW, SECRET_SHORT];
const TOKEN =
  /^1\.[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]{11}\.[0-9a-z]+\.[0-9a-z]+\.[A-Za-z0-9_-]{22}$/;

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;
/** Every gateway started here: their output is searched for secrets at the end. */
const started: RunningGateway[] = [];
/** Every other output (CLI, API answers), searched likewise. */
const outputs: string[] = [];

function keysFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The config: upstream app of A, B, C (ids a, b, c), token mode with `sticky` lines added. */
function config(keys: string, sticky = "", server = ""): string {
  return `[server]
${server}
[admin]
listen = "127.0.0.1:0"

[upstreams.app]
servers = [
  { address = "${A.address}", id = "a" },
  { address = "${B.address}", id = "b" },
  { address = "${C.address}", id = "c" },
]

[upstreams.app.sticky]
mode = "token"
keys_file = "${keys}"
${sticky}
`;
}

interface Gateway {
  readonly gw: RunningGateway;
  readonly port: number;
  readonly admin: number;
}

async function start(text: string): Promise<Gateway> {
  const gw = await startGateway(text);
  started.push(gw);
  return { gw, port: gw.port, admin: await adminPortOf(gw) };
}

const tokenIn = (setCookie: string | undefined): string | undefined =>
  setCookie === undefined ? undefined : /^route=([^;]*)/.exec(setCookie)?.[1];

async function api(port: number, path: string, method = "GET") {
  const response = await rawRequest(port, { method, path });
  const body = response.body.toString("utf8");
  outputs.push(body);
  return { status: response.status, body: JSON.parse(body) as Record<string, unknown> };
}

async function outcomes(admin: number): Promise<Record<string, number>> {
  const text = (await rawRequest(admin, { path: "/metrics" })).body.toString("utf8");
  outputs.push(text);
  const counts: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match =
      /^sticky_gateway_sticky_decisions_total\{upstream="app",outcome="([a-z_]+)"\} (\d+)/
        .exec(line);
    if (match !== null) counts[match[1]] = Number(match[2]);
  }
  return counts;
}

/** A new client: its first request's server and token. */
async function newClient(port: number): Promise<{ server: string; token: string }> {
  const first = await ask(port);
  assert.equal(first.status, 200);
  const token = tokenIn(first.sticky[0]);
  assert.ok(token !== undefined && TOKEN.test(token), `a token: ${first.sticky[0]}`);
  return { server: first.servedBy!, token };
}

describe("signed sessions (mode = token)", () => {
  before(async () => {
    [A, B, C] = await Promise.all([
      startNamedUpstream("A"),
      startNamedUpstream("B"),
      startNamedUpstream("C"),
    ]);
  });

  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    rmSync(dir, { recursive: true, force: true });
  });

  it("issues a token (51 + key id characters) and routes by it without a new cookie", async () => {
    const keys = keysFile("issue.keys", `k1:${SECRET_OLD}\n`);
    const { port, gw, admin } = await start(config(keys, `max_idle = "30m"`));
    const client = await newClient(port);
    assert.equal(client.token.length, 51 + "k1".length);
    for (let i = 0; i < 10; i++) {
      const again = await ask(port, { cookies: [`x=1; route=${client.token}`] });
      assert.equal(again.servedBy, client.server);
      assert.deepEqual(again.sticky, [], "a valid token gets no new cookie");
    }
    const counts = await outcomes(admin);
    assert.equal(counts.new, 1);
    assert.equal(counts.hit, 10);
    // The access log is written off the event loop: wait for its lines.
    for (let waited = 0; !/"sticky":"hit"/.test(gw.stdout()) && waited < 5000; waited += 50) {
      await sleep(50);
    }
    assert.match(gw.stdout(), /"sticky":"new"[\s\S]*"sticky":"hit"/);
  });

  it("a token with any character changed gets a new token and never its server", async () => {
    const keys = keysFile("tamper.keys", `k1:${SECRET_OLD}\n`);
    const { port, admin } = await start(config(keys));
    // b drains: balancing never picks it, so only a token naming b could bring a client there.
    const drain = await rawRequest(admin, {
      method: "PUT",
      path: "/api/v1/upstreams/app/servers/b/state",
      body: `{"state":"drain"}`,
      headers: [["content-type", "application/json"]],
    });
    assert.equal(drain.status, 200);
    const cookie = await api(admin, "/api/v1/upstreams/app/cookie?server=b");
    const token = (cookie.body as { value: string }).value;
    assert.equal((await ask(port, { cookies: [`route=${token}`] })).servedBy, "B");
    const alphabet = "A0z_-.9Qk";
    let sent = 0;
    for (let i = 0; i < token.length; i++) {
      // Three replacements per position keep this fast (every one of 65 is tried in the unit test).
      const replacements = [...alphabet].filter((c) => c !== token[i]).slice(i % 3, (i % 3) + 3);
      for (const c of replacements) {
        const tampered = token.slice(0, i) + c + token.slice(i + 1);
        const answer = await ask(port, { cookies: [`route=${tampered}`] });
        sent++;
        assert.equal(answer.status, 200);
        assert.notEqual(answer.servedBy, "B", `${tampered} reached b`);
        const fresh = tokenIn(answer.sticky[0]);
        assert.ok(fresh !== undefined && fresh !== tampered, `a new token for ${tampered}`);
      }
    }
    for (const cut of [token.slice(0, -1), token.slice(0, 20), `${token}A`]) {
      const answer = await ask(port, { cookies: [`route=${cut}`] });
      assert.notEqual(answer.servedBy, "B");
      assert.equal(answer.sticky.length, 1);
      sent++;
    }
    const counts = await outcomes(admin);
    const refused = (counts.forged ?? 0) + (counts.unknown_key ?? 0) + (counts.invalid ?? 0);
    assert.equal(refused, sent);
    assert.ok(counts.forged > 0 && counts.unknown_key > 0, JSON.stringify(counts));
  });

  it("a key rotation under load moves no client: tokens re-issued under the new key, rotated counted", async () => {
    const keys = keysFile("rotate.keys", `k1:${SECRET_OLD}\n`);
    // Two worker threads: both switch to the new keys (each reads the keys file of the new text).
    const { port, admin } = await start(config(keys, `max_idle = "30m"`, "workers = 2"));
    const old = (await api(admin, "/api/v1/upstreams/app/cookie?server=a")).body.value as string;
    const clients = await Promise.all(
      Array.from({ length: 12 }, () => newClient(port)),
    );
    let rotatedSeen = 0;
    let stop = false;
    const moved: string[] = [];
    const load = clients.map(async (client) => {
      while (!stop) {
        const answer = await ask(port, { cookies: [`route=${client.token}`] });
        if (answer.servedBy !== client.server) moved.push(`${client.server} → ${answer.servedBy}`);
        const fresh = tokenIn(answer.sticky[0]);
        if (fresh !== undefined) {
          assert.match(fresh, /^1\.k2\./, "re-issued under the signing key");
          client.token = fresh;
          rotatedSeen++;
        }
      }
    });
    await sleep(300);
    writeFileSync(keys, `k2:${SECRET_NEW}\nk1:${SECRET_OLD}\n`);
    const reloaded = await api(admin, "/api/v1/keys/reload", "POST");
    assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));
    await sleep(500);
    stop = true;
    await Promise.all(load);
    assert.deepEqual(moved, []);
    assert.equal(rotatedSeen, clients.length, "each client re-issued once");
    assert.ok(clients.every((c) => c.token.startsWith("1.k2.")));
    assert.equal((await outcomes(admin)).rotated, clients.length);
    // The old key gone: the re-issued tokens still hold, an old one is unknown_key.
    writeFileSync(keys, `k2:${SECRET_NEW}\n`);
    assert.equal((await api(admin, "/api/v1/reload", "POST")).status, 200);
    for (const client of clients) {
      const answer = await ask(port, { cookies: [`route=${client.token}`] });
      assert.equal(answer.servedBy, client.server);
    }
    const refused = await ask(port, { cookies: [`route=${old}`] });
    assert.equal(refused.sticky.length, 1);
    assert.equal((await outcomes(admin)).unknown_key, 1);
    // A keyring with a problem is refused whole (the line and key id, never the secret).
    writeFileSync(keys, `k3:${SECRET_SHORT}\nk2:${SECRET_NEW}\n`);
    const bad = await api(admin, "/api/v1/reload", "POST");
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /line 1: the secret of key \\"k3\\" has 15 bytes/);
  });

  it("three instances with the same keys route every token alike", async () => {
    const keys = keysFile("fleet.keys", `k1:${SECRET_OLD}\n`);
    const text = config(keys, `max_idle = "30m"`);
    const fleet = await Promise.all([start(text), start(text), start(text)]);
    for (let from = 0; from < fleet.length; from++) {
      for (let n = 0; n < 6; n++) {
        const client = await newClient(fleet[from].port);
        for (const other of fleet) {
          const answer = await ask(other.port, { cookies: [`route=${client.token}`] });
          assert.equal(answer.servedBy, client.server, `instance ${from}'s token elsewhere`);
          assert.deepEqual(answer.sticky, []);
        }
      }
    }
  });

  it("idle expiry: a token unused for max_idle is re-balanced (expired_idle); one in use is refreshed", async () => {
    const keys = keysFile("idle.keys", `k1:${SECRET_OLD}\n`);
    const { port, admin } = await start(config(keys, `max_idle = "2s"\nclock_skew = "0"`));
    const client = await newClient(port);
    const t0 = Date.now();
    await sleep(1000);
    const refreshed = await ask(port, { cookies: [`route=${client.token}`] });
    assert.equal(refreshed.servedBy, client.server);
    const second = tokenIn(refreshed.sticky[0]);
    assert.ok(second !== undefined && second !== client.token, "refreshed after max_idle / 4");
    // Seconds are whole: 1.2 s after its refresh, a token was seen 1 or 2 s ago (not more than 2).
    await sleep(Math.max(0, t0 + 2200 - Date.now()));
    const kept = await ask(port, { cookies: [`route=${second}`] });
    assert.equal(kept.servedBy, client.server, "the refreshed token is still valid");
    // 3.2 s after its issue, the first token was seen 3 or 4 s ago: more than max_idle.
    await sleep(Math.max(0, t0 + 3200 - Date.now()));
    const expired = await ask(port, { cookies: [`route=${client.token}`] });
    assert.equal(expired.sticky.length, 1, "a new token");
    assert.equal((await outcomes(admin)).expired_idle, 1);
  });

  it("header stickiness: one X-Session-Id, one server; the cookie first; a Set-Cookie too", async () => {
    const keys = keysFile("header.keys", `k1:${SECRET_OLD}\n`);
    const text = config(keys, `header = "X-Session-Id"`);
    const [one, two] = await Promise.all([start(text), start(text)]);
    const servers = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const headers: [string, string][] = [["X-Session-Id", `user-${i}`]];
      const first = await ask(one.port, { headers });
      servers.add(first.servedBy!);
      assert.equal(first.sticky.length, 1);
      for (const gateway of [one, one, two]) {
        assert.equal((await ask(gateway.port, { headers })).servedBy, first.servedBy);
      }
      const other = ["a", "b", "c"].find((id) => id !== first.servedBy!.toLowerCase())!;
      const token = (await api(one.admin, `/api/v1/upstreams/app/cookie?server=${other}`)).body
        .value as string;
      const byCookie = await ask(one.port, { headers, cookies: [`route=${token}`] });
      assert.equal(byCookie.servedBy, other.toUpperCase(), "the cookie wins over the header");
    }
    assert.equal(servers.size, 3, "30 ids spread over the three servers");
    assert.ok((await outcomes(one.admin)).header >= 90);
  });

  it("indirect: the sticky cookie never reaches the upstream, other cookies byte for byte", async () => {
    const keys = keysFile("indirect.keys", `k1:${SECRET_OLD}\n`);
    const { port } = await start(config(keys, `indirect = true`));
    const client = await newClient(port);
    const upstream = { A, B, C }[client.server as "A" | "B" | "C"];
    const before = upstream.requests.length;
    await ask(port, { cookies: [`a=1;  route=${client.token}; b="x y"`] });
    await ask(port, { cookies: [`route=${client.token}`] });
    const seen = upstream.requests.slice(before).map((r) => requestHeaderValues(r, "cookie"));
    assert.deepEqual(seen, [[`a=1;  b="x y"`], []]);
  });

  it("indirect on a WebSocket handshake", async () => {
    const handshakes: string[] = [];
    const sockets = new Set<Socket>();
    const raw: NetServer = createServer((socket) => {
      sockets.add(socket);
      socket.once("data", (data) => {
        handshakes.push(data.toString("latin1"));
        socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
    const rawPort = (raw.address() as AddressInfo).port;
    try {
      const keys = keysFile("ws.keys", `k1:${SECRET_OLD}\n`);
      const gw = await startGateway(`[upstreams.ws]
servers = ["127.0.0.1:${rawPort}"]
[upstreams.ws.sticky]
mode = "token"
keys_file = "${keys}"
indirect = true
`);
      started.push(gw);
      const answer = await rawRequest(gw.port, {
        path: "/socket",
        headers: [
          ["Connection", "Upgrade"],
          ["Upgrade", "websocket"],
          ["Sec-WebSocket-Version", "13"],
          ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
          ["Cookie", "theme=dark; route=1.k1.AAAAAAAAAAA.a.a.AAAAAAAAAAAAAAAAAAAAAA"],
        ],
      });
      assert.equal(answer.status, 403);
      assert.equal(handshakes.length, 1);
      assert.match(handshakes[0], /\r\ncookie: theme=dark\r\n/i);
      assert.doesNotMatch(handshakes[0], /route=/);
    } finally {
      for (const socket of sockets) socket.destroy();
      raw.close();
    }
  });

  it("the cookie CLI and API: a server's value routes there; decode names server, key, times", async () => {
    const keys = keysFile("cli.keys", `k2:${SECRET_NEW}\nk1:${SECRET_OLD}\n`);
    const text = config(keys, `max_idle = "30m"`);
    const { port, admin } = await start(text);
    const file = writeTempFile("cli.toml", text.replace(`[admin]\nlisten = "127.0.0.1:0"`, ""));
    const made = await runGateway([
      "cookie",
      "--config",
      file,
      "--upstream",
      "app",
      "--server",
      "c",
    ]);
    outputs.push(made.stdout, made.stderr);
    assert.equal(made.code, 0, made.stderr);
    const value = made.stdout.trim();
    assert.match(value, /^1\.k2\./);
    assert.equal((await ask(port, { cookies: [`route=${value}`] })).servedBy, "C");
    const decoded = await runGateway([
      "cookie",
      "--config",
      file,
      "--upstream",
      "app",
      "--decode",
      value,
    ]);
    outputs.push(decoded.stdout, decoded.stderr);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.match(decoded.stdout, /server: +c\n/);
    assert.match(decoded.stdout, /verifies: yes/);
    assert.match(decoded.stdout, /key: +k2 \(the signing key\)/);
    assert.match(decoded.stdout, /issued: +20\d\d-\d\d-\d\dT/);
    const forged = await runGateway([
      "cookie",
      "--config",
      file,
      "--upstream",
      "app",
      "--decode",
      value.slice(0, -3) + "AAA",
    ]);
    outputs.push(forged.stdout, forged.stderr);
    assert.equal(forged.code, 1);
    assert.match(forged.stdout, /verifies: no[\s\S]*outcome: +forged/);
    const viaApi = await api(
      admin,
      `/api/v1/upstreams/app/cookie?decode=${encodeURIComponent(value)}`,
    );
    assert.equal(viaApi.status, 200);
    assert.equal(viaApi.body.server, "c");
    assert.equal(viaApi.body.verifies, true);
    assert.deepEqual(viaApi.body.key, { id: "k2", known: true, signing: true });
    assert.equal((await api(admin, "/api/v1/upstreams/app/cookie?server=zz")).status, 404);
    assert.equal((await api(admin, "/api/v1/upstreams/app/cookie")).status, 400);
    const check = await runGateway(["--config", file, "--check"]);
    outputs.push(check.stdout, check.stderr);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /keys k2, k1 from file/);
    outputs.push(JSON.stringify((await api(admin, "/api/v1/upstreams")).body));
  });

  it("the cookie API asks for the admin token like the rest of the API", async () => {
    const keys = keysFile("auth.keys", `k1:${SECRET_OLD}\n`);
    const text = config(keys).replace(
      `[admin]\nlisten = "127.0.0.1:0"`,
      `[admin]\nlisten = "127.0.0.1:0"\ntoken = "admin-token-0123456789"`,
    );
    const { admin } = await start(text);
    const path = "/api/v1/upstreams/app/cookie?server=a";
    assert.equal((await rawRequest(admin, { path })).status, 401);
    const wrong = [["Authorization", "Bearer admin-token-wrong-0000"]] as [string, string][];
    assert.equal((await rawRequest(admin, { path, headers: wrong })).status, 401);
    const right = [["Authorization", "Bearer admin-token-0123456789"]] as [string, string][];
    const answer = await rawRequest(admin, { path, headers: right });
    assert.equal(answer.status, 200);
    outputs.push(answer.body.toString("utf8"));
    const reload = await rawRequest(admin, { method: "POST", path: "/api/v1/keys/reload" });
    assert.equal(reload.status, 401);
  });

  it("no secret in any output: logs, events, --check, the CLI, the API", async () => {
    const bad = writeTempFile(
      "bad.toml",
      config(keysFile("bad.keys", `k1:${SECRET_SHORT}\n`)).replace(
        `[admin]\nlisten = "127.0.0.1:0"`,
        "",
      ),
    );
    const refused = await runGateway(["--config", bad, "--check"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /keys_file: file .*line 1: the secret of key "k1" has 15 bytes/);
    outputs.push(refused.stdout, refused.stderr);
    const everything = [
      ...started.flatMap((gw) => [gw.stdout(), gw.stderr()]),
      ...outputs,
    ].join("\n");
    assert.ok(everything.length > 10_000, "the outputs were collected");
    for (const secret of SECRETS) {
      assert.ok(!everything.includes(secret), "a secret was printed");
      assert.ok(!everything.includes(Buffer.from(secret).toString("base64")), "a secret, base64");
    }
  });
});
