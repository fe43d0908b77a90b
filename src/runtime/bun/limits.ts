/**
 * Bun's `node:http` request head limit, set from the config for the TLS listener
 * (bun/tls_server.ts; part of the runtime seam). It is process-wide (`http.maxHeaderSize`, 16 KiB
 * by default, beyond which Bun drops or refuses the request), so it is raised above
 * `client_max_header_size`: the gateway then answers with its own 431.
 *
 * @module
 */

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
