/**
 * DNS discovery in the operations surfaces: `/readyz` names an upstream of `dns` entries without
 * an address and why (the admin view over the config, the shared state and discovery's figures),
 * and `/metrics` renders discovery's counters and gauges.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/mod.ts";
import { SharedState } from "../../src/state/mod.ts";
import { createAdminHandler, createGatewayView } from "../../src/ops/admin/mod.ts";
import { Metrics } from "../../src/ops/metrics/metrics.ts";
import { renderMetrics } from "../../src/ops/metrics/render.ts";
import type { DiscoveryFigure } from "../../src/discovery/discovery.ts";
import { parseAddress } from "../../src/config/address.ts";

const TEXT = `[upstreams.web]
servers = ["127.0.0.1:9001"]

[upstreams.api]
servers = [{ dns = "api.internal:8080" }]

[[routes]]
path = "/api"
upstream = "api"

[[routes]]
path = "/"
upstream = "web"
`;

const FIGURES: DiscoveryFigure[] = [{
  query: "A api.internal",
  upstreams: ["api"],
  addresses: 0,
  resolutions: 0,
  failures: 3,
  leftOut: 0,
  resolved: false,
  error: "A api.internal: ETIMEOUT",
}];

describe("DNS discovery in /readyz and /metrics", () => {
  it("/readyz: 503 naming the upstream whose name has no address, and why; 200 once it has one", async () => {
    let config = parseConfig(TEXT);
    let state = SharedState.create(config);
    const view = createGatewayView({
      config: () => config,
      state: () => state,
      metricsText: () => "",
      discovery: () => FIGURES,
    });
    const listen = parseAddress("127.0.0.1:9901");
    if (typeof listen === "string") assert.fail(listen);
    const handle = createAdminHandler(view, { listen });
    const ask = async () => {
      const response = await handle(new Request("http://127.0.0.1:9901/readyz"));
      // `pid` names the process (a restart shares the port): not this test's subject.
      const { pid: _, ...body } = await response.json();
      return [response.status, body];
    };
    assert.deepEqual(await ask(), [503, {
      status: "not ready",
      upstreams: {
        api: "no server: DNS gave no address for A api.internal (A api.internal: ETIMEOUT)",
      },
    }]);
    config = parseConfig(TEXT, "gw.toml", new Map([["A api.internal", [{ ip: "10.0.0.1" }]]]));
    state = SharedState.create(config);
    assert.deepEqual(await ask(), [200, { status: "ready" }]);
  });

  it("/metrics: resolutions by result, addresses and left-out addresses per name", () => {
    const config = parseConfig(TEXT);
    const text = renderMetrics({
      metrics: Metrics.create(config, 1),
      build: { version: "0", runtime: "deno" },
      discovery: [{ ...FIGURES[0], resolutions: 7, addresses: 2, leftOut: 5 }],
    });
    for (
      const line of [
        'sticky_gateway_dns_resolutions_total{type="A",name="api.internal",result="ok"} 7',
        'sticky_gateway_dns_resolutions_total{type="A",name="api.internal",result="failed"} 3',
        'sticky_gateway_dns_addresses{type="A",name="api.internal"} 2',
        'sticky_gateway_dns_servers_left_out{type="A",name="api.internal"} 5',
      ]
    ) assert.ok(text.split("\n").includes(line), line);
    const without = renderMetrics({
      metrics: Metrics.create(config, 1),
      build: { version: "0", runtime: "deno" },
    });
    assert.ok(!without.includes("dns_"));
  });
});
