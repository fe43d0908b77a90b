/**
 * The request pipeline: route → sticky decision → balancer → forward (with retries) → stamp
 * the cookie. Web `Request` in, `Response` out, so the same code serves Deno and Bun.
 *
 * @module
 */
import {
  type GatewayConfig,
  matchRoute,
  type Server,
  type Sticky,
  type Upstream,
} from "../config/mod.ts";
import { type Balancer, createBalancers } from "../balancer/balancer.ts";
import { renderSetCookie } from "../cookie/set_cookie.ts";
import { findCookie } from "../cookie/read.ts";
import { resolveSticky } from "../sticky/resolve.ts";
import { type FailureCode, failureResponse, FAILURES, toUpstreamError } from "./errors.ts";
import {
  appendClientResponseHeaders,
  type ClientInfo,
  type HeaderPair,
  upstreamRequestHeaders,
} from "./headers.ts";
import { isStandardReason } from "./reason.ts";
import type { Transport, UpstreamRequest } from "./transport.ts";
import type { Connect } from "../runtime/contracts.ts";
import { isWebSocketUpgrade, WebSocketProxy } from "./websocket.ts";
import { clientFailure, guardedRequestBody, guardedResponseBody, refuseRequest } from "./limits.ts";

/** The config snapshot and the per-upstream state made for it; swapped whole on reload. */
interface Generation {
  readonly config: GatewayConfig;
  readonly balancers: ReadonlyMap<Upstream, Balancer>;
}

export interface GatewayOptions {
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  readonly now?: () => number;
  /** Called once per failed upstream attempt (for the log). */
  readonly onUpstreamError?: (server: Server, code: FailureCode, detail: string) => void;
  /** Sockets to upstreams for WebSocket sessions (websocket.ts); without it, `Upgrade`
   * requests are forwarded as plain HTTP, the `Upgrade` header dropped. */
  readonly connect?: Connect;
}

export class Gateway {
  #generation: Generation;
  readonly #transport: Transport;
  readonly #now: () => number;
  readonly #onUpstreamError: GatewayOptions["onUpstreamError"];
  /** WebSocket sessions, when `options.connect` is given. */
  readonly webSockets: WebSocketProxy | undefined;

  constructor(config: GatewayConfig, transport: Transport, options: GatewayOptions = {}) {
    this.#generation = { config, balancers: createBalancers(config) };
    this.#transport = transport;
    this.#now = options.now ?? Date.now;
    this.#onUpstreamError = options.onUpstreamError;
    this.webSockets = options.connect &&
      new WebSocketProxy(options.connect, {
        now: this.#now,
        onUpstreamError: this.#onUpstreamError,
      });
  }

  get config(): GatewayConfig {
    return this.#generation.config;
  }

  /** Answers one client request. Never rejects: failures become 4xx/5xx responses. */
  handle = async (request: Request, client: ClientInfo): Promise<Response> => {
    const { config, balancers } = this.#generation;
    const url = request.url;
    const slash = url.indexOf("/", url.indexOf("//") + 2);
    const target = url.slice(slash);
    // Deno hands HTTP/2 requests over without a Host header (the authority is in the URL only).
    const host = request.headers.get("host") ?? url.slice(url.indexOf("//") + 2, slash);
    const query = target.indexOf("?");
    const path = query < 0 ? target : target.slice(0, query);
    const route = matchRoute(config.routes, hostname(host), path);
    if (route === undefined) return failureResponse("no_route");

    const upstream = route.upstream;
    const balancer = balancers.get(upstream)!;
    const sticky = upstream.sticky;
    const noFallback = route.noFallback || (sticky?.noFallback ?? false);
    const now = this.#now();

    let pinned: Server | undefined;
    if (sticky !== undefined) {
      const decision = resolveSticky(
        sticky,
        findCookie(request.headers.get("cookie"), sticky.lowerName),
        noFallback,
        balancer,
        now,
      );
      if (decision.kind === "refuse") return failureResponse("pinned_unavailable");
      if (decision.kind === "pinned") pinned = decision.server;
    }

    // WebSocket handshakes (one header lookup on the hot path) are relayed by websocket.ts.
    if (
      request.headers.has("upgrade") && this.webSockets !== undefined &&
      isWebSocketUpgrade(request, client)
    ) {
      const limits = config.server;
      return this.webSockets.proxy(request, client, {
        target,
        balancer,
        sticky,
        pinned,
        noFallback,
        now,
        limits,
      });
    }

    const headers = upstreamRequestHeaders(request.headers, client, host);
    const refused = refuseRequest(request, target, headers, config.server);
    if (refused !== undefined) return failureResponse(refused);
    const guarded = guardedRequestBody(request, config.server);
    const upstreamRequest: UpstreamRequest = {
      method: request.method,
      target,
      headers,
      body: guarded?.body ?? request.body,
      client: request,
    };
    const replayable = request.body === null || request.headers.get("content-length") === "0";
    const limits = config.server;
    let tried: Server[] | undefined;
    let lastFailure: FailureCode = "no_server";
    for (;;) {
      const server = pinned ?? balancer.pick(now, tried);
      if (server === undefined) return failureResponse(lastFailure);
      try {
        const response = await this.#transport.send(server, upstreamRequest, limits);
        balancer.health.recordSuccess(server);
        const setCookie = sticky !== undefined && server !== pinned ? server.setCookie : undefined;
        return clientResponse(
          response.status,
          response.statusText,
          response.headers,
          guardedResponseBody(response.body, limits.idleTimeoutMs, server, this.#onUpstreamError),
          sticky,
          setCookie && renderSetCookie(setCookie, now),
        );
      } catch (error) {
        const failure = toUpstreamError(error, "response");
        const clientSide = clientFailure(request, guarded, failure.code);
        if (clientSide !== undefined) return failureResponse(clientSide);
        const spec = FAILURES[failure.code];
        if (spec.marksServer) balancer.health.recordFailure(server, this.#now());
        this.#onUpstreamError?.(server, failure.code, failure.message);
        // Only what never reached the upstream is tried elsewhere, and never a body (it is
        // streamed, not kept); a pinned session under no_fallback stays on its server.
        if (!spec.beforeRequestSent || !replayable || (server === pinned && noFallback)) {
          return failureResponse(failure.code);
        }
        lastFailure = failure.code;
        (tried ??= []).push(server);
        pinned = undefined;
      }
    }
  };
}

function clientResponse(
  status: number,
  statusText: string,
  upstreamHeaders: HeaderPair[],
  body: BodyInit | null,
  sticky: Sticky | undefined,
  setCookie: string | undefined,
): Response {
  const pairs: HeaderPair[] = [];
  // The module sends its Set-Cookie before the upstream's headers.
  if (setCookie !== undefined) pairs.push(["set-cookie", setCookie]);
  appendClientResponseHeaders(upstreamHeaders, sticky?.lowerName, pairs);
  const response = isStandardReason(status, statusText)
    ? new Response(body, { status })
    : new Response(body, { status, statusText });
  // Appended one by one rather than given in the init: Deno converts an init's header list
  // through WebIDL sequences, which cost 3-6 µs for six headers against ~1 µs this way (Bun:
  // 0.8 against 0.6; docs/benchmarks.md).
  const headers = response.headers;
  for (const pair of pairs) headers.append(pair[0], pair[1]);
  return response;
}

// The last Host header seen and its name part: nearly every request of a gateway names the same
// host, and comparing two short strings costs less than slicing and lower-casing again.
let lastHost = "";
let lastHostname = "";

/** The Host header's name part, lower case, without port or IPv6 brackets. */
function hostname(host: string | null): string {
  if (host === null) return "";
  if (host === lastHost) return lastHostname;
  const end = host.startsWith("[") ? host.indexOf("]") + 1 : host.indexOf(":");
  const name = (end <= 0 ? host : host.slice(0, end)).toLowerCase();
  lastHost = host;
  lastHostname = name;
  return name;
}
