/**
 * `[server]` limits on clients and streams: `idle_timeout`, `client_max_body_size`,
 * `client_max_header_size` (enforced in `src/proxy/limits.ts`), and on client connections:
 * `client_header_timeout`, `keepalive_timeout`, `max_connections` (enforced by the listener in
 * `src/runtime/`). Defaults explained in README.
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

/** nginx's `client_header_timeout`: a request head must arrive whole within this. */
export const DEFAULT_CLIENT_HEADER_TIMEOUT_MS = 60_000;
/** nginx's `keepalive_timeout`: an idle keep-alive client connection is closed after this. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 75_000;
/** Open client connections per listener (per worker thread) beyond which new ones are refused;
 * about what a default 16 MiB-ish budget of idle connections costs, far above nginx's
 * `worker_connections 512`, and below a default `ulimit -n` of 65536 with upstream sockets. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

export interface ServerLimits {
  readonly idleTimeoutMs: number;
  /** A request head (from its first byte, or from the connection's start) must be whole in this. */
  readonly clientHeaderTimeoutMs: number;
  /** A keep-alive client connection with no request in flight is closed after this; 0 = never. */
  readonly keepaliveTimeoutMs: number;
  /** Open client connections per listener beyond which new ones are refused; 0 = no limit. */
  readonly maxConnections: number;
  readonly clientMaxBodySize: number;
  readonly clientMaxHeaderSize: number;
}

/** Reads the limit keys from the `[server]` table. */
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
    clientHeaderTimeoutMs: fields.duration(
      "client_header_timeout",
      DEFAULT_CLIENT_HEADER_TIMEOUT_MS,
      1,
    ),
    keepaliveTimeoutMs: fields.duration("keepalive_timeout", DEFAULT_KEEPALIVE_TIMEOUT_MS, 0),
    maxConnections: fields.integer("max_connections", DEFAULT_MAX_CONNECTIONS, 0, 1_000_000),
  };
}
