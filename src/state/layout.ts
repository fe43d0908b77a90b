/**
 * Where each value lives in the shared memory. One `SharedArrayBuffer` holds an Int32 region
 * (per-server records, then per-upstream records) and a Float64 region (per-server times).
 *
 * Each record is 64 bytes (16 Int32 or 8 Float64): one cache line, so threads writing the
 * counters of one server do not slow those writing another's (false sharing).
 *
 * @module
 */
import type { Upstream } from "../config/mod.ts";

/** Int32 cells per server record. */
export const SERVER_INTS = 16;
/** Float64 cells per server record. */
export const SERVER_FLOATS = 8;
/** Int32 cells per upstream record. */
export const UPSTREAM_INTS = 16;

// Int32 cells of a server record.
/** Admin state: 0 ready, 1 drain, 2 maint. */
export const ADMIN = 0;
/** Passive-health failures counted (max_fails). */
export const FAILS = 1;
/** Active health: see `ACTIVE_CODES`. */
export const ACTIVE = 2;
export const IN_FLIGHT = 3;
export const CONNECTIONS = 4;
/** The last checks' results as bits, newest in bit 0 (1 = passed). */
export const HISTORY_BITS = 5;
/** Checks done (saturates at HISTORY_LENGTH: only that many bits are kept). */
export const HISTORY_COUNT = 6;
/** HTTP status of the last check's answer; 0 when none came. */
export const LAST_CHECK_STATUS = 7;

// Float64 cells of a server record (ms since the epoch; 0 = never).
export const LAST_FAILURE_MS = 0;
export const LAST_STICKY_MS = 1;
export const LAST_CHECK_MS = 2;
export const LAST_CHECK_DURATION_MS = 3;
export const ADMIN_CHANGED_MS = 4;
export const ACTIVE_CHANGED_MS = 5;

// Int32 cells of an upstream record.
/** Bumped on every admin state change: threads rebuild their WRR cycles when they see it move. */
export const VERSION = 0;
export const PRIMARY_CURSOR = 1;
export const BACKUP_CURSOR = 2;

/** Check results kept per server (bits of one Int32). */
export const HISTORY_LENGTH = 32;

/** Sizes and region offsets for one config's upstreams. */
export interface Layout {
  readonly servers: number;
  readonly upstreams: number;
  /** Int32 index where the upstream records start. */
  readonly upstreamIntsAt: number;
  /** Byte offset of the Float64 region. */
  readonly floatsByteOffset: number;
  readonly byteLength: number;
  /** One line per upstream, `name id id …`: attaching a different config is refused. */
  readonly fingerprint: readonly string[];
}

/** The layout for these upstreams, in their config order (the same in every thread). */
export function computeLayout(upstreams: Iterable<Upstream>): Layout {
  let servers = 0;
  let count = 0;
  const fingerprint: string[] = [];
  for (const upstream of upstreams) {
    servers += upstream.servers.length;
    count++;
    fingerprint.push([upstream.name, ...upstream.servers.map((s) => s.id)].join(" "));
  }
  const upstreamIntsAt = servers * SERVER_INTS;
  const floatsByteOffset = (upstreamIntsAt + count * UPSTREAM_INTS) * 4;
  return {
    servers,
    upstreams: count,
    upstreamIntsAt,
    floatsByteOffset,
    byteLength: floatsByteOffset + servers * SERVER_FLOATS * 8,
    fingerprint,
  };
}
