/**
 * `[server]` idle_timeout, client_max_body_size and client_max_header_size: nginx size syntax,
 * defaults, ranges and messages; and the guards of src/proxy/limits.ts on plain Web streams.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import { formatSize, parseSize } from "../../src/config/size.ts";
import {
  clientFailure,
  guardedRequestBody,
  guardRequestBody,
  guardResponseBody,
  refuseRequest,
  requestHeadSize,
} from "../../src/proxy/limits.ts";
import { bunParserHeadLimit } from "../../src/runtime/bun/limits.ts";

const UPSTREAM = `[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`;

function server(lines: string) {
  return parseConfig(`[server]\n${lines}\n${UPSTREAM}`).server;
}

function problems(lines: string): { path: string; message: string }[] {
  try {
    parseConfig(`[server]\n${lines}\n${UPSTREAM}`, "gw.toml");
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  assert.fail(`accepted: ${lines}`);
}

describe("nginx size syntax", () => {
  it("parses bytes and k, m, g in either case (powers of 1024)", () => {
    assert.equal(parseSize("0"), 0);
    assert.equal(parseSize("512"), 512);
    assert.equal(parseSize("64k"), 65_536);
    assert.equal(parseSize("32K"), 32_768);
    assert.equal(parseSize("100m"), 104_857_600);
    assert.equal(parseSize("1G"), 1_073_741_824);
  });

  it("refuses anything else", () => {
    for (const text of ["", "1.5m", "10 m", "m", "1mb", "1t", "-1", "1k1", " 1"]) {
      assert.equal(parseSize(text), null, text);
    }
  });

  it("formats with the largest unit that divides", () => {
    assert.equal(formatSize(104_857_600), "100m");
    assert.equal(formatSize(32_768), "32k");
    assert.equal(formatSize(1_073_741_824), "1g");
    assert.equal(formatSize(1536), "1536");
    assert.equal(formatSize(0), "0");
  });
});

describe("[server] limits in the config", () => {
  it("defaults: idle_timeout 5m, client_max_body_size 100m, client_max_header_size 32k", () => {
    const s = server("");
    assert.equal(s.idleTimeoutMs, 300_000);
    assert.equal(s.clientMaxBodySize, 100 * 1024 * 1024);
    assert.equal(s.clientMaxHeaderSize, 32 * 1024);
  });

  it("reads each in nginx syntax, TOML integers as seconds / bytes, 0 as no limit", () => {
    const s = server(
      `idle_timeout = "90s"\nclient_max_body_size = "1g"\nclient_max_header_size = "8k"`,
    );
    assert.equal(s.idleTimeoutMs, 90_000);
    assert.equal(s.clientMaxBodySize, 1024 ** 3);
    assert.equal(s.clientMaxHeaderSize, 8192);
    const n = server(`idle_timeout = 0\nclient_max_body_size = 0\nclient_max_header_size = 2048`);
    assert.equal(n.idleTimeoutMs, 0);
    assert.equal(n.clientMaxBodySize, 0);
    assert.equal(n.clientMaxHeaderSize, 2048);
    assert.equal(server(`idle_timeout = "1500ms"`).idleTimeoutMs, 1500);
    assert.equal(server(`client_max_body_size = 12345`).clientMaxBodySize, 12345);
  });

  it("names the key and the syntax when a value is not a size or a duration", () => {
    assert.deepEqual(problems(`client_max_body_size = "1.5m"`), [{
      path: "server.client_max_body_size",
      message:
        `"1.5m" is not a size; use nginx size syntax such as "512k", "100m", "1g" or a number of bytes`,
    }]);
    assert.deepEqual(problems(`client_max_header_size = true`), [{
      path: "server.client_max_header_size",
      message:
        `true is not a size; use nginx size syntax such as "512k", "100m", "1g" or a number of bytes`,
    }]);
    const [idle] = problems(`idle_timeout = "soon"`);
    assert.equal(idle.path, "server.idle_timeout");
    assert.match(idle.message, /^"soon" is not a duration/);
  });

  it("says the allowed range: the header limit is 1k to 1m and has no 0", () => {
    assert.deepEqual(problems(`client_max_header_size = 0`), [{
      path: "server.client_max_header_size",
      message: "0 is out of range; allowed: 1k to 1m",
    }]);
    assert.deepEqual(problems(`client_max_header_size = "2m"`), [{
      path: "server.client_max_header_size",
      message: `"2m" is out of range; allowed: 1k to 1m`,
    }]);
    assert.deepEqual(problems(`client_max_body_size = "2048g"`), [{
      path: "server.client_max_body_size",
      message: `"2048g" is out of range; allowed: 1 to 1024g, or 0 for no limit`,
    }]);
  });

  it("the keys are known (no unknown-key problem) and listed for typos", () => {
    const [typo] = problems(`idle_timout = "1m"`);
    assert.equal(typo.path, "server.idle_timout");
    assert.match(typo.message, /idle_timeout, client_max_body_size, client_max_header_size/);
  });
});

describe("Bun's head limit from the config", () => {
  it("the parser's head limit: twice client_max_header_size, at least 64 KiB", () => {
    assert.equal(bunParserHeadLimit(32 * 1024), 64 * 1024);
    assert.equal(bunParserHeadLimit(1024), 64 * 1024);
    assert.equal(bunParserHeadLimit(100 * 1024), 200 * 1024);
  });
});

function request(init: { method?: string; headers?: HeadersInit; body?: BodyInit }): Request {
  return new Request("http://gateway.test/path?q=1", {
    ...init,
    ...(init.body === undefined ? {} : { duplex: "half" }),
  } as RequestInit);
}

function streamOf(pieces: Uint8Array[], holdAfter = Infinity): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(controller) {
      if (i >= holdAfter) return new Promise(() => {}); // never sends more
      if (i === pieces.length) return controller.close();
      controller.enqueue(pieces[i++]);
    },
  }, { highWaterMark: 0 });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number> {
  let total = 0;
  for await (const chunk of stream) total += chunk.length;
  return total;
}

describe("the request checks", () => {
  it("measures the head as request line plus header lines", () => {
    const headers: [string, string][] = [["host", "a.test"], ["x-one", "12345"]];
    // "GET /p HTTP/1.1\r\n" (17) + "host: a.test\r\n" (14) + "x-one: 12345\r\n" (14) + "\r\n" (2)
    assert.equal(requestHeadSize("GET", "/p", headers), 47);
  });

  it("refuses a big head with headers_too_large, a big declared body with body_too_large", () => {
    const settings = server(`client_max_body_size = "1k"\nclient_max_header_size = "1k"`);
    assert.equal(
      refuseRequest(request({}), "/p", [["x-big", "a".repeat(1100)]], settings),
      "headers_too_large",
    );
    assert.equal(
      refuseRequest(request({}), "/p", [["x-big", "a".repeat(900)]], settings),
      undefined,
    );
    const big = request({
      method: "POST",
      headers: { "content-length": "1025" },
      body: "a".repeat(1025),
    });
    assert.equal(refuseRequest(big, "/p", [], settings), "body_too_large");
    const exact = request({
      method: "POST",
      headers: { "content-length": "1024" },
      body: "a".repeat(1024),
    });
    assert.equal(refuseRequest(exact, "/p", [], settings), undefined);
    const unlimited = server(`client_max_body_size = 0`);
    assert.equal(refuseRequest(big, "/p", [], unlimited), undefined);
  });

  it("guards a body only when a limit applies", () => {
    const withLength = () =>
      request({ method: "POST", headers: { "content-length": "3" }, body: "abc" });
    assert.equal(guardedRequestBody(withLength(), server(`idle_timeout = 0`)), undefined);
    assert.notEqual(guardedRequestBody(withLength(), server("")), undefined);
    const streamed = request({ method: "POST", body: streamOf([new Uint8Array(3)]) });
    assert.notEqual(guardedRequestBody(streamed, server(`idle_timeout = 0`)), undefined);
    assert.equal(
      guardedRequestBody(
        request({ method: "POST", body: streamOf([]) }),
        server(`idle_timeout = 0\nclient_max_body_size = 0`),
      ),
      undefined,
    );
    assert.equal(guardedRequestBody(request({}), server("")), undefined);
  });
});

describe("guardRequestBody", () => {
  it("passes a body within the limit whole", async () => {
    const guarded = guardRequestBody(streamOf([new Uint8Array(600), new Uint8Array(400)]), 1000, 0);
    assert.equal(await readAll(guarded.body), 1000);
    assert.equal(guarded.failure(), undefined);
  });

  it("cuts a body past the limit as body_too_large and cancels the client's body", async () => {
    let cancelled = false;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(600));
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    const guarded = guardRequestBody(source, 1000, 0);
    await assert.rejects(readAll(guarded.body));
    assert.equal(guarded.failure(), "body_too_large");
    assert.ok(cancelled);
  });

  it("leaves no timer behind for a body nobody reads", () => {
    // Were a timer pending, the test runner would report it (or wait for it).
    guardRequestBody(streamOf([new Uint8Array(10)]), 0, 60_000);
  });

  it("cuts a body whose client stays silent for idle_timeout as client_timeout", async () => {
    const guarded = guardRequestBody(streamOf([new Uint8Array(10)], 1), 0, 100);
    await assert.rejects(readAll(guarded.body));
    assert.equal(guarded.failure(), "client_timeout");
  });

  it("calls a body the runtime could not read bad_request", async () => {
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error("invalid chunk"));
      },
    });
    const guarded = guardRequestBody(broken, 0, 1000);
    await assert.rejects(readAll(guarded.body));
    assert.equal(guarded.failure(), "bad_request");
  });

  it("maps an upstream failure to the client's side when the client caused it", () => {
    const gone = new AbortController();
    gone.abort();
    const left = new Request("http://gateway.test/", { signal: gone.signal });
    assert.equal(clientFailure(left, undefined, "upstream_reset"), "client_closed");
    const here = new Request("http://gateway.test/");
    assert.equal(clientFailure(here, undefined, "upstream_reset"), undefined);
    const waiting = { body: streamOf([]), failure: () => undefined, waitingForClient: () => true };
    assert.equal(clientFailure(here, waiting, "read_timeout"), "client_timeout");
    const tooBig = { ...waiting, failure: () => "body_too_large" as const };
    assert.equal(clientFailure(here, tooBig, "upstream_reset"), "body_too_large");
  });
});

describe("guardResponseBody", () => {
  it("passes a moving stream to its end", async () => {
    const pieces = Array.from({ length: 5 }, () => new Uint8Array(10));
    const guarded = guardResponseBody(streamOf(pieces), 1000, () => assert.fail("idle"));
    assert.equal(await readAll(guarded), 50);
  });

  it("cuts a silent upstream stream after idle_timeout, cancelling the upstream body", async () => {
    let cancelled = false;
    let silent: string | undefined;
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(3));
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    const guarded = guardResponseBody(source, 100, (side) => silent = side);
    await assert.rejects(readAll(guarded));
    assert.equal(silent, "upstream");
    assert.ok(cancelled);
  });

  it("cuts a stream its client stopped reading after idle_timeout", async () => {
    let silent: string | undefined;
    const guarded = guardResponseBody(streamOf([new Uint8Array(3), new Uint8Array(3)]), 100, (
      side,
    ) => silent = side);
    const reader = guarded.getReader();
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(silent, "client");
    await assert.rejects(reader.read());
  });
});
