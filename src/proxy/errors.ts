/**
 * The one catalogue of what can go wrong between the gateway and an upstream, and the status each
 * becomes: refused/reset/invalid → 502, timeouts → 504. Runtime errors (Deno's, Bun's, node's)
 * are mapped here and nowhere else.
 *
 * @module
 */

export type FailureCode =
  | "connect_refused"
  | "connect_timeout"
  | "connect_error"
  | "read_timeout"
  | "upstream_reset"
  | "bad_response"
  | "no_server"
  | "pinned_unavailable"
  | "no_route";

interface FailureSpec {
  readonly status: 404 | 502 | 504;
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
};

/** An upstream failure with its catalogue code; `detail` is for logs only, never for clients. */
export class UpstreamError extends Error {
  constructor(readonly code: FailureCode, readonly detail = "") {
    super(detail === "" ? FAILURES[code].message : `${FAILURES[code].message}: ${detail}`);
    this.name = "UpstreamError";
  }
}

/**
 * Maps whatever a transport threw to a catalogue entry.
 *
 * @param phase where it happened: while connecting, or after the request was (being) sent
 */
export function toUpstreamError(error: unknown, phase: "connect" | "response"): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const text = describeError(error);
  if (phase === "connect") {
    return /refused|ECONNREFUSED/i.test(text)
      ? new UpstreamError("connect_refused", text)
      : new UpstreamError("connect_error", text);
  }
  return new UpstreamError("upstream_reset", text);
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.name}${typeof code === "string" ? ` ${code}` : ""}: ${error.message}${cause}`;
}

/** The gateway's own short plain-text answer for a failure. */
export function failureResponse(code: FailureCode): Response {
  const spec = FAILURES[code];
  return new Response(
    `${spec.status} ${
      spec.status === 504 ? "Gateway Timeout" : spec.status === 404 ? "Not Found" : "Bad Gateway"
    }: ${spec.message}\n`,
    {
      status: spec.status,
      headers: { "content-type": "text/plain; charset=utf-8", "x-gateway-error": code },
    },
  );
}
