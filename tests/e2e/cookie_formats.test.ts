/**
 * Cookies of every source (issue 11 point 2) through the real gateway and real upstreams:
 * `format = "nginx"` (nginx 1.30.4's own `sticky cookie`), compared byte for byte with real nginx
 * 1.30.4 where it is built (Expires within a second), and `accept_legacy` (the 1.2.x module's
 * sockaddr digests): the client lands on its server and gets a cookie in the current format.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type RunningGateway, sleep, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, md5, rawRequest } from "../support/http.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";
import { nginxSkipReason, startNginx, stopAllNginx } from "../support/nginx.ts";

let A: NamedUpstream;
let B: NamedUpstream;
let C: NamedUpstream;

function upstreams(sticky: string, servers?: string): string {
  return `
[upstreams.app]
servers = [${servers ?? `"${A.address}", "${B.address}", "${C.address}"`}]

[upstreams.app.sticky]
${sticky}
`;
}

/** The `sticky` field of the first `count` access log lines. */
async function outcomes(gw: RunningGateway, count: number): Promise<string[]> {
  for (let waited = 0; waited < 5000; waited += 20) {
    const lines = gw.stdout().split("\n").filter((line) => line.startsWith("{"));
    if (lines.length >= count) {
      return lines.slice(0, count).map((line) => String(JSON.parse(line).sticky));
    }
    await sleep(20);
  }
  assert.fail(`fewer than ${count} access log lines:\n${gw.stdout()}`);
}

/** A Set-Cookie with its date taken out (compared on its own, within a second). */
function splitDate(setCookie: string): { text: string; at: number | undefined } {
  const match = /expires=([^;]+)/i.exec(setCookie);
  if (match === null) return { text: setCookie, at: undefined };
  // nginx's two-digit year (up to 2037): 02-Dec-26 → 02 Dec 2026.
  const date = match[1].replace(/-(\d\d) /, " 20$1 ").replace(/-/g, " ");
  return { text: setCookie.replace(match[1], "DATE"), at: Date.parse(date) };
}

/** The Linux struct sockaddr_in of 127.0.0.1:port, as the 1.2.x module hashed it. */
function sockaddr(port: number): Buffer {
  return Buffer.from([2, 0, port >> 8, port & 0xff, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
}
const legacyMd5 = (u: NamedUpstream) => createHash("md5").update(sockaddr(u.port)).digest("hex");
const legacySha1 = (u: NamedUpstream) => createHash("sha1").update(sockaddr(u.port)).digest("hex");

const ATTRIBUTES = `format = "nginx"
name = "srv_id"
expires = "1h"
domain = ".example.com"
path = "/app"
samesite = "lax"
secure = true
httponly = true`;

describe("cookie formats", () => {
  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    C = await startNamedUpstream("C");
  });
  afterEach(async () => {
    await stopAllGateways();
    await stopAllNginx();
  });
  after(async () => {
    await stopAllGateways();
    await stopAllNginx();
    await closeAllUpstreams();
  });

  it("format = nginx: nginx's bytes, a Set-Cookie on every response, the resolved address hashed", async () => {
    const gw = await startGateway(
      upstreams(ATTRIBUTES, `"localhost:${A.port}", "${B.address}", "${C.address}"`),
    );
    const before = Date.now();
    const first = await ask(gw.port, { name: "srv_id" });
    assert.equal(first.servedBy, "A");
    const { text, at } = splitDate(first.sticky[0] ?? "");
    assert.equal(
      text,
      // localhost:PORT is hashed as nginx resolved it: 127.0.0.1:PORT.
      `srv_id=${
        md5(`127.0.0.1:${A.port}`)
      }; expires=DATE; max-age=3600; domain=.example.com; httponly; secure; samesite=lax; path=/app`,
    );
    assert.ok(
      at! >= Math.floor(before / 1000) * 1000 + 3600_000 && at! <= Date.now() + 3600_000,
      first.sticky[0],
    );
    // A valid cookie: the same server, and (as nginx) its Set-Cookie again.
    const again = await ask(gw.port, { name: "srv_id", cookies: [`srv_id=${md5(B.address)}`] });
    assert.equal(again.servedBy, "B");
    assert.equal(splitDate(again.sticky[0] ?? "").text.split(";")[0], `srv_id=${md5(B.address)}`);
    assert.deepEqual(await outcomes(gw, 2), ["new", "hit"]);
  });

  it("format = nginx: byte-identical to real nginx 1.30.4 (Expires within a second)", {
    skip: nginxSkipReason(),
  }, async () => {
    const directive =
      "sticky cookie srv_id expires=1h domain=.example.com path=/app samesite=lax secure httponly;";
    const nginx = await startNginx("native", (port) => `
    upstream app { server ${A.address}; server ${B.address}; server ${C.address}; ${directive} }
    server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }`);
    const gw = await startGateway(upstreams(ATTRIBUTES));
    const cases: { cookies?: string[] }[] = [
      {}, // new client: A in both
      { cookies: [`srv_id=${md5(C.address)}`] }, // valid cookie: C, re-sent
      { cookies: ["srv_id=garbage"] }, // invalid: the next in round robin
      { cookies: [`SRV_ID=${md5(B.address)}`] }, // name case-insensitive
    ];
    for (const request of cases) {
      const theirs = await ask(nginx.port, { name: "srv_id", ...request });
      const ours = await ask(gw.port, { name: "srv_id", ...request });
      assert.equal(ours.servedBy, theirs.servedBy, JSON.stringify(request));
      assert.equal(ours.sticky.length, 1);
      assert.equal(theirs.sticky.length, 1);
      const [a, b] = [splitDate(ours.sticky[0]), splitDate(theirs.sticky[0])];
      assert.equal(a.text, b.text, JSON.stringify(request));
      assert.ok(Math.abs(a.at! - b.at!) <= 1000, `${ours.sticky[0]} vs ${theirs.sticky[0]}`);
    }
  });

  it("format = nginx with routes and expires = max: the route is the value", async () => {
    const gw = await startGateway(upstreams(
      `format = "nginx"\nname = "s"\nexpires = "max"\npath = "/"`,
      `{ address = "${A.address}", route = "node1" }, { address = "${B.address}", route = "node2" }`,
    ));
    const answer = await ask(gw.port, { name: "s", cookies: ["s=node2"] });
    assert.equal(answer.servedBy, "B");
    assert.deepEqual(answer.sticky, [
      "s=node2; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000; path=/",
    ]);
  });

  it("accept_legacy: a 1.2.x md5 or sha1 sockaddr digest lands on its server and is re-issued", async () => {
    const gw = await startGateway(upstreams(`accept_legacy = true`));
    const legacy = await ask(gw.port, { cookies: [`route=${legacyMd5(B)}`] });
    assert.equal(legacy.servedBy, "B");
    assert.deepEqual(
      legacy.sticky,
      [`route=${md5(B.address)}; Path=/`],
      "re-issued as v1.3.0's value",
    );
    const sha1 = await ask(gw.port, { cookies: [`route=${legacySha1(C)}`] });
    assert.equal(sha1.servedBy, "C");
    assert.deepEqual(sha1.sticky, [`route=${md5(C.address)}; Path=/`]);
    // The re-issued cookie is a plain hit: no Set-Cookie.
    const after = await ask(gw.port, { cookies: [`route=${md5(B.address)}`] });
    assert.equal(after.servedBy, "B");
    assert.deepEqual(after.setCookies, []);
    assert.deepEqual(await outcomes(gw, 3), ["legacy", "legacy", "hit"]);
  });

  it("without accept_legacy the same cookie names no server (balanced, invalid)", async () => {
    const gw = await startGateway(upstreams(``));
    const answer = await ask(gw.port, { cookies: [`route=${legacyMd5(B)}`] });
    assert.equal(answer.servedBy, "A", "round robin's first, not B");
    assert.deepEqual(await outcomes(gw, 1), ["invalid"]);
  });

  it("accept_legacy: a legacy value naming a down server moves like a valid one (repin, or 502 under no_fallback)", async () => {
    const servers = `"${A.address}", { address = "${B.address}", down = true }, "${C.address}"`;
    const open = await startGateway(upstreams(`accept_legacy = true`, servers));
    const moved = await ask(open.port, { cookies: [`route=${legacyMd5(B)}`] });
    assert.notEqual(moved.servedBy, "B");
    assert.equal(moved.sticky.length, 1);
    assert.deepEqual(await outcomes(open, 1), ["repin"]);
    await open.stop();
    const strict = await startGateway(
      upstreams(`accept_legacy = true\nno_fallback = true`, servers),
    );
    const refused = await rawRequest(strict.port, {
      headers: [["Cookie", `route=${legacyMd5(B)}`]],
    });
    assert.equal(refused.status, 502);
  });
});
