/**
 * The client's response made from an upstream's answer: the sticky Set-Cookie first, then the
 * upstream's headers less hop-by-hop ones. Used for plain responses and for WebSocket
 * handshakes the upstream refused (anything but 101).
 *
 * @module
 */
import type { HeaderPair } from "./headers.ts";
import { appendClientResponseHeaders } from "./headers.ts";
import { isStandardReason } from "./reason.ts";
import type { Answer, ResponseParts } from "../runtime/contracts.ts";

/** What a reason phrase may hold (RFC 9112 §4: HTAB, SP, VCHAR, obs-text). */
const REASON = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The client's response; throws when it cannot be sent (a status or reason a `Response` refuses):
 * the caller answers `bad_response` then, outside any failure handling that would count it
 * against the server.
 *
 * @param stickyLowerName the sticky cookie's name in lower case (the upstream's own Set-Cookie
 *   for it is dropped), or undefined
 * @param setCookie the gateway's Set-Cookie, or undefined
 * @param partsOnly the listener writes {@link ResponseParts} (ClientInfo.readsParts): no
 *   Response is made
 */
export function clientResponse(
  status: number,
  statusText: string,
  upstreamHeaders: readonly HeaderPair[],
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null,
  stickyLowerName: string | undefined,
  setCookie: string | undefined,
  partsOnly = false,
): Answer {
  const pairs: HeaderPair[] = [];
  // The module sends its Set-Cookie before the upstream's headers.
  if (setCookie !== undefined) pairs.push(["set-cookie", setCookie]);
  appendClientResponseHeaders(upstreamHeaders, stickyLowerName, pairs);
  const standard = isStandardReason(status, statusText);
  if (partsOnly) {
    // What `new Response` would refuse, refused the same way.
    if (!(status >= 200 && status <= 599) || !Number.isInteger(status)) {
      throw new RangeError(`status ${status} is not one a response can have (200-599)`);
    }
    if (!standard && !REASON.test(statusText)) throw new TypeError("invalid reason phrase");
    const parts: ResponseParts = {
      status,
      statusText: standard ? "" : statusText,
      headers: pairs,
      body,
    };
    return parts;
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
