/** Addresses as nginx resolves and prints them (ngx_inet_addr, ngx_inet6_ntop, getaddrinfo order). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  formatIpv6,
  parseAddress,
  parseHosts,
  parseIpv4,
  parseIpv6,
  resolveAddress,
} from "../../src/config/address.ts";

describe("IP literals", () => {
  it("IPv4: four decimal octets, leading zeros allowed, nothing else", () => {
    assert.deepEqual([...parseIpv4("127.000.000.001")!], [127, 0, 0, 1]);
    for (const bad of ["127.1", "256.0.0.1", "1.2.3.4.5", "a.b.c.d", "1.2.3."]) {
      assert.equal(parseIpv4(bad), undefined, bad);
    }
  });

  it("IPv6 printed as ngx_inet6_ntop prints it", () => {
    const cases: [string, string][] = [
      ["::1", "::1"],
      ["2001:0DB8:0:0:0:0:0:1", "2001:db8::1"],
      ["::ffff:127.0.0.1", "::ffff:127.0.0.1"],
      ["::127.0.0.1", "::127.0.0.1"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"], // the longest run
      ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"], // the first of two equal runs
      ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"], // one zero group is not compressed
      ["1::", "1::"],
      ["::", "::"],
      ["fe80::1:0:0:1", "fe80::1:0:0:1"],
    ];
    for (const [input, printed] of cases) {
      assert.equal(formatIpv6(parseIpv6(input)!), printed, input);
    }
    for (const bad of [":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "1:2:3:4:5:6:7", "::g"]) {
      assert.equal(parseIpv6(bad), undefined, bad);
    }
  });
});

describe("resolveAddress: what nginx resolved at start", () => {
  const hosts = parseHosts(
    "127.0.0.1 localhost\n::1 localhost ip6-localhost # comment\n10.0.0.5 Backend.Internal\n10.0.0.6 backend.internal\n",
  );
  const resolve = (text: string) => resolveAddress(parseAddress(text, 80) as never, hosts);

  it("a literal is itself, printed the nginx way (port as a number)", () => {
    assert.deepEqual(
      (resolve("127.000.000.001:019102") as { printable: string }[]).map((a) => a.printable),
      ["127.0.0.1:19102"],
    );
    assert.deepEqual(
      (resolve("[0:0::1]:9001") as { printable: string }[]).map((a) => a.printable),
      ["[::1]:9001"],
    );
  });

  it("a name: the hosts file's addresses, IPv4 first, names case-insensitive, port 80 by default", () => {
    assert.deepEqual(
      (resolve("LOCALHOST") as { printable: string }[]).map((a) => a.printable),
      ["127.0.0.1:80", "[::1]:80"],
    );
    assert.deepEqual(
      (resolve("backend.internal:8080") as { printable: string }[]).map((a) => a.printable),
      ["10.0.0.5:8080", "10.0.0.6:8080"],
    );
  });

  it("a name the hosts file lacks is a message, not a guess", () => {
    assert.equal(
      resolve("db.example:5432"),
      `"db.example" is not an IP address and not in the hosts file`,
    );
  });
});
