/**
 * What a runtime's `fetch` rejection says about the connection, best effort: unlike a
 * {@link Connect}, `fetch` gives no error type that tells a refused connect or a failed TLS
 * handshake from a failure after the request went out, only messages and, on Bun, codes. Used by
 * the `fetch` fallback transport only (`upstream_client = "fetch"`); the HTTP/1.1 client gets
 * {@link ConnectFailure}s from the seam and needs none of this.
 *
 * @module
 */
import { ConnectFailure } from "../contracts.ts";

// Deno says "invalid peer certificate: UnknownIssuer" (in the cause), Bun gives OpenSSL codes
// (UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT, ...).
const TLS_FAILURE = /certificate|_CERT|CERT_|\bTLS\b|\bSSL\b|handshake|InvalidContentType/i;
const REFUSED = /refused|ECONNREFUSED/i;

/**
 * A `fetch` rejection as a ConnectFailure when it shows the connection was never made (refused,
 * TLS handshake failed), else undefined (it may have reached the upstream).
 */
export function fetchConnectFailure(error: unknown): ConnectFailure | undefined {
  if (error instanceof ConnectFailure) return error;
  const text = describe(error);
  if (TLS_FAILURE.test(text)) return new ConnectFailure("tls", text, { cause: error });
  if (REFUSED.test(text)) return new ConnectFailure("refused", text, { cause: error });
  return undefined;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.name}${typeof code === "string" ? ` ${code}` : ""}: ${error.message}${cause}`;
}
