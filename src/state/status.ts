/**
 * One server's state as operations show it (admin API, status page, metrics gauges): read from
 * the shared state at the moment it is asked, never kept.
 *
 * @module
 */
import type { Server, ServerState, Upstream } from "../config/mod.ts";
import type { ActiveHealth, LastCheck, SharedState } from "./shared_state.ts";

/** A server's live state, over all threads. */
export interface ServerStatus {
  readonly upstream: string;
  readonly server: string;
  readonly state: ServerState;
  /** Active health (`unchecked` when the upstream has no health checks). */
  readonly health: ActiveHealth;
  /** Passive health (max_fails / fail_timeout) has it out now. */
  readonly failed: boolean;
  /** Failures counted by passive health. */
  readonly failures: number;
  /** It may serve a client pinned to it (not maint, not failed, not down). */
  readonly available: boolean;
  /**
   * One word for the metrics' one-hot state and the status page, the first that holds of
   * `maint`, `down` (active health down, or not yet checked), `failed` (passive health),
   * `drain`, `up` (ready). A draining server that fails shows as failing: that is news.
   */
  readonly summary: "up" | "down" | "failed" | "drain" | "maint";
  readonly inFlight: number;
  readonly connections: number;
  /** Last request pinned to it by its cookie (ms since the epoch), undefined if none yet. */
  readonly lastStickyMs: number | undefined;
  /** The last active checks, oldest first (true = passed). */
  readonly healthHistory: readonly boolean[];
  readonly lastCheck: LastCheck | undefined;
}

/** Reads `server`'s status (O(1) but for the history, at most 32 entries). */
export function serverStatus(
  state: SharedState,
  upstream: Upstream,
  server: Server,
  nowMs: number,
): ServerStatus {
  const slot = state.upstreamSlots(upstream).base + server.index;
  const admin = state.adminState(slot);
  const health = state.activeHealth(slot);
  const failed = state.passiveFailed(slot, server, nowMs);
  const healthy = !failed && state.activeAllows(slot);
  const lastSticky = state.lastStickyMs(slot);
  return {
    upstream: upstream.name,
    server: server.id,
    state: admin,
    health,
    failed,
    failures: state.failures(slot),
    available: admin !== "maint" && healthy,
    summary: admin === "maint"
      ? "maint"
      : health === "down" || health === "unknown"
      ? "down"
      : failed
      ? "failed"
      : admin === "drain"
      ? "drain"
      : "up",
    inFlight: state.inFlight(slot),
    connections: state.connections(slot),
    lastStickyMs: lastSticky === 0 ? undefined : lastSticky,
    healthHistory: state.healthHistory(slot),
    lastCheck: state.lastCheck(slot),
  };
}
