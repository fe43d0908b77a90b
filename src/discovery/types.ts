/**
 * DNS discovery's data: a server entry `{ dns = "app.internal:8080", type = "A" }` as the config
 * reads it ({@link DnsEntry}), and the answers the main thread found for it ({@link Discovered}),
 * which every thread parses the config with, so all of them build the same server list.
 *
 * @module
 */

/** The record types a `dns` server entry may ask for. */
export type DnsType = "A" | "AAAA" | "SRV";

/** One `dns` server entry of an upstream, validated. */
export interface DnsEntry {
  /** `upstreams.NAME.servers[i]`, for messages. */
  readonly keyPath: string;
  readonly upstream: string;
  /** The name asked for: a host name (A, AAAA) or the SRV record's name. */
  readonly name: string;
  readonly type: DnsType;
  /** The port of every address (A, AAAA); SRV records bring their own (0 here). */
  readonly port: number;
  /** What the answers are filed under in {@link Discovered}: `type name` (see {@link queryKey}). */
  readonly query: string;
  /** Re-resolution period when the TTL does not say otherwise. */
  readonly intervalMs: number;
  /** The TTL-driven period is clamped to [minIntervalMs, maxIntervalMs] (both default to
   * intervalMs: a fixed period). */
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  /** An address gone from the answers stays this long in `drain`; 0 = removed at once. */
  readonly vanishGraceMs: number;
  /** At most this many servers from one answer (the rest are left out, and logged). */
  readonly maxServers: number;
  /** For every address (A, AAAA); SRV weights come from the records. */
  readonly weight: number;
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  /** Every address is a backup. */
  readonly backup: boolean;
}

/** One address an answer gave. */
export interface DiscoveredAddress {
  /** IPv4 or IPv6 text, without brackets. */
  readonly ip: string;
  /** SRV: the record's port (A/AAAA take the entry's). */
  readonly port?: number;
  /** SRV: the record's priority (lower is preferred) and weight. */
  readonly priority?: number;
  readonly weight?: number;
  /** Gone from the latest answer, kept (in `drain`) until `vanish_grace` has passed. */
  readonly vanishing?: boolean;
}

/**
 * The answers found, by {@link DnsEntry.query}: what a config generation is parsed with. Absent
 * query = nothing resolved yet (the entry gives no servers). A Map (structured-clone safe: it is
 * posted to the worker threads with the config text).
 */
export type Discovered = ReadonlyMap<string, readonly DiscoveredAddress[]>;

/**
 * The key answers are filed under: the record type and the name, lower case (DNS names are
 * case-insensitive), so entries asking the same question share one lookup.
 *
 * @example
 * ```ts
 * import { queryKey } from "./types.ts";
 * if (queryKey("A", "App.Internal") !== "A app.internal") throw new Error();
 * ```
 */
export function queryKey(type: DnsType, name: string): string {
  return `${type} ${name.toLowerCase()}`;
}
