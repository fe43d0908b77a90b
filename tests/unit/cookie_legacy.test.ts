/**
 * The 1.2.x module's values (read from nginx-sticky-module-ng-1.2.6's source: digests of the
 * binary struct sockaddr), against the vector file's `legacy_1_2_6_sockaddr_md5_read_only`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseAddress, resolveAddress, type ResolvedAddress } from "../../src/config/address.ts";
import { legacyValues, sockaddrBytes } from "../../src/cookie/legacy.ts";

const VECTORS = JSON.parse(
  readFileSync(new URL("../fixtures/nginx-sticky-vectors.json", import.meta.url), "utf8"),
).legacy_1_2_6_sockaddr_md5_read_only as Record<string, string>;

function resolved(text: string): ResolvedAddress {
  const address = parseAddress(text, 80);
  assert.ok(typeof address !== "string", String(address));
  const list = resolveAddress(address, new Map());
  assert.ok(typeof list !== "string", String(list));
  return list[0];
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("legacy 1.2.x values: the binary struct sockaddr", () => {
  it("IPv4 is 16 bytes: 02 00 | port BE | address | 8 zero bytes", () => {
    assert.equal(
      hex(sockaddrBytes(resolved("127.0.0.1:9001"))),
      "02002329" + "7f000001" + "0000000000000000",
    );
  });

  it("IPv6 is 28 bytes: 0a 00 | port BE | flowinfo 0 | address | scope_id 0", () => {
    assert.equal(
      hex(sockaddrBytes(resolved("[2001:db8::1]:443"))),
      "0a0001bb" + "00000000" + "20010db8000000000000000000000001" + "00000000",
    );
  });

  for (const [server, md5] of Object.entries(VECTORS)) {
    it(`md5 for ${server} is the vector ${md5}`, () => {
      const values = legacyValues(resolved(server));
      assert.equal(values[0], md5);
    });
  }

  it("sha1, the text= forms, and with a key the HMACs, all over the same bytes", () => {
    const address = resolved("127.0.0.1:9001");
    const bytes = sockaddrBytes(address);
    assert.deepEqual(legacyValues(address, "secret"), [
      "2b46daf0ba503cbe30c3b46dfad73e0a",
      createHash("sha1").update(bytes).digest("hex"),
      "127.0.0.1:9001",
      createHash("md5").update("127.0.0.1:9001").digest("hex"),
      createHash("sha1").update("127.0.0.1:9001").digest("hex"),
      createHmac("md5", "secret").update(bytes).digest("hex"),
      createHmac("sha1", "secret").update(bytes).digest("hex"),
    ]);
    assert.equal(legacyValues(address).length, 5, "no HMAC without a key");
  });

  it("the text form is nginx's printable address, not the text as written", () => {
    assert.equal(legacyValues(resolved("127.000.000.001:09001"))[2], "127.0.0.1:9001");
    assert.equal(legacyValues(resolved("[::1]:9001"))[2], "[::1]:9001");
  });
});
