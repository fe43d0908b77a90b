/**
 * The Prometheus text exposition (format 0.0.4) of the gateway's metrics, prefix
 * `sticky_gateway_`: counters summed over every thread's region, per-server gauges read at scrape
 * time through {@link ServerGauges} (the shared server state), process memory, build info.
 *
 * Series whose labels come from the config are always present, zero included (a counter that
 * appears only at its first increment loses that increment in `rate()`): requests by class for
 * every server, failures of every code that marks a server, every sticky outcome of a sticky
 * upstream, every health result of a checked upstream. Other combinations (the "no server" and
 * "no route" slots, rarer codes) appear once they are not zero.
 *
 * @module
 */
import process from "node:process";
import { FAILURES } from "../../proxy/errors.ts";
import {
  BLOCK,
  BUCKETS_MS,
  FAILURE_CODES,
  GLOBAL,
  HEALTH_RESULTS,
  HISTOGRAM_SLOTS,
  STATUS_CLASSES,
  STICKY_OUTCOMES,
  type UpstreamLayout,
} from "./layout.ts";
import type { Metrics } from "./metrics.ts";
import type { DiscoveryFigure } from "../../discovery/discovery.ts";

/** The content type of the exposition. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const PREFIX = "sticky_gateway_";

/** A server's state in one word: the `state` label of `server_state` (one-hot). */
export type ServerStateName = "up" | "down" | "failed" | "drain" | "maint";
const STATE_NAMES: readonly ServerStateName[] = ["up", "down", "failed", "drain", "maint"];

/** One server's live figures over all threads, at the moment of the scrape. */
export interface ServerGaugeReading {
  /** Requests in flight to it now. */
  readonly inFlight: number;
  /** Open connections to it (in use and pooled). */
  readonly connections: number;
  readonly state: ServerStateName;
}

/** Read-only access to the servers' live state (the lead implements it over the shared state). */
export interface ServerGauges {
  /** The server's figures now; undefined when it is not known (it is then left out). */
  read(upstream: string, serverId: string): ServerGaugeReading | undefined;
}

/** What `process.memoryUsage()` gives (the part shown). */
export interface MemoryReading {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
}

/** What a scrape renders. */
export interface RenderOptions {
  readonly metrics: Metrics;
  /** Per-server gauges (in-flight, connections, state); left out when absent. */
  readonly gauges?: ServerGauges;
  /** `build_info` labels: the gateway's version and the runtime's name ("deno", "bun"). */
  readonly build: { readonly version: string; readonly runtime: string };
  /** Process memory (default `process.memoryUsage()`); tests pass fixed figures. */
  readonly memory?: () => MemoryReading;
  /** Config reloads so far and the generation serving (0 at start); absent = not rendered. */
  readonly reloads?: ReloadFigures;
  /** DNS discovery's names (src/discovery/); absent = not rendered. */
  readonly discovery?: readonly DiscoveryFigure[];
}

/** `config_reloads_total{result}` and `config_generation`. */
export interface ReloadFigures {
  readonly ok: number;
  readonly error: number;
  readonly generation: number;
}

/** Codes whose series exist from the start: those that mark a server failed (max_fails). */
const SERVER_CODES = new Set(FAILURE_CODES.filter((code) => FAILURES[code].marksServer));

/**
 * The exposition text.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../../config/mod.ts";
 * import { Metrics } from "./metrics.ts";
 * import { renderMetrics } from "./render.ts";
 *
 * const config = parseConfig(`[upstreams.app]\nservers = ["127.0.0.1:9001"]\n`);
 * const metrics = Metrics.create(config, 1);
 * const text = renderMetrics({ metrics, build: { version: "1.0.0", runtime: "deno" } });
 * if (!text.includes('sticky_gateway_requests_total{upstream="app",server="127.0.0.1:9001",class="2xx"} 0')) {
 *   throw new Error(text);
 * }
 * ```
 */
export function renderMetrics(options: RenderOptions): string {
  const { metrics } = options;
  const totals = metrics.totals();
  const layout = metrics.layout;
  const out = new Exposition();
  const withNoRoute = [...layout.upstreams, layout.noUpstream];

  out.family("requests_total", "counter", "Requests by upstream, server and status class.");
  for (const upstream of withNoRoute) {
    forEachBlock(upstream, (server, block, configured) => {
      STATUS_CLASSES.forEach((cls, i) => {
        const value = totals[block + BLOCK.requests + i];
        if (configured || value !== 0) {
          out.sample("requests_total", { upstream: upstream.name, server, class: cls }, value);
        }
      });
    });
  }

  for (
    const [name, offset, help] of [
      [
        "request_duration_seconds",
        BLOCK.duration,
        "Time from the request's head to the end of its response.",
      ],
      [
        "upstream_header_duration_seconds",
        BLOCK.header,
        "Time from the request's head to the upstream's response head.",
      ],
    ] as const
  ) {
    out.family(name, "histogram", help);
    for (const upstream of withNoRoute) {
      const sums = new Float64Array(HISTOGRAM_SLOTS);
      for (const block of upstream.blocks) {
        for (let i = 0; i < HISTOGRAM_SLOTS; i++) sums[i] += totals[block + offset + i];
      }
      let count = 0;
      for (let i = 0; i < HISTOGRAM_SLOTS - 1; i++) count += sums[i];
      if (upstream === layout.noUpstream && count === 0) continue;
      let cumulative = 0;
      BUCKETS_MS.forEach((boundMs, i) => {
        cumulative += sums[i];
        out.sample(
          `${name}_bucket`,
          { upstream: upstream.name, le: String(boundMs / 1000) },
          cumulative,
        );
      });
      out.sample(`${name}_bucket`, { upstream: upstream.name, le: "+Inf" }, count);
      out.sample(`${name}_sum`, { upstream: upstream.name }, sums[HISTOGRAM_SLOTS - 1]);
      out.sample(`${name}_count`, { upstream: upstream.name }, count);
    }
  }

  out.family(
    "upstream_failures_total",
    "counter",
    "Failed attempts at upstream servers by catalogue code.",
  );
  for (const upstream of layout.upstreams) {
    forEachBlock(upstream, (server, block, configured) => {
      FAILURE_CODES.forEach((code, i) => {
        const value = totals[block + BLOCK.failures + i];
        if ((configured && SERVER_CODES.has(code)) || value !== 0) {
          out.sample("upstream_failures_total", { upstream: upstream.name, server, code }, value);
        }
      });
    });
  }

  out.family(
    "sticky_decisions_total",
    "counter",
    "Sticky decisions by upstream and outcome (none = not sticky).",
  );
  for (const upstream of layout.upstreams) {
    const sticky = upstream.upstream?.sticky !== undefined;
    STICKY_OUTCOMES.forEach((outcome, i) => {
      let value = 0;
      for (const block of upstream.blocks) value += totals[block + BLOCK.sticky + i];
      if (value !== 0 || (sticky ? outcome !== "none" : outcome === "none")) {
        out.sample("sticky_decisions_total", { upstream: upstream.name, outcome }, value);
      }
    });
  }

  out.family("health_checks_total", "counter", "Active health checks by result.");
  for (const upstream of layout.upstreams) {
    // `[upstreams.NAME.health]`, read without depending on the config type declaring it.
    const config = upstream.upstream;
    const checked = config !== undefined && "health" in config && config.health !== undefined;
    forEachBlock(upstream, (server, block, configured) => {
      HEALTH_RESULTS.forEach((result, i) => {
        const value = totals[block + BLOCK.health + i];
        if ((configured && checked) || value !== 0) {
          out.sample("health_checks_total", { upstream: upstream.name, server, result }, value);
        }
      });
    });
  }

  if (options.gauges !== undefined) renderServerGauges(out, layout.upstreams, options.gauges);

  out.family(
    "client_connections",
    "gauge",
    "Open client HTTP connections (one upgraded to a WebSocket counts in websockets_open).",
  );
  out.sample("client_connections", {}, totals[GLOBAL.clientConnections]);
  out.family("websockets_open", "gauge", "Open WebSocket sessions.");
  out.sample("websockets_open", {}, totals[GLOBAL.websocketsOpen]);
  out.family(
    "access_log_dropped_total",
    "counter",
    "Access log lines lost (buffer full or destination failing).",
  );
  out.sample("access_log_dropped_total", {}, totals[GLOBAL.accessLogDropped]);

  const memory = (options.memory ?? process.memoryUsage)();
  out.family("process_resident_memory_bytes", "gauge", "Resident memory of the process.");
  out.sample("process_resident_memory_bytes", {}, memory.rss);
  out.family("process_heap_used_bytes", "gauge", "JavaScript heap in use (the main thread's).");
  out.sample("process_heap_used_bytes", {}, memory.heapUsed);
  out.family("process_heap_total_bytes", "gauge", "JavaScript heap allocated (the main thread's).");
  out.sample("process_heap_total_bytes", {}, memory.heapTotal);

  const reloads = options.reloads;
  if (reloads !== undefined) {
    out.family("config_reloads_total", "counter", "Config reloads by result (ok, error).");
    out.sample("config_reloads_total", { result: "ok" }, reloads.ok);
    out.sample("config_reloads_total", { result: "error" }, reloads.error);
    out.family("config_generation", "gauge", "The config generation serving: 0 at start.");
    out.sample("config_generation", {}, reloads.generation);
  }
  if (options.discovery !== undefined) renderDiscovery(out, options.discovery);
  out.family("build_info", "gauge", "The gateway's version and runtime; always 1.");
  out.sample("build_info", { version: options.build.version, runtime: options.build.runtime }, 1);
  return out.text();
}

function renderServerGauges(
  out: Exposition,
  upstreams: readonly UpstreamLayout[],
  gauges: ServerGauges,
): void {
  const readings: [string, string, ServerGaugeReading][] = [];
  for (const upstream of upstreams) {
    for (const server of upstream.serverIds) {
      const reading = gauges.read(upstream.name, server);
      if (reading !== undefined) readings.push([upstream.name, server, reading]);
    }
  }
  out.family("in_flight_requests", "gauge", "Requests in flight to a server.");
  for (const [upstream, server, reading] of readings) {
    out.sample("in_flight_requests", { upstream, server }, reading.inFlight);
  }
  out.family("upstream_connections", "gauge", "Open connections to a server (in use and pooled).");
  for (const [upstream, server, reading] of readings) {
    out.sample("upstream_connections", { upstream, server }, reading.connections);
  }
  out.family("server_state", "gauge", "A server's state, one-hot: up, down, failed, drain, maint.");
  for (const [upstream, server, reading] of readings) {
    for (const state of STATE_NAMES) {
      out.sample("server_state", { upstream, server, state }, reading.state === state ? 1 : 0);
    }
  }
}

/** `dns_resolutions_total{type,name,result}`, `dns_addresses` and `dns_servers_left_out`. */
function renderDiscovery(out: Exposition, names: readonly DiscoveryFigure[]): void {
  const labels = (query: string) => {
    const space = query.indexOf(" ");
    return { type: query.slice(0, space), name: query.slice(space + 1) };
  };
  out.family(
    "dns_resolutions_total",
    "counter",
    "DNS questions of dns server entries by result (ok, failed: the last good answer stays).",
  );
  for (const n of names) {
    out.sample("dns_resolutions_total", { ...labels(n.query), result: "ok" }, n.resolutions);
    out.sample("dns_resolutions_total", { ...labels(n.query), result: "failed" }, n.failures);
  }
  out.family("dns_addresses", "gauge", "Addresses in the DNS answer in use (servers it gives).");
  for (const n of names) out.sample("dns_addresses", labels(n.query), n.addresses);
  out.family(
    "dns_servers_left_out",
    "gauge",
    "Addresses of the last answer beyond max_servers, left out.",
  );
  for (const n of names) out.sample("dns_servers_left_out", labels(n.query), n.leftOut);
}

/** Calls `visit` for each server block of the upstream, then its "no server" block (""). */
function forEachBlock(
  upstream: UpstreamLayout,
  visit: (server: string, block: number, configured: boolean) => void,
): void {
  upstream.serverIds.forEach((id, i) => visit(id, upstream.blocks[i], true));
  visit("", upstream.noServerBlock, false);
}

/** Builds the text: families with HELP and TYPE, samples with escaped label values. */
class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.#lines.push(`# HELP ${PREFIX}${name} ${help}`, `# TYPE ${PREFIX}${name} ${type}`);
  }

  sample(name: string, labels: Readonly<Record<string, string>>, value: number): void {
    const pairs = Object.entries(labels).map(([key, text]) => `${key}="${escapeLabel(text)}"`);
    const set = pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
    this.#lines.push(`${PREFIX}${name}${set} ${formatValue(value)}`);
  }

  text(): string {
    return `${this.#lines.join("\n")}\n`;
  }
}

/** A label value as the text format wants it: `\`, `"` and newline escaped. */
export function escapeLabel(text: string): string {
  return /[\\"\n]/.test(text)
    ? text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    : text;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
