/**
 * The one failover loop, for plain requests (gateway.ts) and WebSocket handshakes
 * (websocket.ts): the pinned server first, else the balancer's pick; a failure is marked against
 * the server when the catalogue says so, and the request moves to the next server only while it
 * can be sent again (it never reached the upstream, and nothing of it was taken from the client)
 * and a pinned session under no_fallback is not being left.
 *
 * @module
 */
import type { Server } from "../config/mod.ts";
import type { Balancer } from "../balancer/balancer.ts";
import type { StickyOutcome } from "../sticky/resolve.ts";
import { type FailureCode, FAILURES, toUpstreamError } from "./errors.ts";

/** One request's way through the servers of its upstream. */
export interface Attempt<T> {
  readonly balancer: Balancer;
  /** The server the cookie pins, if it is available. */
  readonly pinned: Server | undefined;
  readonly noFallback: boolean;
  /** The sticky decision's outcome (absent: `none`, the upstream is not sticky). */
  readonly sticky?: StickyOutcome;
  /** The request's time (the balancer's and health's clock). */
  readonly now: number;
  /** Sends the request to one server; rejects with what the transport threw. */
  send(server: Server): Promise<T>;
  /** Whether the request may still be sent again (nothing of it consumed from the client). */
  replayable(): boolean;
  /** The failure as the client's doing (answered as such, never counted or logged against the
   * server), or undefined when it is the upstream's. */
  clientFailure?(code: FailureCode): FailureCode | undefined;
}

/**
 * How an attempt ended: the server that answered and its answer, or the failure to answer; with
 * the number of servers tried and the sticky outcome (the decision's, or `repin` once the request
 * left its pinned server because that failed).
 */
export type Outcome<T> =
  & ({ readonly server: Server; readonly value: T; readonly failure?: undefined } | {
    readonly failure: FailureCode;
    readonly server?: undefined;
    readonly value?: undefined;
  })
  & { readonly attempts: number; readonly sticky: StickyOutcome };

/** Logs one failed upstream attempt. */
export type UpstreamErrorLog = (server: Server, code: FailureCode, detail: string) => void;

/**
 * Tries the servers for one request until one answers or none may be tried.
 *
 * @param clock milliseconds since the epoch, for marking failures
 * @param log told of each failed attempt (not of client-side failures)
 */
export async function failover<T>(
  attempt: Attempt<T>,
  clock: () => number,
  log: UpstreamErrorLog | undefined,
): Promise<Outcome<T>> {
  const balancer = attempt.balancer;
  let pinned = attempt.pinned;
  let tried: Server[] | undefined;
  let lastFailure: FailureCode = "no_server";
  let sticky = attempt.sticky ?? "none";
  let attempts = 0;
  for (;;) {
    const server = pinned ?? balancer.pick(attempt.now, tried);
    if (server === undefined) return { failure: lastFailure, attempts, sticky };
    attempts++;
    try {
      const value = await attempt.send(server);
      balancer.health.recordSuccess(server);
      return { server, value, attempts, sticky };
    } catch (error) {
      const failure = toUpstreamError(error, "response");
      const clientSide = failure.code === "client_closed"
        ? failure.code
        : attempt.clientFailure?.(failure.code);
      if (clientSide !== undefined) return { failure: clientSide, attempts, sticky };
      const spec = FAILURES[failure.code];
      if (spec.marksServer) balancer.health.recordFailure(server, clock());
      log?.(server, failure.code, failure.message);
      if (
        !spec.beforeRequestSent || !attempt.replayable() ||
        (server === pinned && attempt.noFallback)
      ) return { failure: failure.code, attempts, sticky };
      lastFailure = failure.code;
      (tried ??= []).push(server);
      // The session leaves its server: the next one's Set-Cookie re-pins it.
      if (server === pinned) sticky = "repin";
      pinned = undefined;
    }
  }
}
