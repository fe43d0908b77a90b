/**
 * What runs once per process, in the main thread, beside the request path: active health checks
 * (one probe per server whatever the number of workers) and the admin listener (metrics, probes,
 * the upstreams API, the status page). Both read and write the shared state only.
 *
 * @module
 */
import process from "node:process";
import pkg from "../../package.json" with { type: "json" };
import type { GatewayConfig } from "../config/mod.ts";
import type { Transport } from "../proxy/transport.ts";
import type { Listener, ProxyRequest, Runtime } from "../runtime/contracts.ts";
import { serverStatus } from "../state/status.ts";
import type { SharedState } from "../state/shared_state.ts";
import { HealthChecker } from "./health/checker.ts";
import { createAdminHandler, createGatewayView } from "./admin/mod.ts";
import { healthResultOf } from "./metrics/metrics.ts";
import { type ReloadFigures, renderMetrics, type ServerGauges } from "./metrics/render.ts";
import type { Metrics } from "./metrics/metrics.ts";
import type { ReloadAnswer } from "./admin/view.ts";
import { logEvent } from "./log/events.ts";
import type { ThreadOps } from "./thread_ops.ts";
import type { DiscoveryFigure } from "../discovery/discovery.ts";

/** The health checker on `state` (default: the thread's), started; its first round is under way
 * (see {@link HealthChecker}). `drained`: what the checker before it drained (a reload). */
export function startHealthChecks(
  config: GatewayConfig,
  ops: ThreadOps,
  transport: Transport,
  state: SharedState = ops.state,
  drained?: ReadonlySet<string>,
): HealthChecker | undefined {
  if (![...config.upstreams.values()].some((u) => u.health !== undefined)) return undefined;
  return new HealthChecker(config, state, transport, {
    drained,
    onEvent: (event) =>
      logEvent(event.to === "down" ? "warn" : "info", `server_${event.kind}`, {
        upstream: event.upstream,
        server: event.server,
        from: event.from,
        to: event.to,
        reason: event.reason,
      }),
    // Counted in the metrics this thread writes when the check ends (a reload swaps them).
    onCheck: (check) =>
      ops.metrics?.healthCheck(check.upstream, check.server, healthResultOf(check)),
  });
}

/**
 * What the admin listener asks of the process beyond this thread's operations: reloads, and
 * the metrics a scrape reads (those of the last generation until every thread has swapped, so no
 * counter is seen going backwards).
 */
export interface AdminControl {
  /** The metrics to read now. */
  readonly metrics: () => Metrics | undefined;
  /** `POST /api/v1/reload`. */
  readonly reload: () => Promise<ReloadAnswer>;
  /** Reloads so far and the generation serving. */
  readonly reloads: () => ReloadFigures;
  /** DNS discovery's names (src/discovery/), for `/metrics` and `/readyz`; absent = none. */
  readonly discovery?: () => readonly DiscoveryFigure[];
}

/**
 * The admin listener on `[admin] listen`, or undefined without `[admin]`. It reads the snapshot
 * and state `ops` holds when asked: a reload swaps them under it.
 */
export async function startAdmin(
  config: GatewayConfig,
  runtime: Runtime,
  ops: ThreadOps,
  control?: AdminControl,
): Promise<Listener | undefined> {
  const settings = config.admin;
  if (settings === undefined || ops.metrics === undefined) return undefined;
  const metrics = () => control?.metrics() ?? ops.metrics!;
  const gauges: ServerGauges = {
    read(upstreamName, serverId) {
      const upstream = ops.config.upstreams.get(upstreamName);
      const server = upstream?.servers.find((s) => s.id === serverId);
      if (upstream === undefined || server === undefined) return undefined;
      const status = serverStatus(ops.state, upstream, server, Date.now());
      return { inFlight: status.inFlight, connections: status.connections, state: status.summary };
    },
  };
  const build = { version: pkg.version, runtime: runtime.name };
  const view = createGatewayView({
    config: () => ops.config,
    state: () => ops.state,
    totals: (upstream, serverId) => metrics().serverTotals(upstream, serverId),
    metricsText: () =>
      renderMetrics({
        metrics: metrics(),
        gauges,
        build,
        reloads: control?.reloads(),
        discovery: control?.discovery?.(),
      }),
    discovery: control?.discovery,
    reload: control?.reload,
    onStateChange: (change) =>
      logEvent("info", "server_state", {
        upstream: change.upstream,
        server: change.server,
        from: change.from,
        to: change.to,
        reason: change.reason,
      }),
  });
  const handle = createAdminHandler(view, settings, {
    onError: (error) => logEvent("error", "admin_error", { error: String(error) }),
    upstream: (name) => ops.config.upstreams.get(name),
  });
  return await runtime.listen(settings.listen, (request) => handle(webRequest(request)), {
    // As the client listener: a restart's new process binds it beside the old one's.
    reusePort: config.server.reusePort,
    clientMaxHeaderSize: config.server.clientMaxHeaderSize,
    clientHeaderTimeoutMs: config.server.clientHeaderTimeoutMs,
    keepaliveTimeoutMs: config.server.keepaliveTimeoutMs,
    // Reload requests wait (queued, throttled) on their connection: room for a storm of them.
    maxConnections: 1024,
  });
}

/** The admin handler speaks Web `Request`s; the listener's lighter request is made into one
 * (a few requests a second, off the request path). */
function webRequest(request: ProxyRequest): Request {
  if (request instanceof Request) return request;
  const headers = new Headers();
  for (const [name, value] of request.headers) headers.append(name, value);
  return new Request(request.url, {
    method: request.method,
    headers,
    body: request.body,
    duplex: "half",
  } as RequestInit);
}

/** Reopens the access log of this thread and tells the workers to (SIGUSR1, after logrotate). */
export function reopenLogsOnSignal(ops: ThreadOps, workers: () => readonly Worker[]): void {
  process.on("SIGUSR1", () => {
    ops.accessLog?.reopen();
    for (const worker of workers()) worker.postMessage({ type: "reopen" });
    logEvent("info", "logs_reopened", {});
  });
}
