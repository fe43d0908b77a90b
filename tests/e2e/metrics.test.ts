/**
 * `/metrics` on the admin listener of the real gateway process (issue 9 point 3): the counts
 * match the requests sent (by server, status class, sticky outcome, failure code), gauges and
 * build info are there, `promtool check metrics` accepts the text, counters are the sum over
 * worker threads (`workers = 2`), and a real Prometheus server (Debian's `prometheus`) scrapes it
 * and answers a query for `sticky_gateway_requests_total` through its HTTP API.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  adminPortOf,
  GATEWAY_RUNTIME,
  ROOT,
  sleep,
  startGateway,
  stopAllGateways,
  withTimeout,
} from "../support/gateway.ts";
import { ask, header, md5, rawRequest } from "../support/http.ts";
import {
  closeAllUpstreams,
  closedPort,
  type NamedUpstream,
  startNamedUpstream,
} from "../support/upstreams.ts";
import { checkMetrics, prometheus } from "../support/ops_tools.ts";
import { startWsUpstreams, stopAllNodeUpstreams } from "../support/node_upstreams.ts";
import { connect } from "node:net";

let A: NamedUpstream;
let B: NamedUpstream;
let deadPort: number;
const dirs: string[] = [];
const children = new Set<ChildProcess>();

const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
}).version;

function config(adminPort: number, workers = 1): string {
  return `
[server]
workers = ${workers}

[admin]
listen = "127.0.0.1:${adminPort}"

[log]
access = "off"

[upstreams.app]
servers = [{ address = "${A.address}", id = "web-a" }, { address = "${B.address}", id = "web-b" }]

[upstreams.app.sticky]

[upstreams.dead]
servers = [{ address = "127.0.0.1:${deadPort}", id = "gone", max_fails = 0 }]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/dead/"
upstream = "dead"
`;
}

async function startWithAdmin(workers = 1) {
  const gw = await startGateway(config(0, workers));
  const adminPort = await adminPortOf(gw);
  return { gw, adminPort };
}

async function scrape(adminPort: number): Promise<string> {
  const response = await rawRequest(adminPort, { path: "/metrics" });
  assert.equal(response.status, 200);
  assert.equal(header(response, "content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return response.body.toString("utf8");
}

/** The value of one series (exact name and labels) in an exposition. */
function value(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const P = "sticky_gateway_";

describe("metrics endpoint", () => {
  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    deadPort = await closedPort();
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    await stopAllNodeUpstreams();
    for (const child of children) child.kill("SIGKILL");
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("counts what was sent, by server, class, sticky outcome and failure code; promtool accepts it", async () => {
    const { adminPort, gw } = await startWithAdmin();
    const served = { A: 0, B: 0 };
    for (let i = 0; i < 4; i++) {
      const answer = await ask(gw.port);
      served[answer.servedBy as "A" | "B"]++;
    }
    for (let i = 0; i < 3; i++) {
      assert.equal((await ask(gw.port, { cookies: [`route=${md5(A.address)}`] })).servedBy, "A");
    }
    served.A += 3;
    const invalid = await ask(gw.port, { cookies: ["route=ffff"] });
    served[invalid.servedBy as "A" | "B"]++;
    assert.equal(
      (await ask(gw.port, { path: "/status/404", cookies: [`route=${md5(B.address)}`] })).status,
      404,
    );
    assert.equal((await ask(gw.port, { path: "/dead/" })).status, 502);
    assert.equal((await ask(gw.port, { path: "/dead/" })).status, 502);

    await sleep(100);
    const text = await scrape(adminPort);
    const check = await checkMetrics(text);
    assert.ok(check.ok, `${check.output}\n${text}`);

    assert.equal(
      value(text, `${P}requests_total{upstream="app",server="web-a",class="2xx"}`),
      served.A,
    );
    assert.equal(
      value(text, `${P}requests_total{upstream="app",server="web-b",class="2xx"}`),
      served.B,
    );
    assert.equal(value(text, `${P}requests_total{upstream="app",server="web-b",class="4xx"}`), 1);
    assert.equal(value(text, `${P}requests_total{upstream="dead",server="",class="5xx"}`), 2);
    assert.equal(value(text, `${P}request_duration_seconds_count{upstream="app"}`), 9);
    assert.equal(value(text, `${P}upstream_header_duration_seconds_count{upstream="app"}`), 9);
    assert.equal(value(text, `${P}sticky_decisions_total{upstream="app",outcome="new"}`), 4);
    assert.equal(value(text, `${P}sticky_decisions_total{upstream="app",outcome="hit"}`), 4);
    assert.equal(value(text, `${P}sticky_decisions_total{upstream="app",outcome="invalid"}`), 1);
    assert.equal(value(text, `${P}sticky_decisions_total{upstream="dead",outcome="none"}`), 2);
    assert.equal(
      value(
        text,
        `${P}upstream_failures_total{upstream="dead",server="gone",code="connect_refused"}`,
      ),
      2,
    );
    assert.equal(value(text, `${P}in_flight_requests{upstream="app",server="web-a"}`), 0);
    assert.ok((value(text, `${P}upstream_connections{upstream="app",server="web-a"}`) ?? -1) >= 0);
    assert.equal(value(text, `${P}server_state{upstream="app",server="web-a",state="up"}`), 1);
    assert.equal(value(text, `${P}server_state{upstream="app",server="web-a",state="down"}`), 0);
    assert.ok((value(text, `${P}client_connections`) ?? -1) >= 0);
    assert.equal(value(text, `${P}websockets_open`), 0);
    assert.ok((value(text, `${P}process_resident_memory_bytes`) ?? 0) > 1_000_000);
    assert.equal(
      value(text, `${P}build_info{version="${VERSION}",runtime="${GATEWAY_RUNTIME}"}`),
      1,
      text.split("\n").filter((line) => line.includes("build_info")).join("\n"),
    );
  });

  it("with workers = 2 the counters are the sum over both threads", async () => {
    const { adminPort, gw } = await startWithAdmin(2);
    const total = 40;
    for (let i = 0; i < total; i++) {
      // A new connection each: the kernel spreads them over both threads' listeners.
      const answer = await rawRequest(gw.port, { path: "/", headers: [["Connection", "close"]] });
      assert.equal(answer.status, 200);
    }
    await sleep(100);
    const text = await scrape(adminPort);
    const a = value(text, `${P}requests_total{upstream="app",server="web-a",class="2xx"}`) ?? 0;
    const b = value(text, `${P}requests_total{upstream="app",server="web-b",class="2xx"}`) ?? 0;
    assert.equal(a + b, total);
    assert.equal(value(text, `${P}sticky_decisions_total{upstream="app",outcome="new"}`), total);
    assert.equal(value(text, `${P}request_duration_seconds_count{upstream="app"}`), total);
    assert.equal(a, b, "one round robin for both threads: A and B alternate");
    const check = await checkMetrics(text);
    assert.ok(check.ok, check.output);
  });

  it("open client connections and WebSockets are gauges that go up and back down", async () => {
    const ws = await startWsUpstreams(["W"]);
    const gw = await startGateway(`
[admin]
listen = "127.0.0.1:0"

[log]
access = "off"

[upstreams.app]
servers = [{ address = "${ws.address("W")}", id = "ws-1" }]

[[routes]]
path = "/"
upstream = "app"
`);
    const adminPort = await adminPortOf(gw);
    const gauge = async (name: string) => value(await scrape(adminPort), `${P}${name}`);
    const idle = connect({ host: "127.0.0.1", port: gw.port });
    await new Promise<void>((resolve) => idle.once("connect", () => resolve()));
    await sleep(100);
    assert.equal(await gauge("client_connections"), 1, "an idle connection counts");
    const socket = new WebSocket(`ws://127.0.0.1:${gw.port}/socket`);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.onopen = () => resolve();
        socket.onerror = () => reject(new Error("WebSocket error"));
      }),
      10_000,
      "WebSocket open",
    );
    await sleep(100);
    assert.equal(await gauge("websockets_open"), 1);
    // An upgraded connection leaves the HTTP connections for websockets_open.
    assert.equal(await gauge("client_connections"), 1, "the idle connection");
    // The session's upstream connection is open at its server until the session ends.
    const upstreamConnections = `upstream_connections{upstream="app",server="ws-1"}`;
    assert.equal(await gauge(upstreamConnections), 1);
    socket.close(1000);
    idle.destroy();
    const deadline = Date.now() + 5000;
    while (
      (await gauge("websockets_open")) !== 0 || (await gauge("client_connections")) !== 0 ||
      (await gauge(upstreamConnections)) !== 0
    ) {
      assert.ok(Date.now() < deadline, "gauges back to 0 within 5 s");
      await sleep(50);
    }
    const text = await scrape(adminPort);
    assert.equal(value(text, `${P}requests_total{upstream="app",server="ws-1",class="1xx"}`), 1);
  });

  it("a real Prometheus scrapes it; its API answers sticky_gateway_requests_total", async () => {
    const binary = await prometheus();
    const { adminPort, gw } = await startWithAdmin();
    for (let i = 0; i < 6; i++) assert.equal((await ask(gw.port)).status, 200);
    const dir = mkdtempSync(join(tmpdir(), "prometheus-e2e-"));
    dirs.push(dir);
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gateway
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:${adminPort}"]
`,
    );
    const promPort = await closedPort();
    const child = spawn(binary, [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      "--log.level=warn",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    children.add(child);
    let log = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => log += chunk);
    try {
      const query = async (promql: string) => {
        const response = await fetch(
          `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(promql)}`,
        );
        return await response.json() as {
          status: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
      };
      const found = await withTimeout(
        (async () => {
          for (;;) {
            try {
              const answer = await query(`sum(${P}requests_total{upstream="app"})`);
              const result = answer.data?.result ?? [];
              if (answer.status === "success" && result.length > 0) return answer;
            } catch {
              // not listening yet
            }
            if (child.exitCode !== null) throw new Error(`prometheus exited: ${log}`);
            await sleep(250);
          }
        })(),
        30_000,
        `prometheus query (log: ${log})`,
      );
      assert.equal(Number(found.data.result[0].value[1]), 6);
      const up = await query(`up{job="gateway"}`);
      assert.equal(up.data.result[0]?.value[1], "1", "the scrape succeeded");
      const series = await query(`${P}requests_total{upstream="app",class="2xx"}`);
      assert.deepEqual(
        series.data.result.map((r) => r.metric.server).sort(),
        ["web-a", "web-b"],
      );
    } finally {
      child.kill("SIGTERM");
      await withTimeout(
        new Promise((resolve) =>
          child.exitCode !== null ? resolve(null) : child.once("exit", resolve)
        ),
        10_000,
        "prometheus exit",
      ).catch(() => child.kill("SIGKILL"));
      children.delete(child);
    }
  });
});
