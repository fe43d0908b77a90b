/**
 * Prometheus metrics: counters and histograms shared by every thread, and their exposition.
 *
 * @module
 */
export {
  healthResultOf,
  Metrics,
  type MetricsBuffers,
  type MetricsSource,
  type ServerLatency,
  type ServerTotals,
} from "./metrics.ts";
export {
  escapeLabel,
  type MemoryReading,
  METRICS_CONTENT_TYPE,
  type ReloadFigures,
  renderMetrics,
  type RenderOptions,
  type ServerGaugeReading,
  type ServerGauges,
  type ServerStateName,
} from "./render.ts";
export { BUCKETS_MS, type HealthResult } from "./layout.ts";
