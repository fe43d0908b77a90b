/**
 * The admin listener: metrics, Kubernetes probes, the upstreams API and the status page, over an
 * {@link AdminView} of the running gateway.
 *
 * @module
 */
export {
  type AdminHandlerOptions,
  createAdminHandler,
  type ServerRow,
  type UpstreamRow,
} from "./handler.ts";
export {
  type AdminStateChange,
  createGatewayView,
  type GatewayViewSources,
  type ServerTotals,
} from "./gateway_view.ts";
export type {
  AdminView,
  LatencyHistogram,
  ReloadAnswer,
  ServerHealth,
  ServerStatus,
  SetStateResult,
  StickyCounts,
  UpstreamStatus,
} from "./view.ts";
export { stickyCounts } from "./view.ts";
export type { AdminSettings } from "../../config/admin.ts";
