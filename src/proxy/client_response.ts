/**
 * The client's Response made from an upstream's answer: the sticky Set-Cookie first, then the
 * upstream's headers less hop-by-hop ones. Used for plain responses and for WebSocket
 * handshakes the upstream refused (anything but 101).
 *
 * @module
 */
import type { HeaderPair } from "./headers.ts";
import { appendClientResponseHeaders } from "./headers.ts";
import { isStandardReason } from "./reason.ts";
import { type PartsResponse, RESPONSE_PARTS } from "../runtime/contracts.ts";

/**
 * The client's Response; throws when the runtime refuses what the upstream sent (a status or
 * header it cannot represent): the caller answers `bad_response` then, outside any failure
 * handling that would count it against the server.
 *
 * @param stickyLowerName the sticky cookie's name in lower case (the upstream's own Set-Cookie
 *   for it is dropped), or undefined
 * @param setCookie the gateway's Set-Cookie, or undefined
 * @param partsOnly the listener writes the {@link RESPONSE_PARTS} (ClientInfo.readsParts): the
 *   Response gets neither headers nor body
 */
export function clientResponse(
  status: number,
  statusText: string,
  upstreamHeaders: readonly HeaderPair[],
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null,
  stickyLowerName: string | undefined,
  setCookie: string | undefined,
  partsOnly = false,
): Response {
  const pairs: HeaderPair[] = [];
  // The module sends its Set-Cookie before the upstream's headers.
  if (setCookie !== undefined) pairs.push(["set-cookie", setCookie]);
  appendClientResponseHeaders(upstreamHeaders, stickyLowerName, pairs);
  const standard = isStandardReason(status, statusText);
  // With `partsOnly` the listener writes the parts (ClientInfo.readsParts): the Response only
  // checks the status and reason the runtime would refuse, and carries them.
  if (partsOnly) {
    const response: PartsResponse = standard
      ? new Response(null, { status })
      : new Response(null, { status, statusText });
    response[RESPONSE_PARTS] = {
      status,
      statusText: standard ? "" : statusText,
      headers: pairs,
      body,
    };
    return response;
  }
  const response = standard
    ? new Response(body, { status })
    : new Response(body, { status, statusText });
  // Appended one by one rather than given in the init: Deno converts an init's header list
  // through WebIDL sequences, which cost 3-6 µs for six headers against ~1 µs this way (Bun:
  // 0.8 against 0.6; docs/benchmarks.md).
  const headers = response.headers;
  for (const pair of pairs) headers.append(pair[0], pair[1]);
  return response;
}

/** Drops a body that will not be sent: a stream is cancelled (closing its upstream connection). */
export function discardBody(body: ReadableStream<Uint8Array> | Uint8Array | null): void {
  if (body instanceof ReadableStream) body.cancel().catch(() => {});
}
