/**
 * Server states in the config (issue 9 point 5, HAProxy's semantics) against the real gateway
 * process and real upstreams, all of them up: a `drain` server keeps the clients whose cookie
 * names it and gets no new one; a `maint` server gets no request at all, its clients are
 * re-pinned (or refused under `no_fallback`); server ids show in `--check`.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { runGateway, startGateway, stopAllGateways, writeTempFile } from "../support/gateway.ts";
import { ask, header, md5 } from "../support/http.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;
let D: NamedUpstream;

const cookieFor = (u: NamedUpstream) => `route=${md5(u.address)}`;
const setCookieFor = (u: NamedUpstream) => `${cookieFor(u)}; Path=/`;

/** A ready, B draining (id web-b), C in maint, D ready; /nf/ under no_fallback. */
function config(): string {
  return `
[upstreams.app]
servers = [
  "${A.address}",
  { address = "${B.address}", id = "web-b", state = "drain" },
  { address = "${C.address}", id = "web-c", state = "maint" },
  { address = "${D.address}", id = "web-d" },
]

[upstreams.app.sticky]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/nf/"
upstream = "app"
no_fallback = true
`;
}

describe("server states: drain and maint", () => {
  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    C = await startNamedUpstream("C");
    D = await startNamedUpstream("D");
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("drain: clients whose cookie names it stay there (no Set-Cookie), new clients never get it", async () => {
    const gw = await startGateway(config());
    const before = B.requests.length;
    for (let i = 0; i < 4; i++) {
      const pinned = await ask(gw.port, { cookies: [cookieFor(B)] });
      assert.equal(pinned.status, 200);
      assert.equal(pinned.servedBy, "B");
      assert.deepEqual(pinned.setCookies, [], "a draining server's client is not re-pinned");
    }
    const post = await ask(gw.port, { method: "POST", cookies: [cookieFor(B)], body: "hello" });
    assert.equal(post.servedBy, "B");
    assert.equal(B.requests.length - before, 5);

    const fresh: string[] = [];
    for (let i = 0; i < 8; i++) {
      const answer = await ask(gw.port);
      assert.equal(answer.status, 200);
      const server = answer.servedBy === "A" ? A : D;
      assert.deepEqual(answer.sticky, [setCookieFor(server)]);
      fresh.push(answer.servedBy ?? "-");
    }
    assert.deepEqual(fresh, ["A", "D", "A", "D", "A", "D", "A", "D"]);
    assert.equal(B.requests.length - before, 5, "no new client reached the draining server");
  });

  it("maint: no request reaches it; its clients move with a new cookie, then stay where they moved", async () => {
    const gw = await startGateway(config());
    const before = C.requests.length;
    const moved = await ask(gw.port, { cookies: [cookieFor(C)] });
    assert.equal(moved.status, 200);
    assert.ok(moved.servedBy === "A" || moved.servedBy === "D", `served by ${moved.servedBy}`);
    const target = moved.servedBy === "A" ? A : D;
    assert.deepEqual(moved.sticky, [setCookieFor(target)]);
    const again = await ask(gw.port, { cookies: [cookieFor(target)] });
    assert.equal(again.servedBy, target.name);
    assert.deepEqual(again.setCookies, []);
    for (let i = 0; i < 4; i++) assert.notEqual((await ask(gw.port)).servedBy, "C");
    assert.equal(C.requests.length, before, "the maint server got no request");
  });

  it("no_fallback: a maint server's client gets 502 pinned_unavailable, a draining server's is served", async () => {
    const gw = await startGateway(config());
    const refused = await ask(gw.port, { path: "/nf/x", cookies: [cookieFor(C)] });
    assert.equal(refused.status, 502);
    assert.equal(header(refused.response, "x-gateway-error"), "pinned_unavailable");
    assert.deepEqual(refused.setCookies, []);
    const drained = await ask(gw.port, { path: "/nf/x", cookies: [cookieFor(B)] });
    assert.equal(drained.servedBy, "B");
    assert.deepEqual(drained.setCookies, []);
  });

  it("--check names each server's id where it differs from the address, and its state", async () => {
    const file = writeTempFile("states.toml", config());
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`${B.address} \\(id web-b\\) .* drain `));
    assert.match(result.stdout, new RegExp(`${C.address} \\(id web-c\\) .* maint `));
    assert.match(result.stdout, new RegExp(`\\n  ${A.address}  weight=1`));
  });

  it("a duplicate id is a config error (exit 2) naming the key and the fix", async () => {
    const file = writeTempFile(
      "dup.toml",
      `[upstreams.app]\nservers = [{ address = "${A.address}", id = "web" }, { address = "${B.address}", id = "web" }]\n`,
    );
    const result = await runGateway(["--config", file, "--check"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /upstreams\.app\.servers\[1\]\.id: "web" is already the id of upstreams\.app\.servers\[0\]; give each server its own id/,
    );
  });
});
