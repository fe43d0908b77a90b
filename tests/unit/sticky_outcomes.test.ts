/** Issue 11's outcomes `legacy` and `route` have their own metric slots, after the older ones. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/mod.ts";
import type { RequestRecord } from "../../src/proxy/request_record.ts";
import { Metrics, renderMetrics } from "../../src/ops/metrics/mod.ts";
import { STICKY_OUTCOMES } from "../../src/ops/metrics/layout.ts";

const CONFIG = `
[upstreams.app]
servers = [
  { address = "127.0.0.1:9001", id = "web-1", route = "node1" },
  { address = "127.0.0.1:9002", id = "web-2", route = "node2" },
]
[upstreams.app.sticky]
accept_legacy = true
route_from = ["cookie:JSESSIONID"]
`;

function record(sticky: RequestRecord["sticky"], server: string): RequestRecord {
  return {
    kind: "http",
    startMs: Date.now(),
    clientAddress: "127.0.0.1",
    method: "GET",
    target: "/",
    protocol: "HTTP/1.1",
    status: 200,
    bytesIn: 0,
    bytesOut: 10,
    durationMs: 3,
    upstream: "app",
    server,
    upstreamStatus: 200,
    upstreamHeaderMs: 2,
    attempts: 1,
    sticky,
    error: undefined,
    requestId: "r",
    userAgent: undefined,
    referer: undefined,
  };
}

describe("sticky outcomes legacy and route", () => {
  it("come after the older outcomes (their slots are unchanged)", () => {
    assert.deepEqual(STICKY_OUTCOMES, [
      "none",
      "new",
      "hit",
      "repin",
      "invalid",
      "refused",
      "legacy",
      "route",
      // Issue 12, appended: the slots before them keep their places.
      "forged",
      "unknown_key",
      "rotated",
      "expired_idle",
      "expired_life",
      "header",
    ]);
  });

  it("are counted per server and exposed as sticky_decisions_total outcomes", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    metrics.recordRequest(record("legacy", "web-1"));
    metrics.recordRequest(record("route", "web-2"));
    metrics.recordRequest(record("route", "web-2"));
    const text = renderMetrics({
      metrics,
      build: { version: "0", runtime: "test" },
      memory: () => ({ rss: 1, heapUsed: 1, heapTotal: 1 }),
    });
    const line = (outcome: string) =>
      text.split("\n").find((l) =>
        l.startsWith(`sticky_gateway_sticky_decisions_total{upstream="app",outcome="${outcome}"} `)
      );
    assert.match(line("legacy") ?? "", / 1$/);
    assert.match(line("route") ?? "", / 2$/);
    assert.equal(metrics.serverTotals("app", "web-2")?.sticky.route, 2);
    assert.equal(metrics.serverTotals("app", "web-1")?.sticky.legacy, 1);
  });
});
