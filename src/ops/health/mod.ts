/**
 * Active health checks: see `checker.ts`.
 *
 * @module
 */
export { HealthChecker } from "./checker.ts";
export type {
  CheckedConfig,
  CheckedUpstream,
  CheckResult,
  HealthCheckerOptions,
  HealthEvent,
} from "./checker.ts";
export { probe } from "./probe.ts";
export type { ProbeResult } from "./probe.ts";
