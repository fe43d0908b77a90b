/**
 * One health probe: `GET path` to one server through the gateway's own upstream client, the
 * answer's body read and dropped, all of it within the check's timeout.
 *
 * @module
 */
import type { Server } from "../../config/mod.ts";
import type { HealthCheckSettings } from "../../config/health.ts";
import { UpstreamError } from "../../proxy/errors.ts";
import type { HeaderPair } from "../../proxy/headers.ts";
import type { Transport, UpstreamResponse } from "../../proxy/transport.ts";

/** What one probe found. */
export interface ProbeResult {
  /** The answer's status; 0 when none came whole (see `error`). */
  readonly status: number;
  /** Why no whole answer came: an upstream failure code (`connect_refused`, `bad_response`, …)
   * or `timeout` (the check's timeout passed). */
  readonly error?: string;
  readonly durationMs: number;
}

const USER_AGENT = "sticky-gateway-health-check";

/**
 * Probes `server`. Never rejects. `stop` aborts it at once (the checker stopping); the check's
 * timeout covers connecting, the answer's head and its body, so a probe never outlives it.
 */
export async function probe(
  transport: Transport,
  server: Server,
  settings: HealthCheckSettings,
  stop: AbortSignal,
): Promise<ProbeResult> {
  const started = performance.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), settings.timeoutMs);
  const onStop = () => abort.abort();
  stop.addEventListener("abort", onStop, { once: true });
  const headers: HeaderPair[] = [
    ["Host", settings.host ?? server.address.text],
    ["User-Agent", USER_AGENT],
    ["Accept", "*/*"],
  ];
  try {
    const limits = { connectTimeoutMs: settings.timeoutMs, readTimeoutMs: settings.timeoutMs };
    // The abort signal stands for a client that went away: the transport then closes the
    // connection wherever the exchange is (connecting, waiting, sending the body).
    const response = await transport.send(server, {
      method: "GET",
      target: settings.path,
      headers,
      body: null,
      client: { signal: abort.signal },
    }, limits);
    await discard(response.body, abort.signal);
    return { status: response.status, durationMs: performance.now() - started };
  } catch (error) {
    const code = abort.signal.aborted
      ? "timeout"
      : error instanceof UpstreamError
      ? error.code
      : "internal_error";
    return { status: 0, error: code, durationMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
}

/** Reads a body to its end and drops it (the connection can then go back to the pool). */
async function discard(body: UpstreamResponse["body"], signal: AbortSignal): Promise<void> {
  if (body === null || body instanceof Uint8Array) return;
  const reader = body.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done } = await reader.read();
      // A cancel on timeout ends the read as if the body were done: it was not.
      if (signal.aborted) throw new Error("aborted");
      if (done) return;
    }
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}
