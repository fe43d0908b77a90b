/**
 * The sticky decision table (issue #2 §3) when servers are unavailable: `down`, refusing
 * connections, failed `max_fails` times, recovered after `fail_timeout`, backups, nothing left;
 * with and without no_fallback. Upstream hit counts prove which servers were (not) tried.
 */
import { eventually } from "../support/realtime.ts";
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5 } from "../support/http.ts";
import {
  closeAllUpstreams,
  closedPort,
  type NamedUpstream,
  startNamedUpstream,
} from "../support/upstreams.ts";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;

const setCookie = (address: string) => `route=${md5(address)}; Path=/`;
const hits = (u: NamedUpstream) => u.requests.length;

describe("sticky decisions with unavailable servers", () => {
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

  const withDownB = (sticky = "") => `
[upstreams.app]
servers = ["${A.address}", { address = "${B.address}", down = true }, "${C.address}"]
[upstreams.app.sticky]
${sticky}
`;

  it("row 6: a cookie for a `down` server → another server and a new cookie; the down one is never asked", async () => {
    const gw = await startGateway(withDownB());
    const before = hits(B);
    const first = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
    assert.equal(first.status, 200);
    assert.equal(first.body, "A");
    assert.deepEqual(first.sticky, [setCookie(A.address)]);
    const second = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
    assert.equal(second.body, "C", "round robin over A and C only");
    assert.deepEqual(second.sticky, [setCookie(C.address)]);
    const third = await ask(gw.port);
    assert.equal(third.body, "A");
    assert.equal(hits(B), before, "B (down) got no request");
  });

  for (const level of ["upstream", "route"] as const) {
    it(`row 7: a cookie for a \`down\` server with no_fallback (${level}) → 502, no Set-Cookie`, async () => {
      const gw = await startGateway(
        level === "upstream"
          ? withDownB("no_fallback = true")
          : withDownB() + `[[routes]]\npath = "/"\nupstream = "app"\nno_fallback = true\n`,
      );
      const before = [hits(A), hits(B), hits(C)];
      const answer = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
      assert.equal(answer.status, 502);
      assert.deepEqual(answer.setCookies, []);
      assert.match(answer.body, /^502 Bad Gateway: .*pinned.*unavailable/);
      assert.match(
        answer.response.headers.find(([n]) => n.toLowerCase() === "content-type")?.[1] ?? "",
        /^text\/plain/,
      );
      assert.deepEqual([hits(A), hits(B), hits(C)], before, "nobody was asked");
      // A client without a cookie is still served.
      const fresh = await ask(gw.port);
      assert.equal(fresh.status, 200);
      assert.deepEqual(fresh.sticky, [setCookie(A.address)]);
    });
  }

  it("row 8: a cookie for a server refusing connections → retried on another; the cookie names the one that answered", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = ["${refusing}", "${A.address}", "${C.address}"]
[upstreams.app.sticky]
`);
    const answer = await ask(gw.port, { cookies: [`route=${md5(refusing)}`] });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "A");
    assert.deepEqual(
      answer.sticky,
      [setCookie(A.address)],
      "one Set-Cookie, for the server that answered",
    );
    // One structured event per failed attempt (stderr, written soon after), naming the server
    // and the code.
    const event = new RegExp(
      `"address":"${refusing.replaceAll(".", "\\.")}","code":"connect_refused"`,
    );
    await eventually(() => event.test(gw.stderr()), 2000, "the upstream_error event");
  });

  it("row 8: a new client whose round-robin pick refuses is retried, and gets the cookie of the server that answered", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = ["${refusing}", "${A.address}", "${C.address}"]
[upstreams.app.sticky]
`);
    const answer = await ask(gw.port);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, "A");
    assert.deepEqual(answer.sticky, [setCookie(A.address)]);
  });

  it("row 9: a cookie for a refusing server with no_fallback → 502, no Set-Cookie, no other server asked", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = ["${refusing}", "${A.address}", "${C.address}"]
[upstreams.app.sticky]
no_fallback = true
`);
    const before = [hits(A), hits(C)];
    const answer = await ask(gw.port, { cookies: [`route=${md5(refusing)}`] });
    assert.equal(answer.status, 502);
    assert.deepEqual(answer.setCookies, []);
    assert.match(answer.body, /^502 Bad Gateway: .*refused/);
    assert.deepEqual([hits(A), hits(C)], before);
    // Now marked failed (max_fails 1): refused up front, still 502.
    const again = await ask(gw.port, { cookies: [`route=${md5(refusing)}`] });
    assert.equal(again.status, 502);
    assert.deepEqual(again.setCookies, []);
    assert.deepEqual([hits(A), hits(C)], before);
  });

  it("rows 10-11: after max_fails the failed server is not tried (it is back, but gets no request)", async () => {
    const D = await startNamedUpstream("D");
    const gw = await startGateway(`
[upstreams.app]
servers = ["${A.address}", "${D.address}", "${C.address}"]
[upstreams.app.sticky]

[upstreams.strict]
servers = ["${A.address}", "${D.address}", "${C.address}"]
[upstreams.strict.sticky]
no_fallback = true

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/strict"
upstream = "strict"
`);
    const cookie = [`route=${md5(D.address)}`];
    await D.close();
    const failed = await ask(gw.port, { cookies: cookie });
    assert.equal(failed.body, "A", "D refused, the retry went to A");
    assert.deepEqual(failed.sticky, [setCookie(A.address)]);
    const failedStrict = await ask(gw.port, { path: "/strict", cookies: cookie });
    assert.equal(failedStrict.status, 502, "strict: D refused under no_fallback");

    await D.restart();
    // Row 10: D failed once (max_fails = 1) within fail_timeout (10s): not tried.
    const skipped = await ask(gw.port, { cookies: cookie });
    assert.equal(skipped.status, 200);
    assert.equal(skipped.body, "C", "round robin A→(D skipped)→C");
    assert.deepEqual(skipped.sticky, [setCookie(C.address)]);
    const fresh = await ask(gw.port);
    assert.equal(fresh.body, "A");
    const fresh2 = await ask(gw.port);
    assert.equal(fresh2.body, "C", "D is skipped by new clients too");
    // Row 11: under no_fallback the marked server is refused without being tried.
    const strict = await ask(gw.port, { path: "/strict", cookies: cookie });
    assert.equal(strict.status, 502);
    assert.deepEqual(strict.setCookies, []);
    assert.equal(hits(D), 0, "D was not asked while marked failed");
  });

  it("max_fails = 2 needs two failures before the server is skipped", async () => {
    const D = await startNamedUpstream("D");
    const gw = await startGateway(`
[upstreams.app]
servers = ["${A.address}", { address = "${D.address}", max_fails = 2 }]
[upstreams.app.sticky]
`);
    const cookie = [`route=${md5(D.address)}`];
    await D.close();
    assert.equal((await ask(gw.port, { cookies: cookie })).body, "A", "failure 1, retried on A");
    await D.restart();
    const stillTried = await ask(gw.port, { cookies: cookie });
    assert.equal(stillTried.body, "D", "one failure of two: D is still used");
    assert.deepEqual(stillTried.setCookies, []);
    await D.close();
    assert.equal(
      (await ask(gw.port, { cookies: cookie })).body,
      "A",
      "failure 1 again (the success reset the count)",
    );
    assert.equal((await ask(gw.port, { cookies: cookie })).body, "A", "failure 2");
    await D.restart();
    const before = hits(D);
    const skipped = await ask(gw.port, { cookies: cookie });
    assert.equal(skipped.body, "A", "two failures: D is skipped");
    assert.deepEqual(skipped.sticky, [setCookie(A.address)]);
    assert.equal(hits(D), before);
  });

  it("max_fails = 0 never marks a server failed", async () => {
    const D = await startNamedUpstream("D");
    const gw = await startGateway(`
[upstreams.app]
servers = ["${A.address}", { address = "${D.address}", max_fails = 0 }]
[upstreams.app.sticky]
`);
    const cookie = [`route=${md5(D.address)}`];
    await D.close();
    for (let i = 0; i < 3; i++) assert.equal((await ask(gw.port, { cookies: cookie })).body, "A");
    await D.restart();
    const back = await ask(gw.port, { cookies: cookie });
    assert.equal(back.body, "D");
    assert.deepEqual(back.setCookies, []);
  });

  it("row 12: once fail_timeout has passed the server is used again, with no Set-Cookie", async () => {
    const D = await startNamedUpstream("D");
    const gw = await startGateway(`
[upstreams.app]
servers = ["${A.address}", { address = "${D.address}", fail_timeout = "1s" }]
[upstreams.app.sticky]
no_fallback = true
`);
    const cookie = [`route=${md5(D.address)}`];
    await D.close();
    assert.equal(
      (await ask(gw.port, { cookies: cookie })).status,
      502,
      "refused under no_fallback",
    );
    await D.restart();
    assert.equal((await ask(gw.port, { cookies: cookie })).status, 502, "still marked failed");
    assert.equal(hits(D), 0);
    await sleep(1100);
    const back = await ask(gw.port, { cookies: cookie });
    assert.equal(back.status, 200);
    assert.equal(back.body, "D");
    assert.deepEqual(back.setCookies, []);
  });

  it("row 15: all primaries unavailable → a backup answers with its OWN cookie value, and keeps the session", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = [
  { address = "${A.address}", down = true },
  "${refusing}",
  { address = "${B.address}", backup = true },
  { address = "${C.address}", backup = true },
]
[upstreams.app.sticky]
`);
    const first = await ask(gw.port);
    assert.equal(first.status, 200);
    assert.equal(first.body, "B");
    assert.deepEqual(first.sticky, [setCookie(B.address)], "the backup's digest, not a primary's");
    assert.notEqual(md5(B.address), md5(A.address));
    const pinned = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
    assert.equal(pinned.body, "B");
    assert.deepEqual(pinned.setCookies, [], "pinned to the backup while no primary is up");
    const next = await ask(gw.port);
    assert.equal(next.body, "C");
    assert.deepEqual(next.sticky, [setCookie(C.address)]);
  });

  it("row 15, hash = index: a backup's value is its own, not a primary's index", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = [{ address = "${A.address}", down = true }, "${refusing}", { address = "${B.address}", backup = true }]
[upstreams.app.sticky]
hash = "index"
`);
    const first = await ask(gw.port);
    assert.equal(first.body, "B");
    assert.equal(first.sticky.length, 1);
    const value = /^route=(\d+); Path=\/$/.exec(first.sticky[0])?.[1];
    assert.ok(
      value !== undefined && value !== "0" && value !== "1",
      `backup value ${first.sticky[0]} must not name a primary`,
    );
    const pinned = await ask(gw.port, { cookies: [`route=${value}`] });
    assert.equal(pinned.body, "B");
    assert.deepEqual(pinned.setCookies, []);
  });

  it("a backup's cookie while a primary is up → moved to the primary with a new cookie", async () => {
    const gw = await startGateway(`
[upstreams.app]
servers = ["${A.address}", { address = "${B.address}", backup = true }]
[upstreams.app.sticky]
`);
    const before = hits(B);
    const answer = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
    assert.equal(answer.body, "A");
    assert.deepEqual(answer.sticky, [setCookie(A.address)]);
    assert.equal(hits(B), before, "backups serve only while no primary is available");
  });

  it("row 13: nothing available → 502 with no Set-Cookie", async () => {
    const refusing1 = `127.0.0.1:${await closedPort()}`;
    const refusing2 = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = [
  { address = "${A.address}", down = true },
  "${refusing1}",
  { address = "${refusing2}", backup = true },
]
[upstreams.app.sticky]
`);
    const before = hits(A);
    for (const cookies of [[], [`route=${md5(refusing1)}`], [`route=${md5(A.address)}`]]) {
      const answer = await ask(gw.port, { cookies });
      assert.equal(answer.status, 502, JSON.stringify(cookies));
      assert.deepEqual(answer.setCookies, [], JSON.stringify(cookies));
      assert.match(answer.body, /^502 Bad Gateway: /);
    }
    assert.equal(hits(A), before);
  });

  it("a POST whose pinned server refuses is sent to the next server (nothing of it was read yet)", async () => {
    const refusing = `127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(`
[upstreams.app]
servers = ["${refusing}", "${A.address}"]
[upstreams.app.sticky]
`);
    const before = hits(A);
    const answer = await ask(gw.port, {
      method: "POST",
      path: "/upload",
      body: "payload sent once, to the server that answers",
      cookies: [`route=${md5(refusing)}`],
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.servedBy, "A");
    assert.deepEqual(answer.sticky, [setCookie(A.address)]);
    assert.equal(hits(A), before + 1, "A got the POST exactly once");
    // A request without a body goes the same way.
    const get = await ask(gw.port, { cookies: [`route=${md5(refusing)}`] });
    assert.equal(get.status, 200);
    assert.equal(get.body, "A");
    assert.deepEqual(get.sticky, [setCookie(A.address)]);
  });
});
