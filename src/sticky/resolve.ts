/**
 * The sticky decision: which server a request's cookie pins it to, if any. Pure: the server
 * states come in as functions, the clock as a number.
 *
 * This follows the module's documented intent with its bugs fixed (see the README):
 * `no_fallback` refuses only a client whose *valid* cookie names an unavailable server, never a
 * client without one; and backups carry their own cookie values.
 *
 * @module
 */
import type { Server, Sticky } from "../config/mod.ts";
import { parseIndexValue } from "../cookie/value.ts";

/**
 * The sticky outcome of a request, as the access log and metrics name it: `none` (the upstream
 * is not sticky), `new` (no cookie: balanced), `hit` (a valid cookie, its server used), `repin`
 * (a valid cookie naming a server that cannot serve it, or that failed during the request:
 * balanced elsewhere), `invalid` (a value naming no server: balanced), `refused` (`no_fallback`:
 * 502).
 */
export type StickyOutcome = "none" | "new" | "hit" | "repin" | "invalid" | "refused";

export type StickyDecision =
  /** The cookie names an available server: use it, send no Set-Cookie. */
  | { readonly kind: "pinned"; readonly server: Server; readonly outcome: "hit" }
  /** Choose by round robin and send a Set-Cookie for the choice. */
  | {
    readonly kind: "balance";
    readonly reason: BalanceReason;
    readonly previous?: Server;
    readonly outcome: "new" | "invalid" | "repin";
  }
  /** `no_fallback` and the pinned server is unavailable: 502. */
  | { readonly kind: "refuse"; readonly server: Server; readonly outcome: "refused" };

export type BalanceReason =
  | "no-cookie"
  | "unknown-value"
  | "server-unavailable"
  | "backup-while-primary-up";

/** The live server states a decision reads (the Balancer is one). */
export interface ServerStates {
  /** The server may serve a client pinned to it (a draining server may; maint or failed not). */
  isAvailable(server: Server, nowMs: number): boolean;
  /** Some primary may take new clients. */
  anyPrimaryAvailable(nowMs: number): boolean;
}

const NO_COOKIE: StickyDecision = { kind: "balance", reason: "no-cookie", outcome: "new" };
const UNKNOWN_VALUE: StickyDecision = {
  kind: "balance",
  reason: "unknown-value",
  outcome: "invalid",
};

/** The server a cookie value names, or undefined. */
export function serverForValue(sticky: Sticky, value: string): Server | undefined {
  if (sticky.mode === "index") {
    const index = parseIndexValue(value);
    return index < 0 ? undefined : sticky.serverByValue.get(String(index));
  }
  return sticky.serverByValue.get(value);
}

/**
 * Decides from the sticky cookie's value (null when absent).
 *
 * @param noFallback the upstream's or the route's `no_fallback`
 * @example
 * ```ts
 * const d = resolveSticky(sticky, "422db4e6da7b4bba46bd476612df0469", false, states, Date.now());
 * if (d.kind === "pinned") console.log(d.server.address.text); // "127.0.0.1:9001"
 * ```
 */
export function resolveSticky(
  sticky: Sticky,
  value: string | null,
  noFallback: boolean,
  states: ServerStates,
  nowMs: number,
): StickyDecision {
  if (value === null) return NO_COOKIE;
  const server = serverForValue(sticky, value);
  if (server === undefined) return UNKNOWN_VALUE;
  if (!states.isAvailable(server, nowMs)) {
    return noFallback
      ? { kind: "refuse", server, outcome: "refused" }
      : { kind: "balance", reason: "server-unavailable", previous: server, outcome: "repin" };
  }
  // Backups serve only while no primary can; the session moves back (even under no_fallback:
  // its server is up, it is the backup's turn that is over).
  if (server.backup && states.anyPrimaryAvailable(nowMs)) {
    return {
      kind: "balance",
      reason: "backup-while-primary-up",
      previous: server,
      outcome: "repin",
    };
  }
  return { kind: "pinned", server, outcome: "hit" };
}
