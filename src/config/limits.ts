/**
 * `[server]` limits on clients and streams: `idle_timeout`, `client_max_body_size`,
 * `client_max_header_size` (enforced in `src/proxy/limits.ts`; defaults explained in README).
 *
 * @module
 */
import type { Fields } from "./fields.ts";
import { readSize } from "./size.ts";

/** Envoy's stream idle timeout: longer than any common load balancer's, so never the first cut. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Large enough for photo, document and short video uploads; the request limit of Cloudflare's
 * common plans, which many apps are already built around. nginx's 1m refuses most uploads. */
export const DEFAULT_CLIENT_MAX_BODY_SIZE = 100 * 1024 ** 2;
/** nginx's total for a request head (`large_client_header_buffers 4 8k`). */
export const DEFAULT_CLIENT_MAX_HEADER_SIZE = 32 * 1024;

export interface ServerLimits {
  readonly idleTimeoutMs: number;
  readonly clientMaxBodySize: number;
  readonly clientMaxHeaderSize: number;
}

/** Reads the three keys from the `[server]` table. */
export function readServerLimits(fields: Fields): ServerLimits {
  return {
    idleTimeoutMs: fields.duration("idle_timeout", DEFAULT_IDLE_TIMEOUT_MS, 0),
    clientMaxBodySize: readSize(
      fields,
      "client_max_body_size",
      DEFAULT_CLIENT_MAX_BODY_SIZE,
      1,
      1024 ** 4,
      true,
    ),
    clientMaxHeaderSize: readSize(
      fields,
      "client_max_header_size",
      DEFAULT_CLIENT_MAX_HEADER_SIZE,
      1024,
      1024 ** 2,
    ),
  };
}
