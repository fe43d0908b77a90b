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
import type { Server, ServerState, Sticky } from "../config/mod.ts";
import { parseIndexValue } from "../cookie/value.ts";
import { findCookie } from "../cookie/read.ts";
import type { RequestHeaders } from "../runtime/contracts.ts";
import { routeOf } from "./route.ts";
import { rendezvousPick } from "./rendezvous.ts";

/**
 * The sticky outcome of a request, as the access log and metrics name it: `none` (the upstream
 * is not sticky), `new` (no cookie: balanced), `hit` (a valid cookie, its server used), `repin`
 * (a valid cookie naming a server that cannot serve it, or that failed during the request:
 * balanced elsewhere), `invalid` (a value naming no server: balanced), `refused` (`no_fallback`:
 * 502), `legacy` (a 1.2.x module value, `accept_legacy`: its server used, the cookie re-issued in
 * the current format), `route` (a `route_from` route named an available server). Signed tokens
 * (`mode = "token"`) add `forged` (the tag does not verify, or names no server of this upstream),
 * `unknown_key` (a key id not in the ring), `expired_idle` / `expired_life` (`max_idle` /
 * `max_life` passed): all four balanced with a new token, never sent to the server named;
 * `rotated` (valid under an older key: its server used, re-issued under the signing key); and
 * `header` (no cookie: placed by the `header` value's rendezvous hash).
 */
export type StickyOutcome =
  | "none"
  | "new"
  | "hit"
  | "repin"
  | "invalid"
  | "refused"
  | "legacy"
  | "route"
  | "forged"
  | "unknown_key"
  | "rotated"
  | "expired_idle"
  | "expired_life"
  | "header";

export type StickyDecision =
  /** An available server is named: use it; a Set-Cookie for it only when `reissue` (a legacy
   * value, nginx's format which always sends one, or a route the own cookie does not agree
   * with). */
  | {
    readonly kind: "pinned";
    readonly server: Server;
    readonly outcome: "hit" | "legacy" | "route" | "rotated" | "header";
    readonly reissue: boolean;
    /** A token's issue time (seconds), kept when it is re-issued for the same server. */
    readonly issuedS?: number;
  }
  /** Choose by round robin and send a Set-Cookie for the choice. */
  | {
    readonly kind: "balance";
    readonly reason: BalanceReason;
    readonly previous?: Server;
    readonly outcome: "new" | "invalid" | "repin" | RefusedToken;
  }
  /** `no_fallback` and the pinned server is unavailable: 502. */
  | { readonly kind: "refuse"; readonly server: Server; readonly outcome: "refused" };

export type BalanceReason =
  | "no-cookie"
  | "unknown-value"
  | "server-unavailable"
  | "backup-while-primary-up";

/** Token verdicts that balance the client (with a new token). */
export type RefusedToken = "forged" | "unknown_key" | "expired_idle" | "expired_life";

/** The live server states a decision reads (the Balancer is one). */
export interface ServerStates {
  /** The server may serve a client pinned to it (a draining server may; maint or failed not). */
  isAvailable(server: Server, nowMs: number): boolean;
  /** Some primary may take new clients. */
  anyPrimaryAvailable(nowMs: number): boolean;
  /** The server's admin state (header stickiness places new clients on `ready` ones only);
   * absent = every server is `ready`. */
  state?(server: Server): ServerState;
}

const NO_COOKIE: StickyDecision = { kind: "balance", reason: "no-cookie", outcome: "new" };
const UNKNOWN_VALUE: StickyDecision = {
  kind: "balance",
  reason: "unknown-value",
  outcome: "invalid",
};

/** The server a cookie value names, or undefined. */
export function serverForValue(sticky: Sticky, value: string): Server | undefined {
  if (sticky.mode === "index" && sticky.format !== "nginx") {
    const index = parseIndexValue(value);
    return index < 0 ? undefined : sticky.serverByValue.get(String(index));
  }
  return sticky.serverByValue.get(value);
}

/**
 * The whole sticky decision for a request: a `route_from` route naming a server that can serve
 * it comes first (outcome `route`); then the upstream's own cookie ({@link resolveSticky}). An
 * unknown route, or one naming a server that cannot serve now, falls through to the cookie and
 * balancing, except under `no_fallback`, where a route naming an unavailable server is refused
 * as a cookie would be. Upstreams without `route_from` cost what the cookie alone costs.
 *
 * @param target the request target (path and query), for `query:` sources
 * @param noFallback the upstream's or the route's `no_fallback`
 */
export function decideSticky(
  sticky: Sticky,
  headers: RequestHeaders,
  target: string,
  noFallback: boolean,
  states: ServerStates,
  nowMs: number,
): StickyDecision {
  if (sticky.routeFrom !== undefined) {
    const routed = decideRoute(sticky, headers, target, noFallback, states, nowMs);
    if (routed !== undefined) return routed;
  }
  const value = sticky.cookie === false
    ? null
    : findCookie(headers.get("cookie"), sticky.lowerName);
  if (value === null && sticky.header !== undefined) {
    const placed = decideHeader(sticky, headers, states, nowMs);
    if (placed !== undefined) return placed;
  }
  return resolveSticky(sticky, value, noFallback, states, nowMs);
}

/**
 * Header stickiness: the server the header's value goes to by rendezvous hashing over the
 * servers that take new clients (`ready` and available primaries; backups when no primary is);
 * undefined without the header (or without such a server): balancing decides.
 */
function decideHeader(
  sticky: Sticky,
  headers: RequestHeaders,
  states: ServerStates,
  nowMs: number,
): StickyDecision | undefined {
  const header = sticky.header!;
  const value = headers.get(header.lowerName);
  if (value === null || value === "") return undefined;
  const takesNew = (server: Server) =>
    (states.state?.(server) ?? "ready") === "ready" && states.isAvailable(server, nowMs);
  const server = rendezvousPick(value, header.primaries, takesNew) ??
    rendezvousPick(value, header.backups, takesNew);
  if (server === undefined) return undefined;
  return { kind: "pinned", server, outcome: "header", reissue: sticky.cookie !== false };
}

/** The decision a route makes, or undefined when it makes none (no route, unknown route, or its
 * server cannot serve and no_fallback is off). */
function decideRoute(
  sticky: Sticky,
  headers: RequestHeaders,
  target: string,
  noFallback: boolean,
  states: ServerStates,
  nowMs: number,
): StickyDecision | undefined {
  const route = routeOf(sticky, headers, target);
  if (route === undefined) return undefined;
  const server = sticky.serverByRoute?.get(route);
  if (server === undefined) return undefined;
  if (!states.isAvailable(server, nowMs)) {
    return noFallback ? { kind: "refuse", server, outcome: "refused" } : undefined;
  }
  if (server.backup && states.anyPrimaryAvailable(nowMs)) return undefined;
  return {
    kind: "pinned",
    server,
    outcome: "route",
    reissue: ownCookieDiffers(sticky, headers, server, nowMs),
  };
}

/** Whether the own cookie should be (re)set for a routed request: nginx's format always sends
 * it; otherwise only when the client's cookie does not already name that server, so that the
 * client stays there once the route is gone. */
function ownCookieDiffers(
  sticky: Sticky,
  headers: RequestHeaders,
  server: Server,
  nowMs: number,
): boolean {
  if (sticky.cookie === false) return false;
  if (sticky.alwaysSetCookie === true) return true;
  const value = findCookie(headers.get("cookie"), sticky.lowerName);
  if (value === null) return true;
  if (sticky.token !== undefined) {
    const verdict = sticky.token.check.check(value, Math.floor(nowMs / 1000));
    return verdict.kind !== "valid" || verdict.server !== server || verdict.rotated ||
      verdict.refresh;
  }
  return serverForValue(sticky, value) !== server;
}

/**
 * Decides from the sticky cookie's value (null when absent).
 *
 * @param noFallback the upstream's or the route's `no_fallback`
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * const app = parseConfig(`[upstreams.app]
 * servers = ["127.0.0.1:9001", "127.0.0.1:9002"]
 * [upstreams.app.sticky]
 * `).upstreams.get("app")!;
 * const states = { isAvailable: () => true, anyPrimaryAvailable: () => true };
 * const d = resolveSticky(app.sticky!, "422db4e6da7b4bba46bd476612df0469", false, states, Date.now());
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
  if (sticky.token !== undefined) return resolveToken(sticky, value, noFallback, states, nowMs);
  let server = serverForValue(sticky, value);
  let outcome: "hit" | "legacy" = "hit";
  if (server === undefined) {
    server = sticky.legacyServerByValue?.get(value);
    if (server === undefined) return UNKNOWN_VALUE;
    outcome = "legacy";
  }
  const moved = cannotKeep(server, noFallback, states, nowMs);
  if (moved !== undefined) return moved;
  return {
    kind: "pinned",
    server,
    outcome,
    reissue: outcome === "legacy" || sticky.alwaysSetCookie === true,
  };
}

/**
 * The decision for a client whose cookie or token names `server` when that server cannot keep
 * it: refused (`no_fallback`) or re-pinned while it is unavailable; re-pinned when it is a backup
 * and a primary is back (even under no_fallback: its server is up, the backup's turn is over).
 * Undefined when it can keep the client.
 */
function cannotKeep(
  server: Server,
  noFallback: boolean,
  states: ServerStates,
  nowMs: number,
): StickyDecision | undefined {
  if (!states.isAvailable(server, nowMs)) {
    return noFallback
      ? { kind: "refuse", server, outcome: "refused" }
      : { kind: "balance", reason: "server-unavailable", previous: server, outcome: "repin" };
  }
  if (server.backup && states.anyPrimaryAvailable(nowMs)) {
    return {
      kind: "balance",
      reason: "backup-while-primary-up",
      previous: server,
      outcome: "repin",
    };
  }
  return undefined;
}

const REFUSED_TOKEN: Readonly<Record<RefusedToken | "invalid", StickyDecision>> = {
  invalid: UNKNOWN_VALUE,
  forged: { kind: "balance", reason: "unknown-value", outcome: "forged" },
  unknown_key: { kind: "balance", reason: "unknown-value", outcome: "unknown_key" },
  expired_idle: { kind: "balance", reason: "unknown-value", outcome: "expired_idle" },
  expired_life: { kind: "balance", reason: "unknown-value", outcome: "expired_life" },
};

/**
 * Decides from a signed token (`mode = "token"`): a token that does not verify, is under an
 * unknown key or has expired is no cookie for routing (balanced, a new token; never its server).
 * A valid one pins as a module value would; it is re-issued when signed by an older key
 * (`rotated`) or seen a quarter of `max_idle` ago (a refresh, still `hit`), keeping its issue
 * time.
 */
function resolveToken(
  sticky: Sticky,
  value: string,
  noFallback: boolean,
  states: ServerStates,
  nowMs: number,
): StickyDecision {
  const verdict = sticky.token!.check.check(value, Math.floor(nowMs / 1000));
  if (verdict.kind !== "valid") return REFUSED_TOKEN[verdict.kind];
  const server = verdict.server;
  const moved = cannotKeep(server, noFallback, states, nowMs);
  if (moved !== undefined) return moved;
  return {
    kind: "pinned",
    server,
    outcome: verdict.rotated ? "rotated" : "hit",
    reissue: verdict.rotated || verdict.refresh,
    issuedS: verdict.issuedS,
  };
}
