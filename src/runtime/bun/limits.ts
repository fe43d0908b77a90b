/**
 * `Bun.serve`'s own limits, set from the config (part of the runtime seam):
 *
 * - `idleTimeout` (seconds, at most 255) closes a connection after that long without bytes *from
 *   the client*: Bun does not count what it writes, so it would cut an SSE stream that is
 *   flowing. It is therefore set to `idle_timeout` (capped at 255 s) for the time between
 *   requests only, and switched off for each request with `server.timeout(request, 0)`: in-flight
 *   exchanges are watched by the proxy (`read_timeout`, `idle_timeout` in src/proxy/limits.ts),
 *   the same way as on Deno.
 * - The request head limit is process-wide (`http.maxHeaderSize`, 16 KiB by default, beyond
 *   which Bun answers 431 without a body). It is raised above `client_max_header_size` so that
 *   the gateway answers with its own 431; Deno's fixed limit is 64 KiB (400 beyond it).
 *
 * @module
 */

/** Bun's largest `idleTimeout`. */
const BUN_MAX_IDLE_SECONDS = 255;

/** `Bun.serve`'s `idleTimeout` for the gateway's `idle_timeout` (0 = none). */
export function bunIdleSeconds(idleTimeoutMs: number | undefined): number {
  if (idleTimeoutMs === undefined || idleTimeoutMs === 0) return 0;
  return Math.min(BUN_MAX_IDLE_SECONDS, Math.max(1, Math.ceil(idleTimeoutMs / 1000)));
}

/**
 * The head size Bun's parser should allow so that heads somewhat over `clientMaxHeaderSize`
 * still reach the gateway, which answers them with its own 431: twice the limit, and at least
 * Deno's fixed 64 KiB so both runtimes pass the same heads.
 */
export function bunParserHeadLimit(clientMaxHeaderSize: number): number {
  return Math.max(64 * 1024, 2 * clientMaxHeaderSize);
}

/** Raises Bun's process-wide request head limit (never lowers it). */
export async function raiseBunHeadLimit(clientMaxHeaderSize: number): Promise<void> {
  const http = (await import("node:http")).default;
  const wanted = bunParserHeadLimit(clientMaxHeaderSize);
  // deno-lint-ignore no-explicit-any
  const settable = http as any;
  if ((settable.maxHeaderSize ?? 0) < wanted) settable.maxHeaderSize = wanted;
}
