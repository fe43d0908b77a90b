/**
 * Large bodies stream through the gateway both ways (default upstream client): 64 MiB up and
 * 64 MiB down, compared by sha256, and each proven to stream (the first bytes cross while the
 * sender still holds the rest back).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startGateway, stopAllGateways } from "../support/gateway.ts";
import { md5, sha256 } from "../support/http.ts";
import { streamedDownload, streamedUpload } from "../support/streams.ts";
import {
  closeAllUpstreams,
  type NamedUpstream,
  PATTERN,
  startNamedUpstream,
} from "../support/upstreams.ts";

describe("streaming bodies", () => {
  let U: NamedUpstream;
  let url = "";
  before(async () => {
    U = await startNamedUpstream("U");
    url = (await startGateway(`
[upstreams.app]
servers = ["${U.address}"]
[upstreams.app.sticky]
`)).url;
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("64 MiB download: streamed, sha256 intact", async () => {
    const result = await streamedDownload(url, U, 64, `route=${md5(U.address)}`);
    assert.equal(result.bytes, 64 << 20);
    assert.equal(result.sha256, result.expectedSha256);
  });

  it("64 MiB chunked upload: streamed (the upstream sees bytes before the client has sent them all), sha256 intact", async () => {
    const result = await streamedUpload(url, U, 64, `route=${md5(U.address)}`);
    assert.equal(result.bytes, 64 << 20);
    assert.equal(result.sha256, result.expectedSha256);
  });

  it("an upload with Content-Length arrives whole, with its length", async () => {
    const body = Buffer.concat([PATTERN, PATTERN.subarray(0, 12345)]);
    const response = await fetch(`${url}/upload`, { method: "POST", body });
    assert.equal(response.status, 200);
    const seen = await response.json() as { bytes: number; sha256: string };
    assert.equal(seen.bytes, body.length);
    assert.equal(seen.sha256, sha256(body));
    const received = U.requests[U.requests.length - 1];
    const length = received.headers.filter(([n]) => n.toLowerCase() === "content-length").map((
      [, v],
    ) => v);
    assert.deepEqual(length, [String(body.length)], "Content-Length passes to the upstream");
  });
});
