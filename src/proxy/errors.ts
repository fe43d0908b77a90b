/**
 * The one catalogue of what can go wrong between the gateway and an upstream, and the status each
 * becomes: refused/reset/invalid → 502, timeouts → 504. Runtime errors are classified in the
 * seam (a Connect rejects with a {@link ConnectFailure}); they become catalogue codes here.
 *
 * @module
 */
import { ConnectFailure, type ConnectFailureKind } from "../runtime/contracts.ts";
import { fetchConnectFailure } from "../runtime/shared/fetch_errors.ts";

export type FailureCode =
  | "connect_refused"
  | "connect_timeout"
  | "connect_error"
  | "upstream_tls"
  | "read_timeout"
  | "upstream_reset"
  | "bad_response"
  | "no_server"
  | "pinned_unavailable"
  | "no_route"
  | "headers_too_large"
  | "body_too_large"
  | "bad_request"
  | "client_timeout"
  | "upstream_idle"
  | "client_closed"
  | "unsupported_transfer_coding"
  | "request_timeout"
  | "too_many_connections"
  | "internal_error";

interface FailureSpec {
  readonly status: 400 | 404 | 408 | 413 | 431 | 499 | 500 | 501 | 502 | 503 | 504;
  readonly message: string;
  /** Happened before the request reached the upstream: a request without a body may try another. */
  readonly beforeRequestSent: boolean;
  /** Counts toward the server's `max_fails`. */
  readonly marksServer: boolean;
}

export const FAILURES: Readonly<Record<FailureCode, FailureSpec>> = {
  connect_refused: {
    status: 502,
    message: "the upstream server refused the connection",
    beforeRequestSent: true,
    marksServer: true,
  },
  connect_timeout: {
    status: 504,
    message: "connecting to the upstream server timed out (server.connect_timeout)",
    beforeRequestSent: true,
    marksServer: true,
  },
  connect_error: {
    status: 502,
    message: "the upstream server could not be reached",
    beforeRequestSent: true,
    marksServer: true,
  },
  // Certificate not trusted (no `ca`, wrong `ca`), not for this name (`sni`), expired, or the
  // server does not speak TLS on that port; nginx counts a failed handshake as a failure too.
  upstream_tls: {
    status: 502,
    message: "the TLS handshake with the upstream server failed",
    beforeRequestSent: true,
    marksServer: true,
  },
  read_timeout: {
    status: 504,
    message: "the upstream server did not answer in time (server.read_timeout)",
    beforeRequestSent: false,
    marksServer: true,
  },
  upstream_reset: {
    status: 502,
    message: "the upstream server closed the connection before answering",
    beforeRequestSent: false,
    marksServer: true,
  },
  bad_response: {
    status: 502,
    message: "the upstream server sent an invalid HTTP response",
    beforeRequestSent: false,
    marksServer: false,
  },
  no_server: {
    status: 502,
    message: "no upstream server is available",
    beforeRequestSent: true,
    marksServer: false,
  },
  pinned_unavailable: {
    status: 502,
    message: "the server this session is pinned to is unavailable (no_fallback)",
    beforeRequestSent: true,
    marksServer: false,
  },
  no_route: {
    status: 404,
    message: "no route matches this request",
    beforeRequestSent: true,
    marksServer: false,
  },
  // The client's side (src/proxy/limits.ts): never counted against the upstream server.
  headers_too_large: {
    status: 431,
    message: "the request headers are larger than server.client_max_header_size",
    beforeRequestSent: true,
    marksServer: false,
  },
  body_too_large: {
    status: 413,
    message: "the request body is larger than server.client_max_body_size",
    beforeRequestSent: true,
    marksServer: false,
  },
  // Framing or headers that break HTTP/1.1 (RFC 9112): the request is never forwarded, the
  // client connection is closed after the answer (where its next request starts is unknown).
  bad_request: {
    status: 400,
    message: "the request is malformed (its framing or headers break HTTP/1.1)",
    beforeRequestSent: false,
    marksServer: false,
  },
  client_timeout: {
    status: 408,
    message: "the client sent nothing for server.idle_timeout",
    beforeRequestSent: false,
    marksServer: false,
  },
  // A response body that went silent for server.idle_timeout: cut; only the log sees the code.
  upstream_idle: {
    status: 504,
    message: "the upstream server sent nothing for server.idle_timeout",
    beforeRequestSent: false,
    marksServer: false,
  },
  // A Transfer-Encoding other than exactly "chunked" (RFC 9112 §6.1: 501).
  unsupported_transfer_coding: {
    status: 501,
    message: "the request's Transfer-Encoding is not supported (only chunked is)",
    beforeRequestSent: true,
    marksServer: false,
  },
  // nginx's client_header_timeout: the head did not arrive whole in time.
  request_timeout: {
    status: 408,
    message: "the request head did not arrive within server.client_header_timeout",
    beforeRequestSent: true,
    marksServer: false,
  },
  too_many_connections: {
    status: 503,
    message: "too many client connections are open on this listener (max_connections); try again",
    beforeRequestSent: true,
    marksServer: false,
  },
  // A fault of the gateway itself; the error goes to the log (as the cause), never to the client.
  internal_error: {
    status: 500,
    message: "the gateway failed to handle the request",
    beforeRequestSent: false,
    marksServer: false,
  },
  // nginx's 499: the client went away first; nobody receives this answer.
  client_closed: {
    status: 499,
    message: "the client closed the connection",
    beforeRequestSent: false,
    marksServer: false,
  },
};

/**
 * An upstream failure with its catalogue code; `detail` and `cause` are for logs only, never for
 * clients (the message, which the log prints, names the cause).
 */
export class UpstreamError extends Error {
  constructor(readonly code: FailureCode, readonly detail = "", options?: { cause?: unknown }) {
    const message = detail === "" ? FAILURES[code].message : `${FAILURES[code].message}: ${detail}`;
    super(
      options?.cause === undefined ? message : `${message} (${describeError(options.cause)})`,
      options,
    );
    this.name = "UpstreamError";
  }
}

const CONNECT_CODES: Readonly<Record<ConnectFailureKind, FailureCode>> = {
  refused: "connect_refused",
  unreachable: "connect_error",
  timeout: "connect_timeout",
  tls: "upstream_tls",
  other: "connect_error",
};

/**
 * Maps whatever a transport threw to a catalogue entry: an UpstreamError as it is, the seam's
 * ConnectFailure by its kind; anything else is a connect error while connecting (after the
 * seam's best-effort reading of a `fetch` rejection) and a reset after.
 *
 * @param phase where it happened: while connecting, or after the request was (being) sent
 */
export function toUpstreamError(error: unknown, phase: "connect" | "response"): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const failure = error instanceof ConnectFailure
    ? error
    : phase === "connect"
    ? fetchConnectFailure(error)
    : undefined;
  if (failure !== undefined) {
    return new UpstreamError(CONNECT_CODES[failure.kind], describeError(failure));
  }
  return new UpstreamError(
    phase === "connect" ? "connect_error" : "upstream_reset",
    describeError(error),
  );
}

/** An error as one line for the log: name, code, message and its cause's message. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.name}${typeof code === "string" ? ` ${code}` : ""}: ${error.message}${cause}`;
}

const STATUS_TEXT: Readonly<Record<FailureSpec["status"], string>> = {
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Each failure's answer text and its length in bytes, made once. */
const ANSWERS = new Map<FailureCode, { readonly text: string; readonly length: string }>();

/** The length in bytes of the gateway's answer for `code` (its record's bytes sent). */
export function failureBodyLength(code: FailureCode): number {
  return Number(answerFor(code).length);
}

function answerFor(code: FailureCode): { readonly text: string; readonly length: string } {
  let answer = ANSWERS.get(code);
  if (answer === undefined) {
    const spec = FAILURES[code];
    const text = `${spec.status} ${STATUS_TEXT[spec.status]}: ${spec.message}\n`;
    answer = { text, length: String(new TextEncoder().encode(text).length) };
    ANSWERS.set(code, answer);
  }
  return answer;
}

/**
 * The gateway's own short plain-text answer for a failure, with its Content-Length (as the
 * runtimes' servers sent it; the raw-socket front keeps a given length instead of chunking).
 */
export function failureResponse(code: FailureCode): Response {
  const answer = answerFor(code);
  return new Response(answer.text, {
    status: FAILURES[code].status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "content-length": answer.length,
      "x-gateway-error": code,
    },
  });
}
