/**
 * What the gateway decided and did for one request, handed to `GatewayOptions.onRequestDone`
 * when its response body has ended (sent whole, or cut): the facts the access log and the metrics
 * are made of. Made only when somebody listens (a gateway without log and metrics pays for none
 * of it), except the request id, which goes upstream on every request.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { StickyOutcome } from "../sticky/resolve.ts";
import type { FailureCode } from "./errors.ts";
import type { ClientInfo, ProxyRequest } from "../runtime/contracts.ts";

/** One request's record. */
export interface RequestRecord {
  /** "http" for a request; a WebSocket gives "ws-open" at the upgrade and "ws-close" at its end. */
  readonly kind: "http" | "ws-open" | "ws-close";
  /** When the request reached the gateway, ms since the epoch. */
  readonly startMs: number;
  readonly clientAddress: string;
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly target: string;
  /** "HTTP/1.0", "HTTP/1.1" or "HTTP/2". */
  readonly protocol: string;
  /** The status sent to the client. */
  readonly status: number;
  /** Request body bytes read from the client (a WebSocket: message bytes from the client). */
  readonly bytesIn: number;
  /** Response body bytes sent to the client, nginx's $body_bytes_sent (a WebSocket: message
   * bytes to the client). */
  readonly bytesOut: number;
  /** From startMs to the end of the response body (or its cut), ms. */
  readonly durationMs: number;
  /** The route's upstream; undefined when no route matched. */
  readonly upstream: string | undefined;
  /** `Server.id` of the server that answered; undefined when none did. */
  readonly server: string | undefined;
  /** The status the upstream answered; undefined when none answered. */
  readonly upstreamStatus: number | undefined;
  /** ms from startMs to the upstream's response head; undefined when none came. */
  readonly upstreamHeaderMs: number | undefined;
  /** Servers the request was sent to (0 when it was answered before reaching one). */
  readonly attempts: number;
  readonly sticky: StickyOutcome;
  /** The catalogue code of the gateway's own answer; undefined when the upstream's went out. */
  readonly error: FailureCode | undefined;
  /** The client's X-Request-Id when it is a sane one, else one made here; sent upstream. */
  readonly requestId: string;
  readonly userAgent: string | undefined;
  readonly referer: string | undefined;
}

/** Receives each request's record (the access log and metrics; tests). */
export type RequestDone = (record: RequestRecord) => void;

/** Request ids made here: a random prefix per thread and a counter (unique, and cheap). */
const ID_PREFIX = `${randomBytes(6).toString("hex")}-`;
let idCounter = 0;

/** Longest client X-Request-Id kept as it is. */
const MAX_ID = 128;

/**
 * The request id: the client's `X-Request-Id` when it is 1-128 visible ASCII characters without
 * quotes or backslashes (it lands in logs and upstream headers), else a new one.
 *
 * @example
 * ```ts
 * requestId("abc-123"); // "abc-123"
 * requestId('bad "id"') !== 'bad "id"'; // true: a new one
 * ```
 */
export function requestId(fromClient: string | null): string {
  if (fromClient !== null && saneId(fromClient)) return fromClient;
  return ID_PREFIX + (++idCounter).toString(36);
}

function saneId(id: string): boolean {
  if (id.length === 0 || id.length > MAX_ID) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 34 || c === 92) return false;
  }
  return true;
}

/**
 * One request's record in the making: the gateway sets what it learns, {@link RequestTrace.end}
 * delivers it once.
 */
export class RequestTrace {
  readonly startMs: number;
  readonly #t0: number;
  upstream: string | undefined;
  server: string | undefined;
  upstreamStatus: number | undefined;
  upstreamHeaderMs: number | undefined;
  attempts = 0;
  sticky: StickyOutcome = "none";
  error: FailureCode | undefined;
  /** Counts the request body as it is read (RequestBody), when there is one. */
  bytesIn: () => number = zero;
  /** Called once when the exchange is over (a plain response's end, a WebSocket's close). */
  onEnd: (() => void) | undefined;
  #ended = false;

  constructor(
    readonly request: ProxyRequest,
    readonly client: ClientInfo,
    readonly target: string,
    readonly requestId: string,
    readonly done: RequestDone,
  ) {
    this.startMs = Date.now();
    this.#t0 = performance.now();
  }

  /** ms since the request arrived. */
  elapsed(): number {
    return performance.now() - this.#t0;
  }

  /** The upstream's response head came: its status, and when. */
  answered(status: number): void {
    this.upstreamStatus = status;
    this.upstreamHeaderMs = this.elapsed();
  }

  /** Delivers the record (once). */
  end(status: number, bytesOut: number, kind: RequestRecord["kind"] = "http"): void {
    if (this.#ended && kind === "http") return;
    this.#ended = true;
    if (kind !== "ws-open" && this.onEnd !== undefined) {
      this.onEnd();
      this.onEnd = undefined;
    }
    const headers = this.request.headers;
    this.done({
      kind,
      startMs: this.startMs,
      clientAddress: this.client.remoteAddress,
      method: this.request.method,
      target: this.target,
      protocol: this.request.httpVersion ?? "HTTP/1.1",
      status,
      bytesIn: this.bytesIn(),
      bytesOut,
      durationMs: this.elapsed(),
      upstream: this.upstream,
      server: this.server,
      upstreamStatus: this.upstreamStatus,
      upstreamHeaderMs: this.upstreamHeaderMs,
      attempts: this.attempts,
      sticky: this.sticky,
      error: this.error,
      requestId: this.requestId,
      userAgent: headers.get("user-agent") ?? undefined,
      referer: headers.get("referer") ?? undefined,
    });
  }
}

function zero(): number {
  return 0;
}
