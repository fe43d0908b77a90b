/**
 * Prometheus metrics (issue 9 point 3): counting by upstream, server, status class, sticky
 * outcome, catalogue code and health result; histograms; gauges; the sum over threads (a real
 * Worker writing to its region of the shared memory); the exposition's text, checked by
 * `promtool check metrics` (Debian's prometheus package, installed when missing).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/mod.ts";
import type { RequestRecord } from "../../src/proxy/request_record.ts";
import {
  BUCKETS_MS,
  escapeLabel,
  healthResultOf,
  Metrics,
  METRICS_CONTENT_TYPE,
  renderMetrics,
  type ServerGauges,
} from "../../src/ops/metrics/mod.ts";
import { checkMetrics } from "../support/ops_tools.ts";

const CONFIG = `
[upstreams.app]
servers = [
  { address = "127.0.0.1:9001", id = "web-1" },
  { address = "127.0.0.1:9002", id = "web-2" },
]

[upstreams.app.sticky]

[upstreams.api]
servers = ["127.0.0.1:9101"]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/api/"
upstream = "api"
`;

const BUILD = { version: "9.9.9", runtime: "test" };
const MEMORY = () => ({ rss: 50_000_000, heapUsed: 10_000_000, heapTotal: 20_000_000 });

function record(overrides: Partial<RequestRecord> = {}): RequestRecord {
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
    server: "web-1",
    upstreamStatus: 200,
    upstreamHeaderMs: 2,
    attempts: 1,
    sticky: "new",
    error: undefined,
    requestId: "r",
    userAgent: undefined,
    referer: undefined,
    ...overrides,
  };
}

/** The value of the sample with exactly this name and label set in an exposition. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const P = "sticky_gateway_";

describe("metrics: counting", () => {
  it("requests by upstream, server and status class; no route and no server have their own", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    metrics.recordRequest(record());
    metrics.recordRequest(record({ status: 204 }));
    metrics.recordRequest(record({ server: "web-2", status: 304 }));
    metrics.recordRequest(record({ server: undefined, status: 502, error: "no_server" }));
    metrics.recordRequest(record({ upstream: undefined, server: undefined, status: 404 }));
    metrics.recordRequest(record({ upstream: "api", server: "127.0.0.1:9101", status: 500 }));
    metrics.recordRequest(record({ status: 499 }));
    const text = renderMetrics({ metrics, build: BUILD, memory: MEMORY });
    const requests = (labels: string) => sample(text, `${P}requests_total{${labels}}`);
    assert.equal(requests('upstream="app",server="web-1",class="2xx"'), 2);
    assert.equal(requests('upstream="app",server="web-1",class="4xx"'), 1);
    assert.equal(requests('upstream="app",server="web-1",class="5xx"'), 0, "zero, present");
    assert.equal(requests('upstream="app",server="web-2",class="3xx"'), 1);
    assert.equal(requests('upstream="app",server="",class="5xx"'), 1);
    assert.equal(requests('upstream="app",server="",class="2xx"'), undefined, "only when not 0");
    assert.equal(requests('upstream="",server="",class="4xx"'), 1);
    assert.equal(requests('upstream="api",server="127.0.0.1:9101",class="5xx"'), 1);
    assert.equal(metrics.serverTotals("app", "web-1")?.requests, 3);
  });

  it("histograms per upstream: cumulative buckets (le in seconds), sum and count", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    for (const ms of [0.5, 1, 3, 3, 40, 40_000]) {
      metrics.recordRequest(record({ durationMs: ms, upstreamHeaderMs: ms / 2 }));
    }
    metrics.recordRequest(record({ server: "web-2", durationMs: 7, upstreamHeaderMs: undefined }));
    const text = renderMetrics({ metrics, build: BUILD, memory: MEMORY });
    const bucket = (le: string) =>
      sample(text, `${P}request_duration_seconds_bucket{upstream="app",le="${le}"}`);
    assert.equal(bucket("0.001"), 2, "le is inclusive: 1 ms is in the 1 ms bucket");
    assert.equal(bucket("0.0025"), 2);
    assert.equal(bucket("0.005"), 4);
    assert.equal(bucket("0.01"), 5, "web-2's request counts for the upstream");
    assert.equal(bucket("0.05"), 6);
    assert.equal(bucket("30"), 6);
    assert.equal(bucket("+Inf"), 7);
    assert.equal(sample(text, `${P}request_duration_seconds_count{upstream="app"}`), 7);
    const sum = sample(text, `${P}request_duration_seconds_sum{upstream="app"}`) ?? 0;
    assert.ok(Math.abs(sum - 40.0545) < 1e-9, String(sum));
    assert.equal(sample(text, `${P}upstream_header_duration_seconds_count{upstream="app"}`), 6);
    assert.equal(
      sample(text, `${P}upstream_header_duration_seconds_bucket{upstream="app",le="0.001"}`),
      2,
    );
    assert.equal(sample(text, `${P}request_duration_seconds_count{upstream="api"}`), 0);
    const les = [...text.matchAll(/request_duration_seconds_bucket\{upstream="app",le="([^"]+)"/g)]
      .map((m) => m[1]);
    assert.deepEqual(les, [...BUCKETS_MS.map((ms) => String(ms / 1000)), "+Inf"]);
    assert.deepEqual(les.slice(0, 3), ["0.001", "0.0025", "0.005"]);
    assert.equal(les[13], "30");
    const latency = metrics.serverTotals("app", "web-1")?.latency;
    assert.equal(latency?.boundsMs.at(-1), Infinity);
    assert.deepEqual(latency?.counts.slice(0, 3), [2, 2, 4]);
    assert.equal(latency?.counts.at(-1), 6);
  });

  it("sticky decisions by upstream and outcome; all outcomes of a sticky upstream, none otherwise", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    metrics.recordRequest(record({ sticky: "hit" }));
    metrics.recordRequest(record({ sticky: "hit", server: "web-2" }));
    metrics.recordRequest(record({ sticky: "repin" }));
    metrics.recordRequest(record({ sticky: "refused", server: undefined, status: 502 }));
    metrics.recordRequest(record({ upstream: "api", server: "127.0.0.1:9101", sticky: "none" }));
    metrics.recordRequest(record({ upstream: undefined, server: undefined, sticky: "none" }));
    const text = renderMetrics({ metrics, build: BUILD, memory: MEMORY });
    const sticky = (upstream: string, outcome: string) =>
      sample(text, `${P}sticky_decisions_total{upstream="${upstream}",outcome="${outcome}"}`);
    assert.equal(sticky("app", "hit"), 2);
    assert.equal(sticky("app", "repin"), 1);
    assert.equal(sticky("app", "refused"), 1);
    assert.equal(sticky("app", "new"), 0);
    assert.equal(sticky("app", "invalid"), 0);
    assert.equal(sticky("app", "none"), undefined);
    assert.equal(sticky("api", "none"), 1);
    assert.equal(sticky("api", "hit"), undefined);
    assert.doesNotMatch(text, /sticky_decisions_total\{upstream=""/, "no route: no decision");
    assert.deepEqual(metrics.serverTotals("app", "web-1")?.sticky, {
      none: 0,
      new: 0,
      hit: 1,
      repin: 1,
      invalid: 0,
      refused: 0,
      legacy: 0,
      route: 0,
      forged: 0,
      unknown_key: 0,
      rotated: 0,
      expired_idle: 0,
      expired_life: 0,
      header: 0,
    });
    assert.equal(metrics.serverTotals("app", "nope"), undefined);
  });

  it("upstream failures by server and code; health checks by result", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    metrics.upstreamFailure("app", "web-1", "connect_refused");
    metrics.upstreamFailure("app", "web-1", "connect_refused");
    metrics.upstreamFailure("app", "web-2", "bad_response");
    metrics.upstreamFailure("app", "web-9", "read_timeout");
    metrics.healthCheck("app", "web-1", "pass");
    metrics.healthCheck("app", "web-1", healthResultOf({ passed: false, status: 500 }));
    metrics.healthCheck(
      "app",
      "web-2",
      healthResultOf({ passed: false, status: 0, error: "timeout" }),
    );
    const text = renderMetrics({ metrics, build: BUILD, memory: MEMORY });
    const failures = (labels: string) => sample(text, `${P}upstream_failures_total{${labels}}`);
    assert.equal(failures('upstream="app",server="web-1",code="connect_refused"'), 2);
    assert.equal(failures('upstream="app",server="web-1",code="read_timeout"'), 0, "present");
    assert.equal(failures('upstream="app",server="web-2",code="bad_response"'), 1);
    assert.equal(failures('upstream="app",server="web-1",code="bad_response"'), undefined);
    assert.equal(failures('upstream="app",server="",code="read_timeout"'), 1, "unknown id");
    assert.equal(failures('upstream="app",server="web-1",code="no_route"'), undefined);
    const health = (labels: string) => sample(text, `${P}health_checks_total{${labels}}`);
    assert.equal(health('upstream="app",server="web-1",result="pass"'), 1);
    assert.equal(health('upstream="app",server="web-1",result="fail"'), 1);
    assert.equal(health('upstream="app",server="web-2",result="timeout"'), 1);
    assert.equal(health('upstream="app",server="web-2",result="error"'), undefined);
    assert.equal(healthResultOf({ passed: false, status: 0, error: "connect_refused" }), "error");
    assert.equal(healthResultOf({ passed: true, status: 503 }), "pass");
  });

  it("client connections and open WebSockets are gauges; ws-close counts nothing else", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    metrics.clientConnectionOpened();
    metrics.clientConnectionOpened();
    metrics.clientConnectionClosed();
    metrics.recordRequest(record({ kind: "ws-open", status: 101 }));
    metrics.recordRequest(record({ kind: "ws-open", status: 101 }));
    metrics.recordRequest(record({ kind: "ws-close", status: 101, durationMs: 60_000 }));
    metrics.accessLogDropped(3);
    const text = renderMetrics({ metrics, build: BUILD, memory: MEMORY });
    assert.equal(sample(text, `${P}client_connections`), 1);
    assert.equal(sample(text, `${P}websockets_open`), 1);
    assert.equal(sample(text, `${P}access_log_dropped_total`), 3);
    assert.equal(sample(text, `${P}requests_total{upstream="app",server="web-1",class="1xx"}`), 2);
    assert.equal(sample(text, `${P}request_duration_seconds_count{upstream="app"}`), 2);
  });

  it("server gauges (in flight, connections, one-hot state), memory and build info", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    const gauges: ServerGauges = {
      read: (upstream, server) =>
        server === "web-2"
          ? { inFlight: 3, connections: 5, state: "drain" }
          : upstream === "app"
          ? { inFlight: 0, connections: 1, state: "up" }
          : undefined,
    };
    const text = renderMetrics({ metrics, gauges, build: BUILD, memory: MEMORY });
    assert.equal(sample(text, `${P}in_flight_requests{upstream="app",server="web-2"}`), 3);
    assert.equal(sample(text, `${P}upstream_connections{upstream="app",server="web-2"}`), 5);
    const states = ["up", "down", "failed", "drain", "maint"].map((state) =>
      sample(text, `${P}server_state{upstream="app",server="web-2",state="${state}"}`)
    );
    assert.deepEqual(states, [0, 0, 0, 1, 0]);
    assert.equal(sample(text, `${P}server_state{upstream="app",server="web-1",state="up"}`), 1);
    assert.equal(
      sample(text, `${P}in_flight_requests{upstream="api",server="127.0.0.1:9101"}`),
      undefined,
    );
    assert.equal(sample(text, `${P}process_resident_memory_bytes`), 50_000_000);
    assert.equal(sample(text, `${P}process_heap_used_bytes`), 10_000_000);
    assert.equal(sample(text, `${P}build_info{version="9.9.9",runtime="test"}`), 1);
    const real = renderMetrics({ metrics, build: BUILD });
    assert.ok((sample(real, `${P}process_resident_memory_bytes`) ?? 0) > 1_000_000);
  });

  it("every family has HELP and TYPE before its samples; label values are escaped", () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    const text = renderMetrics({
      metrics,
      build: { version: 'a"b\\c\nd', runtime: "x" },
      memory: MEMORY,
    });
    assert.ok(text.endsWith("\n"));
    assert.ok(text.includes(`${P}build_info{version="a\\"b\\\\c\\nd",runtime="x"} 1`));
    assert.equal(escapeLabel("plain"), "plain");
    const declared = new Set<string>();
    for (const line of text.trimEnd().split("\n")) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (type !== null) declared.add(type[1]);
      if (line.startsWith("#")) continue;
      const name = /^([a-z_]+)/.exec(line)?.[1] ?? "";
      const family = name.replace(/_(bucket|sum|count)$/, "");
      assert.ok(declared.has(name) || declared.has(family), `declared before use: ${line}`);
      assert.ok(name.startsWith(P), name);
    }
    assert.equal(METRICS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  });

  it("passes promtool check metrics, with and without data", async () => {
    const metrics = Metrics.create(parseConfig(CONFIG), 1);
    const empty = await checkMetrics(renderMetrics({ metrics, build: BUILD }));
    assert.ok(empty.ok, empty.output);
    metrics.recordRequest(record());
    metrics.recordRequest(record({ upstream: undefined, server: undefined, status: 404 }));
    metrics.upstreamFailure("app", "web-1", "bad_response");
    const gauges: ServerGauges = { read: () => ({ inFlight: 1, connections: 2, state: "failed" }) };
    const full = await checkMetrics(renderMetrics({ metrics, gauges, build: BUILD }));
    assert.ok(full.ok, full.output);
    assert.equal(full.output, "", "no lint complaint either");
    // And promtool does fail on a broken exposition (the check can fail).
    const broken = await checkMetrics('# TYPE x counter\nx{a="b} 1\n');
    assert.equal(broken.ok, false);
  });
});

describe("metrics: threads", () => {
  it("attach() on the same buffers: each thread its region, the render sums them", () => {
    const config = parseConfig(CONFIG);
    const main = Metrics.create(config, 3);
    const one = Metrics.attach(parseConfig(CONFIG), main.buffers, 1);
    const two = Metrics.attach(parseConfig(CONFIG), main.buffers, 2);
    for (const m of [main, one, two, two]) m.recordRequest(record());
    one.clientConnectionOpened();
    two.clientConnectionOpened();
    const text = renderMetrics({ metrics: main, build: BUILD, memory: MEMORY });
    assert.equal(sample(text, `${P}requests_total{upstream="app",server="web-1",class="2xx"}`), 4);
    assert.equal(sample(text, `${P}client_connections`), 2);
    assert.equal(
      renderMetrics({ metrics: two, build: BUILD, memory: MEMORY }),
      text,
      "any thread renders the same",
    );
  });

  it("refuses buffers made for another config, and a thread index out of range", () => {
    const main = Metrics.create(parseConfig(CONFIG), 2);
    const other = parseConfig(CONFIG.replace('id = "web-2"', 'id = "web-3"'));
    assert.throws(() => Metrics.attach(other, main.buffers, 1), /another config/);
    assert.throws(() => Metrics.attach(parseConfig(CONFIG), main.buffers, 2), RangeError);
  });

  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("a real Worker thread's counts show in the main thread's render", async () => {
    const dir = mkdtempSync(join(tmpdir(), "metrics-worker-"));
    dirs.push(dir);
    const script = join(dir, "worker.ts");
    const configUrl = new URL("../../src/config/mod.ts", import.meta.url).href;
    const metricsUrl = new URL("../../src/ops/metrics/mod.ts", import.meta.url).href;
    writeFileSync(
      script,
      `import { parseConfig } from ${JSON.stringify(configUrl)};
import { Metrics } from ${JSON.stringify(metricsUrl)};
self.onmessage = (event) => {
  const metrics = Metrics.attach(parseConfig(event.data.config), event.data.buffers, 1);
  for (let i = 0; i < 1000; i++) {
    metrics.recordRequest({ ...event.data.record, durationMs: i % 50 });
  }
  metrics.upstreamFailure("app", "web-2", "connect_timeout");
  self.postMessage("done");
};
`,
    );
    const config = parseConfig(CONFIG);
    const main = Metrics.create(config, 2);
    main.recordRequest(record());
    const worker = new Worker(new URL(`file://${script}`).href, { type: "module" });
    try {
      const done = new Promise((resolve, reject) => {
        worker.onmessage = resolve;
        worker.onerror = (event) => reject(new Error(String(event.message)));
      });
      worker.postMessage({ config: CONFIG, buffers: main.buffers, record: record() });
      await done;
    } finally {
      worker.terminate();
    }
    const text = renderMetrics({ metrics: main, build: BUILD, memory: MEMORY });
    assert.equal(
      sample(text, `${P}requests_total{upstream="app",server="web-1",class="2xx"}`),
      1001,
    );
    assert.equal(sample(text, `${P}request_duration_seconds_count{upstream="app"}`), 1001);
    assert.equal(
      sample(
        text,
        `${P}upstream_failures_total{upstream="app",server="web-2",code="connect_timeout"}`,
      ),
      1,
    );
  });
});

describe("metrics: cost", () => {
  it("recordRequest does not grow with the number of servers", () => {
    const servers = (n: number) =>
      Array.from({ length: n }, (_, i) => `"127.0.0.1:${10_000 + i}"`).join(", ");
    const time = (n: number) => {
      const config = parseConfig(`[upstreams.app]\nservers = [${servers(n)}]\n`);
      const metrics = Metrics.create(config, 1);
      const records = Array.from(
        { length: 64 },
        (_, i) => record({ server: `127.0.0.1:${10_000 + ((i * 7919) % n)}`, sticky: "none" }),
      );
      let best = Infinity;
      for (let round = 0; round < 5; round++) {
        const started = performance.now();
        for (let i = 0; i < 100_000; i++) metrics.recordRequest(records[i & 63]);
        best = Math.min(best, performance.now() - started);
      }
      return best;
    };
    time(2); // warm up
    const small = time(2);
    const large = time(2000);
    assert.ok(
      large < small * 4 + 5,
      `2 servers: ${small.toFixed(1)} ms, 2000: ${large.toFixed(1)} ms`,
    );
    assert.ok(small / 100_000 < 0.01, `${((small / 100_000) * 1e6).toFixed(0)} ns per record`);
  });
});
