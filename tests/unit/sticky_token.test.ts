/**
 * Signed sticky tokens, the pure parts (issue 12): HMAC-SHA256 against node:crypto, the token
 * format, tampering (every character changed in turn, truncation, another upstream's token, a
 * token signed with a key not in the ring), rotation, idle and life expiry with a given clock, and
 * rendezvous hashing's spread and minimal movement.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { HmacSha256, sha256 } from "../../src/sticky/hmac_sha256.ts";
import { type Keyring, parseKeyring } from "../../src/sticky/keyring.ts";
import { readToken, serverRef, signToken } from "../../src/sticky/token.ts";
import { TokenCheck } from "../../src/sticky/token_check.ts";
import { rendezvousPick } from "../../src/sticky/rendezvous.ts";

const SECRET_A = "a".repeat(20) + "-secret-of-key-one";
const SECRET_B = "b".repeat(20) + "-secret-of-key-two";
const ring = (text: string): Keyring => {
  const parsed = parseKeyring(text);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
};
const SERVERS = [{ id: "web-1" }, { id: "web-2" }, { id: "127.0.0.1:9003" }];
const LIFETIMES = { maxIdleS: 0, maxLifeS: 0, clockSkewS: 30 };
const NOW = 1_800_000_000;

describe("HMAC-SHA256", () => {
  it("equals node:crypto for messages and keys of every length around the block size", () => {
    for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300]) {
      for (const keyLength of [1, 32, 64, 65, 200]) {
        const key = randomBytes(keyLength);
        const message = randomBytes(length);
        assert.equal(
          Buffer.from(new HmacSha256(key).sign(message)).toString("hex"),
          createHmac("sha256", key).update(message).digest("hex"),
          `message ${length} bytes, key ${keyLength} bytes`,
        );
      }
    }
    assert.equal(
      Buffer.from(sha256(new Uint8Array(0))).toString("hex"),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });
});

describe("keyring", () => {
  it("reads id:secret lines; the first signs; problems name the line and never the secret", () => {
    const keys = ring(`# comment\n\nk2:${SECRET_B}\nk1:${SECRET_A}\n`);
    assert.equal(keys.signing.id, "k2");
    assert.deepEqual([...keys.byId.keys()], ["k2", "k1"]);
    const short = parseKeyring("k1:short-secret-here");
    assert.match(String(short), /line 1: the secret of key "k1" has 17 bytes; use at least 32/);
    assert.ok(!String(short).includes("short-secret-here"));
    assert.match(String(parseKeyring(`k1:${SECRET_A}\nk1:${SECRET_B}`)), /line 2: key id "k1"/);
    assert.match(String(parseKeyring(`bad id:${SECRET_A}`)), /line 1: the key id must be/);
    assert.match(String(parseKeyring("# only a comment\n")), /no key/);
    assert.match(String(parseKeyring(SECRET_A)), /id:secret/);
  });
});

describe("tokens", () => {
  const keys = ring(`k1:${SECRET_A}`);
  const check = () => new TokenCheck("app", SERVERS, keys, LIFETIMES);

  it("are short, URL-safe text naming the server", () => {
    const token = signToken(keys.signing, "app", "web-2", NOW, NOW);
    assert.match(token, /^[A-Za-z0-9._-]+$/);
    assert.ok(token.length <= 60, `${token.length} characters`);
    const fields = readToken(token)!;
    assert.equal(fields.ref, serverRef("app", "web-2"));
    assert.equal(fields.issuedS, NOW);
    const verdict = check().check(token, NOW);
    assert.equal(verdict.kind === "valid" && verdict.server.id, "web-2");
  });

  it("never name a server once any character is changed, or the token is cut", () => {
    const token = signToken(keys.signing, "app", "web-1", NOW, NOW);
    const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.";
    let tried = 0;
    // One check for all: only tokens that verified are remembered.
    const tokens = check();
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) {
        if (c === token[i]) continue;
        const changed = token.slice(0, i) + c + token.slice(i + 1);
        const verdict = tokens.check(changed, NOW);
        tried++;
        assert.notEqual(verdict.kind, "valid", `character ${i} → ${c}: ${changed}`);
      }
    }
    assert.ok(tried > 3000);
    for (let length = 0; length < token.length; length++) {
      assert.notEqual(check().check(token.slice(0, length), NOW).kind, "valid", `cut at ${length}`);
    }
  });

  it("carry HMAC-SHA256 (node:crypto's) over the server's context block and the text before the tag", () => {
    const token = signToken(keys.signing, "app", "web-2", NOW, NOW + 5);
    const signed = token.slice(0, token.lastIndexOf("."));
    const context = Buffer.alloc(64);
    createHash("sha256").update("sticky-gateway token\napp\nweb-2").digest().copy(context);
    const expected = createHmac("sha256", SECRET_A).update(context).update(signed).digest()
      .subarray(0, 16).toString("base64url");
    assert.equal(token.slice(token.lastIndexOf(".") + 1), expected);
    assert.equal(readToken(token)?.seenS, NOW + 5);
    // Short times (a clock near the epoch) read back too.
    assert.equal(readToken(signToken(keys.signing, "app", "web-2", 1000, 1000))?.issuedS, 1000);
  });

  it("of another upstream, or signed with a key not in the ring, are forged or unknown_key", () => {
    const other = signToken(keys.signing, "api", "web-1", NOW, NOW);
    assert.equal(check().check(other, NOW).kind, "forged");
    const stranger = ring(`k1:${"x".repeat(40)}`);
    assert.equal(
      check().check(signToken(stranger.signing, "app", "web-1", NOW, NOW), NOW).kind,
      "forged",
    );
    const unknown = ring(`k9:${SECRET_A}`);
    assert.equal(
      check().check(signToken(unknown.signing, "app", "web-1", NOW, NOW), NOW).kind,
      "unknown_key",
    );
    assert.equal(check().check("422db4e6da7b4bba46bd476612df0469", NOW).kind, "invalid");
  });

  it("under an older key stay valid and are marked for re-issue (rotation)", () => {
    const old = signToken(ring(`k1:${SECRET_A}`).signing, "app", "web-1", NOW - 50, NOW - 50);
    const rotated = new TokenCheck(
      "app",
      SERVERS,
      ring(`k2:${SECRET_B}\nk1:${SECRET_A}`),
      LIFETIMES,
    );
    const verdict = rotated.check(old, NOW);
    assert.equal(verdict.kind, "valid");
    assert.equal(verdict.kind === "valid" && verdict.rotated, true);
    assert.equal(verdict.kind === "valid" && verdict.issuedS, NOW - 50, "the issue time is kept");
  });

  it("expire after max_idle and max_life (plus clock_skew); refresh after a quarter of max_idle", () => {
    const lifetimes = { maxIdleS: 400, maxLifeS: 3600, clockSkewS: 30 };
    const tokens = new TokenCheck("app", SERVERS, keys, lifetimes);
    const token = signToken(keys.signing, "app", "web-1", NOW, NOW);
    const at = (s: number) => tokens.check(token, NOW + s);
    const early = at(99);
    assert.equal(early.kind === "valid" && early.refresh, false);
    const later = at(100);
    assert.equal(later.kind === "valid" && later.refresh, true, "a quarter of 400 s");
    assert.equal(at(430).kind, "valid", "within the skew");
    assert.equal(at(431).kind, "expired_idle");
    const fresh = signToken(keys.signing, "app", "web-1", NOW, NOW + 3600);
    assert.equal(tokens.check(fresh, NOW + 3630).kind, "valid");
    assert.equal(tokens.check(fresh, NOW + 3631).kind, "expired_life");
  });
});

describe("rendezvous hashing", () => {
  const servers = Array.from({ length: 10 }, (_, i) => ({ id: `web-${i}`, weight: 1 }));
  const ids = Array.from({ length: 100_000 }, (_, i) => `session-${i}-${(i * 2654435761) % 997}`);

  it("spreads 100,000 ids evenly and moves only the removed server's ids (≈ 10%)", () => {
    const before = ids.map((id) => rendezvousPick(id, servers, () => true)!);
    const counts = new Map<string, number>();
    for (const server of before) counts.set(server.id, (counts.get(server.id) ?? 0) + 1);
    for (const [id, count] of counts) assert.ok(Math.abs(count - 10_000) < 600, `${id}: ${count}`);
    const gone = servers[3];
    const after = ids.map((id) => rendezvousPick(id, servers, (s) => s !== gone)!);
    let moved = 0;
    for (let i = 0; i < ids.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        assert.equal(before[i], gone, `${ids[i]} moved though its server stayed`);
      }
    }
    assert.ok(Math.abs(moved / ids.length - 0.1) < 0.006, `${moved} moved`);
  });

  it("gives each server its weight's share", () => {
    const weighted = [{ id: "a", weight: 3 }, { id: "b", weight: 1 }];
    let a = 0;
    for (const id of ids.slice(0, 40_000)) {
      if (rendezvousPick(id, weighted, () => true)!.id === "a") a++;
    }
    assert.ok(Math.abs(a / 40_000 - 0.75) < 0.01, `a got ${a / 400}%`);
  });
});
