/**
 * config.example.toml tells the truth: the keys its comments call defaults are the loader's
 * defaults, and the ones it calls beyond the defaults change something.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseConfig } from "../../src/config/mod.ts";
import { renderSetCookie } from "../../src/cookie/set_cookie.ts";
import type { GatewayConfig } from "../../src/config/mod.ts";

const FILE = new URL("../../config.example.toml", import.meta.url);
const TEXT = readFileSync(FILE, "utf8");
const NAME = "config.example.toml";

/**
 * The example without the key lines of each block that a comment line containing `marker`
 * opens (a block ends at the next blank line).
 */
function withoutBlocks(text: string, marker: string): { text: string; removed: string[] } {
  const kept: string[] = [];
  const removed: string[] = [];
  let inBlock = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("#") && line.includes(marker)) inBlock = true;
    else if (line.trim() === "") inBlock = false;
    else if (inBlock && !line.startsWith("#")) {
      removed.push(line.split("=")[0].trim());
      continue;
    }
    kept.push(line);
  }
  return { text: kept.join("\n"), removed };
}

/** Every server's Set-Cookie at a fixed clock, by upstream. */
function setCookies(config: GatewayConfig): string[] {
  return [...config.upstreams.values()].flatMap((upstream) =>
    upstream.servers.map((server) => renderSetCookie(server.setCookie!, 0))
  );
}

describe("config.example.toml", () => {
  const example = parseConfig(TEXT, NAME);

  it("is a valid config", () => {
    assert.equal(example.upstreams.get("app")?.servers.length, 3);
  });

  it('the keys under "defaults, spelled out" are the defaults: removing them changes nothing', () => {
    const { text, removed } = withoutBlocks(TEXT, "defaults, spelled out");
    assert.deepEqual(removed, [
      "connect_timeout",
      "read_timeout",
      "grace_period",
      "idle_timeout",
      "client_max_body_size",
      "client_max_header_size",
      "client_header_timeout",
      "keepalive_timeout",
      "max_connections",
      "name",
      "hash",
      "path",
    ]);
    assert.deepEqual(parseConfig(text, NAME), example);
  });

  it('the keys under "Beyond the defaults" are not defaults: removing them changes the cookie', () => {
    const { text, removed } = withoutBlocks(TEXT, "Beyond the defaults");
    assert.deepEqual(removed, ["httponly", "samesite"]);
    const plain = parseConfig(text, NAME);
    for (const [i, header] of setCookies(plain).entries()) {
      assert.equal(`${header}; HttpOnly; SameSite=Lax`, setCookies(example)[i]);
    }
  });

  it("listen is the default, and the table server's max_fails and fail_timeout are too", () => {
    const minimal = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`);
    assert.deepEqual(example.server.listen, minimal.server.listen);
    const [plain, , table] = example.upstreams.get("app")!.servers;
    assert.equal(table.maxFails, plain.maxFails);
    assert.equal(table.failTimeoutMs, plain.failTimeoutMs);
  });
});
