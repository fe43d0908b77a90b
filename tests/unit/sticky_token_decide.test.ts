/**
 * The sticky decision with signed tokens and header stickiness (issue 12), on configs as they
 * load: tampered tokens never reach the server they name, rotation keeps the server and the issue
 * time, idle and life expiry with a given clock, a refresh at most once per max_idle / 4, the
 * order cookie > header > balancing; and `indirect`'s removal of the cookie, byte for byte.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseConfig, type Server, type Upstream } from "../../src/config/mod.ts";
import { decideSticky, type StickyDecision } from "../../src/sticky/resolve.ts";
import { stickySetCookie } from "../../src/sticky/issue.ts";
import { signToken } from "../../src/sticky/token.ts";
import { parseKeyring } from "../../src/sticky/keyring.ts";
import { decodeCookie, type DecodedCookie, serverCookie } from "../../src/sticky/inspect.ts";
import { upstreamRequestHeaders, withoutCookie } from "../../src/proxy/headers.ts";

const dir = mkdtempSync(join(tmpdir(), "sticky-token-decide-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const OLD = "old-key-secret-0123456789abcdefghijklmnop";
const NEW = "new-key-secret-0123456789abcdefghijklmnop";
const STRANGER = "stranger-secret-0123456789abcdefghijklmno";
writeFileSync(join(dir, "old.keys"), `k1:${OLD}\n`);
writeFileSync(join(dir, "rotated.keys"), `k2:${NEW}\nk1:${OLD}\n`);

const NOW_S = 1_800_000_000;
const NOW = NOW_S * 1000;
const ALL_UP = { isAvailable: () => true, anyPrimaryAvailable: () => true };

function upstream(sticky: string, keys = "old.keys", servers?: string): Upstream {
  const text = `[upstreams.app]
servers = ${
    servers ??
      `[{ address = "127.0.0.1:9001", id = "web-1" }, { address = "127.0.0.1:9002", id = "web-2" }, { address = "127.0.0.1:9003", id = "web-3" }]`
  }
[upstreams.app.sticky]
mode = "token"
keys_file = "${keys}"
${sticky}
`;
  return parseConfig(text, join(dir, "gw.toml")).upstreams.get("app")!;
}

const decide = (app: Upstream, headers: Record<string, string>, nowMs = NOW) =>
  decideSticky(app.sticky!, new Headers(headers), "/", false, ALL_UP, nowMs);
const named = (d: StickyDecision) => d.kind === "pinned" ? d.server.id : `${d.kind}:${d.outcome}`;
/** The token a response for `server` at `nowMs` carries. */
const tokenOf = (app: Upstream, server: Server, nowMs = NOW, issuedS?: number) =>
  stickySetCookie(app.sticky!, server, nowMs, issuedS)!.split(";")[0].slice("route=".length);

describe("token decisions", () => {
  const app = upstream(`max_idle = "20m"\nclock_skew = "30s"`);
  const web2 = app.servers[1];

  it("a token the gateway issued routes to its server, without a new cookie", () => {
    const token = tokenOf(app, web2);
    const d = decide(app, { cookie: `a=1; route=${token}` });
    assert.equal(named(d), "web-2");
    assert.equal(d.kind === "pinned" && d.outcome, "hit");
    assert.equal(d.kind === "pinned" && d.reissue, false);
  });

  it("every character changed, truncation, another upstream's or a foreign key's token: never the named server", () => {
    const token = tokenOf(app, web2);
    const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.";
    const outcomes = new Set<string>();
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) {
        if (c === token[i]) continue;
        const tampered = token.slice(0, i) + c + token.slice(i + 1);
        const d = decide(app, { cookie: `route=${tampered}` });
        assert.equal(d.kind, "balance", `${tampered} (position ${i})`);
        outcomes.add(d.outcome);
      }
    }
    assert.ok(outcomes.has("forged") && outcomes.has("unknown_key") && outcomes.has("invalid"));
    for (let n = 1; n < token.length; n++) {
      assert.equal(decide(app, { cookie: `route=${token.slice(0, n)}` }).kind, "balance");
    }
    const stranger = parseKeyring(`k1:${STRANGER}`);
    if (typeof stranger === "string") throw new Error(stranger);
    const foreign = signToken(stranger.signing, "app", "web-2", NOW_S, NOW_S);
    assert.equal(named(decide(app, { cookie: `route=${foreign}` })), "balance:forged");
    const other = signToken(app.sticky!.token!.keyring.signing, "other", "web-2", NOW_S, NOW_S);
    assert.equal(named(decide(app, { cookie: `route=${other}` })), "balance:forged");
  });

  it("rotation: a token of the older key is served by its server and re-issued under the new key, keeping its issue time", () => {
    const before = tokenOf(app, web2, NOW - 600_000);
    const rotated = upstream(`max_idle = "20m"`, "rotated.keys");
    const d = decide(rotated, { cookie: `route=${before}` });
    assert.equal(named(d), "web-2");
    assert.ok(d.kind === "pinned" && d.outcome === "rotated" && d.reissue);
    const issuedS = d.kind === "pinned" ? d.issuedS : undefined;
    assert.equal(issuedS, NOW_S - 600);
    const after = tokenOf(rotated, rotated.servers[1], NOW, issuedS);
    assert.match(after, /^1\.k2\./);
    const next = decide(rotated, { cookie: `route=${after}` });
    assert.ok(next.kind === "pinned" && next.outcome === "hit" && !next.reissue);
    assert.equal(
      (decodeCookie(rotated, after, NOW) as DecodedCookie).times?.issued,
      new Date((NOW_S - 600) * 1000).toISOString(),
    );
    // Without the old key in the ring, the old token is unknown_key.
    writeFileSync(join(dir, "new-only.keys"), `k2:${NEW}\n`);
    assert.equal(
      named(decide(upstream("", "new-only.keys"), { cookie: `route=${before}` })),
      "balance:unknown_key",
    );
  });

  it("idle and life expiry with a given clock, tolerating clock_skew", () => {
    const lived = upstream(`max_idle = "20m"\nmax_life = "1h"\nclock_skew = "30s"`);
    const token = tokenOf(lived, lived.servers[0]);
    const at = (s: number) => named(decide(lived, { cookie: `route=${token}` }, NOW + s * 1000));
    assert.equal(at(20 * 60 + 30), "web-1");
    assert.equal(at(20 * 60 + 31), "balance:expired_idle");
    // Kept alive by refreshes, it still ends at max_life.
    let current = token;
    for (let t = 0; t <= 3600; t += 600) {
      const d = decide(lived, { cookie: `route=${current}` }, NOW + t * 1000);
      assert.equal(named(d), "web-1", `at ${t}s`);
      if (d.kind === "pinned" && d.reissue) {
        current = tokenOf(lived, lived.servers[0], NOW + t * 1000, d.issuedS);
      }
    }
    const late = decide(lived, { cookie: `route=${current}` }, NOW + (3600 + 31) * 1000);
    assert.equal(named(late), "balance:expired_life");
  });

  it("refresh: at most once per max_idle / 4", () => {
    const token = tokenOf(app, web2);
    let current = token;
    let reissued = 0;
    // A request every 10 s for 2 hours with a 20 min max_idle: a refresh every 5 min.
    for (let t = 10; t <= 7200; t += 10) {
      const d = decide(app, { cookie: `route=${current}` }, NOW + t * 1000);
      assert.equal(named(d), "web-2");
      assert.equal(d.kind === "pinned" && d.outcome, "hit");
      if (d.kind === "pinned" && d.reissue) {
        reissued++;
        current = tokenOf(app, web2, NOW + t * 1000, d.issuedS);
      }
    }
    assert.equal(reissued, 7200 / 300);
    // No max_idle: never refreshed.
    const forever = upstream("");
    const kept = tokenOf(forever, forever.servers[0]);
    const d = decide(forever, { cookie: `route=${kept}` }, NOW + 86_400_000 * 300);
    assert.ok(d.kind === "pinned" && !d.reissue);
  });

  it("a token of an unavailable server is repinned; under no_fallback refused", () => {
    const token = tokenOf(app, web2);
    const web2Down = { isAvailable: (s: Server) => s !== web2, anyPrimaryAvailable: () => true };
    const headers = new Headers({ cookie: `route=${token}` });
    assert.equal(
      named(decideSticky(app.sticky!, headers, "/", false, web2Down, NOW)),
      "balance:repin",
    );
    assert.equal(decideSticky(app.sticky!, headers, "/", true, web2Down, NOW).kind, "refuse");
  });

  it("the CLI's value for a server routes there; decode names the server, key and times", () => {
    const cookie = serverCookie(app, "web-3", NOW);
    if (typeof cookie === "string") throw new Error(cookie);
    assert.equal(named(decide(app, { cookie: `route=${cookie.value}` })), "web-3");
    const decoded = decodeCookie(app, cookie.value, NOW);
    if (typeof decoded === "string") throw new Error(decoded);
    assert.equal(decoded.server, "web-3");
    assert.equal(decoded.verifies, true);
    assert.deepEqual(decoded.key, { id: "k1", known: true, signing: true });
    assert.equal(decoded.times?.idleExpires, new Date((NOW_S + 1230) * 1000).toISOString());
    const forged = decodeCookie(app, cookie.value.slice(0, -2) + "AA", NOW);
    assert.ok(
      typeof forged !== "string" && forged.verifies === false && forged.outcome === "forged",
    );
    assert.ok(!JSON.stringify(decoded).includes(OLD));
  });
});

describe("token Set-Cookie", () => {
  it("the module's attributes around a token made per response (Expires per response too)", () => {
    const app = upstream(
      `name = "SRV"\ndomain = ".example.com"\npath = "/app"\nexpires = "1h"\nsecure = true\nhttponly = true\nsamesite = "Lax"`,
    );
    const header = stickySetCookie(app.sticky!, app.servers[0], NOW)!;
    assert.match(
      header,
      /^SRV=1\.k1\.[A-Za-z0-9_-]{11}\.[0-9a-z]+\.[0-9a-z]+\.[A-Za-z0-9_-]{22}; Domain=\.example\.com; Expires=[A-Z][a-z]{2}, \d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d GMT; Path=\/app; Secure; HttpOnly; SameSite=Lax$/,
    );
    const session = upstream(`secure = true`);
    assert.match(
      stickySetCookie(session.sticky!, session.servers[2], NOW)!,
      /^route=1\.k1\.[^;]{40,}; Path=\/; Secure$/,
    );
    // Two responses a second apart carry different tokens (the times are signed).
    const later = stickySetCookie(session.sticky!, session.servers[2], NOW + 1000)!;
    assert.notEqual(later, stickySetCookie(session.sticky!, session.servers[2], NOW));
  });
});

describe("header stickiness", () => {
  const app = upstream(`header = "X-Session-Id"`);

  it("cookie > header > balancing", () => {
    const d = decide(app, { "x-session-id": "user-42" });
    assert.ok(d.kind === "pinned" && d.outcome === "header" && d.reissue);
    const byHeader = named(d);
    const other = app.servers.find((s) => s.id !== byHeader)!;
    const token = tokenOf(app, other);
    assert.equal(
      named(decide(app, { "x-session-id": "user-42", cookie: `route=${token}` })),
      other.id,
    );
    assert.equal(named(decide(app, {})), "balance:new");
    // A cookie that is present decides, even a forged one (balanced, counted): never the header.
    assert.equal(
      named(decide(app, { "x-session-id": "user-42", cookie: `route=${token.slice(0, -1)}B` })),
      "balance:forged",
    );
  });

  it("the same value goes to the same server; only ready, available servers; backups when no primary", () => {
    const servers =
      `[{ address = "127.0.0.1:9001", id = "a" }, { address = "127.0.0.1:9002", id = "b" }, { address = "127.0.0.1:9003", id = "c", backup = true }]`;
    const mixed = upstream(`header = "X-Session-Id"`, "old.keys", servers);
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const id = named(decide(mixed, { "x-session-id": `s-${i}` }));
      counts.set(id, (counts.get(id) ?? 0) + 1);
      assert.equal(named(decide(mixed, { "x-session-id": `s-${i}` })), id);
    }
    assert.deepEqual([...counts.keys()].sort(), ["a", "b"]);
    assert.ok(Math.abs(counts.get("a")! - 1000) < 150, JSON.stringify([...counts]));
    const [a, b] = mixed.servers;
    const drained = {
      isAvailable: () => true,
      anyPrimaryAvailable: () => true,
      state: (s: Server) => s === a ? "drain" as const : "ready" as const,
    };
    const onlyB = decideSticky(
      mixed.sticky!,
      new Headers({ "x-session-id": "s-1" }),
      "/",
      false,
      drained,
      NOW,
    );
    assert.equal(named(onlyB), "b");
    const primariesDown = {
      isAvailable: (s: Server) => s !== a && s !== b,
      anyPrimaryAvailable: () => false,
    };
    const backup = decideSticky(
      mixed.sticky!,
      new Headers({ "x-session-id": "s-1" }),
      "/",
      false,
      primariesDown,
      NOW,
    );
    assert.equal(named(backup), "c");
  });
});

describe("indirect: the sticky cookie removed from the request sent upstream", () => {
  const cases: [string, string][] = [
    ["route=abc", ""],
    ["a=1; route=abc; b=2", "a=1; b=2"],
    ["route=abc; b=2", "b=2"],
    ["a=1; route=abc", "a=1"],
    ["a=1;route=abc;b=2", "a=1;b=2"],
    ['a=1 ;  ROUTE = abc ;b="x; y"', 'a=1 ;  b="x; y"'],
    ["routes=1; xroute=2; route=3", "routes=1; xroute=2"],
    ["route=1; a=2; route=3", "a=2"],
    ["a=1, route=2, b=3", "a=1, b=3"],
    ["a=1;\troute=abc\t", "a=1"],
    ["a=b=route=c; route", "a=b=route=c; route"],
  ];
  for (const [header, expected] of cases) {
    it(`${JSON.stringify(header)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(withoutCookie(header, "route"), expected);
    });
  }

  it("in the upstream headers: other cookies byte-exact, the header dropped when empty, nothing changed when off", () => {
    const client = { remoteAddress: "10.0.0.1", protocol: "http" as const };
    const send = (cookie: string, hide?: string) =>
      upstreamRequestHeaders(new Headers({ host: "h", cookie }), client, undefined, "r", hide)
        .filter(([name]) => name === "cookie").map(([, value]) => value);
    assert.deepEqual(send("a=1;  route=x; b=2", "route"), ["a=1;  b=2"]);
    assert.deepEqual(send("route=x", "route"), []);
    assert.deepEqual(send("a=1;  route=x; b=2"), ["a=1;  route=x; b=2"]);
  });
});
