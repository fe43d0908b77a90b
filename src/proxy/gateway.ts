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
import { stickySetCookie } from "../sticky/issue.ts";
import { decideSticky, type StickyOutcome } from "../sticky/resolve.ts";
import { describeError, failureBodyLength, type FailureCode, failureResponse } from "./errors.ts";
import { type ClientInfo, upstreamRequestHeaders } from "./headers.ts";
import {
  RequestBody,
  type Transport,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./transport.ts";
import type { Answer, ProxyRequest, RequestHeaders } from "../runtime/contracts.ts";
import type { Http1Transport } from "./http1.ts";
import { isWebSocketUpgrade, WebSocketProxy } from "./websocket.ts";
import { clientFailure, guardedRequestBody, guardResponseBody, refuseRequest } from "./limits.ts";
import { failover, type Outcome } from "./failover.ts";
import { parseLength } from "./http1_syntax.ts";
import { clientResponse, discardBody } from "./client_response.ts";
import { type RequestDone, requestId, RequestTrace } from "./request_record.ts";
import type { SharedState } from "../state/shared_state.ts";
import { Retirement } from "./retirement.ts";

/** The config snapshot and the per-upstream state made for it; swapped whole on reload. */
interface Generation {
  readonly config: GatewayConfig;
  readonly balancers: ReadonlyMap<Upstream, Balancer>;
  /** With `reload_max_age`: its response bodies and WebSockets, to cut once it is replaced. */
  readonly retirement: Retirement | undefined;
}

function generation(config: GatewayConfig, state: SharedState | undefined): Generation {
  return {
    config,
    balancers: createBalancers(config, state),
    retirement: config.server.reloadMaxAgeMs > 0 ? new Retirement() : undefined,
  };
}

export interface GatewayOptions {
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  readonly now?: () => number;
  /** Called once per failed upstream attempt (for the log). */
  readonly onUpstreamError?: (server: Server, code: FailureCode, detail: string) => void;
  /** Called once per request when its response body has ended (a WebSocket: at the upgrade and
   * at its close): the record the access log and metrics are made of (request_record.ts). */
  readonly onRequestDone?: RequestDone;
  /** The HTTP/1.1 client WebSocket handshakes go through (websocket.ts; the gateway's own
   * transport when it is one); without it, `Upgrade` requests are forwarded as plain HTTP, the
   * `Upgrade` header dropped. */
  readonly webSocketTransport?: Http1Transport;
  /** The state shared by all threads (state/shared_state.ts); absent = one for this gateway. */
  readonly state?: SharedState;
}

export class Gateway {
  #generation: Generation;
  readonly #transport: Transport;
  readonly #now: () => number;
  readonly #onUpstreamError: GatewayOptions["onUpstreamError"];
  readonly #onRequestDone: RequestDone | undefined;
  /** WebSocket sessions, when `options.webSocketTransport` is given. */
  readonly webSockets: WebSocketProxy | undefined;

  constructor(config: GatewayConfig, transport: Transport, options: GatewayOptions = {}) {
    this.#generation = generation(config, options.state);
    this.#transport = transport;
    this.#now = options.now ?? Date.now;
    this.#onUpstreamError = options.onUpstreamError;
    this.#onRequestDone = options.onRequestDone;
    this.webSockets = options.webSocketTransport &&
      new WebSocketProxy(options.webSocketTransport, {
        now: this.#now,
        onUpstreamError: this.#onUpstreamError,
      });
  }

  get config(): GatewayConfig {
    return this.#generation.config;
  }

  /**
   * Serves the next generation (a reload): requests that arrive from now on use `config` and
   * balancers on `state` (the new generation's shared state); those under way finish on the
   * generation they began with, WebSocket sessions included (for at most the old config's
   * `reload_max_age` when it sets one). The upstream client stays.
   */
  reload(config: GatewayConfig, state: SharedState): void {
    const old = this.#generation;
    this.#generation = generation(config, state);
    old.retirement?.retire(old.config.server.reloadMaxAgeMs);
  }

  /** Answers one client request. Never rejects: failures become 4xx/5xx responses. */
  handle = async (request: ProxyRequest, client: ClientInfo): Promise<Answer> => {
    const current = this.#generation;
    const { config, balancers, retirement } = current;
    const url = request.url;
    const slash = url.indexOf("/", url.indexOf("//") + 2);
    const target = url.slice(slash);
    const id = requestId(request.headers.get("x-request-id"));
    const trace = this.#onRequestDone === undefined
      ? undefined
      : new RequestTrace(request, client, target, id, this.#onRequestDone);
    // First, as for any request on any listener: a GET/HEAD declaring a body it does not carry.
    const framed = frameBody(request);
    if (framed === undefined) return this.#failed("bad_request", trace);
    // Deno hands HTTP/2 requests over without a Host header (the authority is in the URL only).
    const host = request.headers.get("host") ?? url.slice(url.indexOf("//") + 2, slash);
    const query = target.indexOf("?");
    const path = query < 0 ? target : target.slice(0, query);
    const route = matchRoute(config.routes, hostname(host), routingPath(path));
    if (route === undefined) return this.#failed("no_route", trace);

    const upstream = route.upstream;
    if (trace !== undefined) trace.upstream = upstream.name;
    const balancer = balancers.get(upstream)!;
    const sticky = upstream.sticky;
    const noFallback = route.noFallback || (sticky?.noFallback ?? false);
    const now = this.#now();

    let pinned: Server | undefined;
    // The pinned server when its client needs no Set-Cookie (not a legacy value, a route the own
    // cookie disagrees with, or nginx's format, which sends one on every response).
    let cookieKept: Server | undefined;
    let decided: StickyOutcome = "none";
    // A valid token's issue time, kept when it is re-issued (rotation, refresh).
    let issuedS: number | undefined;
    if (sticky !== undefined) {
      const decision = decideSticky(sticky, request.headers, target, noFallback, balancer, now);
      decided = decision.outcome;
      if (trace !== undefined) trace.sticky = decided;
      if (decision.kind === "refuse") return this.#failed("pinned_unavailable", trace);
      if (decision.kind === "pinned") {
        pinned = decision.server;
        if (!decision.reissue) cookieKept = pinned;
        issuedS = decision.issuedS;
        // When this server's clients were last seen (a drain is over when they stop coming).
        if (trace !== undefined) balancer.shared.markSticky(balancer.slot(pinned), now);
      }
    }

    // WebSocket handshakes (one header lookup on the hot path) are relayed by websocket.ts.
    if (
      request.headers.has("upgrade") && this.webSockets !== undefined &&
      isWebSocketUpgrade(request, client)
    ) {
      const { outcome, upgraded } = await this.webSockets.proxy(request, client, {
        target,
        balancer,
        sticky,
        pinned,
        cookieKept,
        issuedS,
        decided,
        noFallback,
        now,
        limits: config.server,
        requestId: id,
        retirement,
        onClose: trace && ((bytesIn, bytesOut) => {
          trace.bytesIn = () => bytesIn;
          trace.end(101, bytesOut, "ws-close");
        }),
      });
      if (trace !== undefined) {
        trace.attempts = outcome.attempts;
        trace.sticky = outcome.sticky;
      }
      if (outcome.failure !== undefined) return this.#failed(outcome.failure, trace);
      if (upgraded === undefined) {
        // The upstream refused the upgrade: its answer is relayed as any response.
        const cookie = { sticky, kept: cookieKept, pinned, issuedS };
        return this.#relay(outcome, request, client, cookie, now, trace, current);
      }
      if (trace !== undefined) {
        // A session is in flight at its server until it closes (a drain waits for it).
        const slot = balancer.slot(outcome.server);
        balancer.shared.addInFlight(slot, 1);
        trace.onEnd = () => balancer.shared.addInFlight(slot, -1);
        trace.server = outcome.server.id;
        trace.answered(101);
        trace.end(101, 0, "ws-open");
      }
      return upgraded;
    }

    const headers = upstreamRequestHeaders(request.headers, client, host, id, sticky?.hideCookie);
    const refused = refuseRequest(request, target, headers, config.server);
    if (refused !== undefined) return this.#failed(refused, trace);
    const guarded = guardedRequestBody(request, config.server);
    const stream = guarded?.body ?? request.body;
    // A declared empty body is not read at all: the request stays replayable.
    const body = stream === null || framed === 0 ? null : new RequestBody(stream);
    if (trace !== undefined && body !== null) trace.bytesIn = () => body.bytes;
    const upstreamRequest: UpstreamRequest = {
      method: request.method,
      target,
      headers,
      body,
      bodyLength: framed === NO_BODY ? undefined : framed,
      client: request,
    };
    const limits = config.server;
    const transport = this.#transport;
    const outcome = await failover(
      {
        balancer,
        pinned,
        noFallback,
        sticky: decided,
        now,
        send: trace === undefined
          ? (server) => transport.send(server, upstreamRequest, limits)
          : (server) =>
            inFlight(balancer, server, trace, transport.send(server, upstreamRequest, limits)),
        replayable: () => body === null || !body.consumed,
        clientFailure: (code) => clientFailure(request, guarded, code),
      },
      this.#now,
      this.#onUpstreamError,
    );
    if (trace !== undefined) {
      trace.attempts = outcome.attempts;
      trace.sticky = outcome.sticky;
    }
    if (outcome.failure !== undefined) return this.#failed(outcome.failure, trace);
    const cookie = { sticky, kept: cookieKept, pinned, issuedS };
    return this.#relay(outcome, request, client, cookie, now, trace, current);
  };

  /**
   * The client's response made from the upstream's: the sticky Set-Cookie unless the server is
   * `cookie.kept` (pinned by a cookie that needs no new one), hop-by-hop headers dropped, the body
   * watched and counted.
   */
  #relay(
    outcome: Outcome<UpstreamResponse> & { readonly server: Server },
    request: ProxyRequest,
    client: ClientInfo,
    cookie: ResponseCookie,
    now: number,
    trace: RequestTrace | undefined,
    current: Generation,
  ): Answer {
    const { server, value: response } = outcome;
    const sticky = cookie.sticky;
    const setCookie = sticky !== undefined && server !== cookie.kept
      ? stickySetCookie(sticky, server, now, server === cookie.pinned ? cookie.issuedS : undefined)
      : undefined;
    if (trace !== undefined) {
      trace.server = server.id;
      trace.answered(response.status);
    }
    // The request's own generation: a reload since must not change its limits.
    const answerBody = this.#responseBody(response.body, current, server, trace);
    // Outside the failure handling above: what the runtime refuses to put in a Response is a bad
    // answer, never a transport failure that would count against the server.
    let answer: Answer;
    try {
      answer = clientResponse(
        response.status,
        response.statusText,
        response.headers,
        answerBody,
        sticky?.lowerName,
        setCookie,
        client.readsParts,
      );
    } catch (error) {
      discardBody(answerBody);
      this.#onUpstreamError?.(
        server,
        "bad_response",
        `not a valid response: ${describeError(error)}`,
      );
      return this.#failed("bad_response", trace);
    }
    // Bytes that arrived whole (or none) are sent as they are: the record is complete now.
    if (trace !== undefined && !(answerBody instanceof ReadableStream)) {
      const sent = request.method === "HEAD" || answerBody === null ? 0 : answerBody.length;
      trace.end(answer.status, sent);
    }
    return answer;
  }

  /**
   * The upstream's body as the client gets it: a stream is watched for `idle_timeout` and, when
   * there is a trace, counted (the record goes out when it has ended or was cut).
   */
  #responseBody(
    body: UpstreamResponse["body"],
    { config, retirement }: Generation,
    server: Server,
    trace: RequestTrace | undefined,
  ): UpstreamResponse["body"] {
    if (!(body instanceof ReadableStream)) return body;
    const onEnd = trace === undefined
      ? undefined
      : (bytes: number) => trace.end(trace.upstreamStatus!, bytes);
    const idleMs = config.server.idleTimeoutMs;
    if (idleMs === 0 && onEnd === undefined && retirement === undefined) return body;
    return guardResponseBody(
      body,
      idleMs,
      (silent) => {
        if (silent === "upstream") {
          this.#onUpstreamError?.(server, "upstream_idle", "response body cut");
        }
      },
      onEnd,
      retirement,
    );
  }

  /** The gateway's own answer for `code`, recorded when there is a trace. */
  #failed(code: FailureCode, trace: RequestTrace | undefined): Response {
    const response = failureResponse(code);
    if (trace !== undefined) {
      trace.error = code;
      trace.end(response.status, failureBodyLength(code));
    }
    return response;
  }
}

/** What decides a response's sticky Set-Cookie (see `#relay`). */
interface ResponseCookie {
  readonly sticky: Sticky | undefined;
  /** Pinned by a cookie that needs no new one: no Set-Cookie when it answers. */
  readonly kept: Server | undefined;
  readonly pinned: Server | undefined;
  /** The pinned token's issue time, kept when it is re-issued. */
  readonly issuedS: number | undefined;
}

/**
 * Counts a request in flight at its server from its sending until its record ends (the response
 * body's end; a WebSocket's close), or until the attempt fails.
 */
async function inFlight<T>(
  balancer: Balancer,
  server: Server,
  trace: RequestTrace,
  sending: Promise<T>,
): Promise<T> {
  const slot = balancer.slot(server);
  const shared = balancer.shared;
  shared.addInFlight(slot, 1);
  try {
    const answer = await sending;
    trace.onEnd = () => shared.addInFlight(slot, -1);
    return answer;
  } catch (error) {
    shared.addInFlight(slot, -1);
    throw error;
  }
}

/** No Content-Length (a body, if any, is of unknown length: sent chunked). */
const NO_BODY = -1;

/**
 * The body's length as the client declared it (NO_BODY without a Content-Length), or undefined
 * when the request must be refused: a GET or HEAD whose head declares a body the runtime did not
 * hand over (forwarded with its header, the next request on the upstream connection would be
 * read as that body). The front refuses these before the handler; this is the one check for the
 * runtimes' own servers (TLS listeners).
 */
function frameBody(request: ProxyRequest): number | undefined {
  const headers = request.headers;
  const length = declaredLength(headers);
  if (request.body !== null) return length ?? NO_BODY;
  const method = request.method;
  if (method === "GET" || method === "HEAD") {
    if ((length !== NO_BODY && length !== 0) || headers.has("transfer-encoding")) return undefined;
  }
  return length === 0 ? 0 : NO_BODY;
}

/** The Content-Length header as a number; NO_BODY without one, undefined when not 1*DIGIT. */
function declaredLength(headers: RequestHeaders): number | undefined {
  const value = headers.get("content-length");
  if (value === null) return NO_BODY;
  const length = parseLength(value);
  return length < 0 ? undefined : length;
}

/**
 * The path routes are matched on: with dot segments (`/.`, `/..`, `%2e`) resolved as the
 * upstream will resolve them, so that `/api/../admin` is routed as `/admin`. The target itself
 * goes upstream as the client sent it (nginx's `proxy_pass` without a URI does the same).
 */
function routingPath(path: string): string {
  if (path.indexOf("/.") < 0 && path.indexOf("%2") < 0 && path.indexOf("\\") < 0) return path;
  if (!DOT_SEGMENT.test(path)) return path;
  return new URL(path, "http://h").pathname;
}

/** A dot segment as WHATWG URL reads one ("." or "%2e", after "/" or "\\"). */
const DOT_SEGMENT = /[\/\\](?:\.|%2e)/i;

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
