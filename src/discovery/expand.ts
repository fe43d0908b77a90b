/**
 * A `dns` entry and its answers → the servers it stands for (pure): one per address, whose
 * address text `ip:port` (`[v6]:port`) is its id and its cookie input, so every instance that
 * sees the same answer builds the same servers and the same cookie values.
 *
 * SRV priorities become the two tiers the balancer has: the records of the best (lowest)
 * priority are primaries, all others backups, which take new clients only while no primary can
 * (RFC 2782's "lower ones only when no higher one is available", with the lower tiers pooled
 * into one). SRV weights are the servers' weights (0 counts as 1: RFC 2782's "very small chance"
 * of a zero weight is not a weight a smooth round robin can give).
 *
 * @module
 */
import { isIP } from "node:net";
import type { Address } from "../config/address.ts";
import type { ServerState } from "../config/types.ts";
import type { DiscoveredAddress, DnsEntry } from "./types.ts";

/** A server a `dns` entry stands for. */
export interface DiscoveredServer {
  readonly address: Address;
  readonly weight: number;
  readonly backup: boolean;
  /** `drain` while it is kept past its disappearance (vanish_grace), else `ready`. */
  readonly state: ServerState;
}

/** The servers of one entry, and how many addresses `max_servers` left out. */
export interface Expansion {
  readonly servers: readonly DiscoveredServer[];
  readonly leftOut: number;
}

/**
 * The servers `entry` stands for given its answer (none when nothing was resolved yet), in a
 * stable order (priority, then address text: the same answer in any order gives the same
 * rotation), at most `max_servers` of them (live addresses before vanishing ones).
 *
 * @example
 * ```ts
 * import { expandDnsEntry } from "./expand.ts";
 * import type { DnsEntry } from "./types.ts";
 *
 * const entry = { type: "A", port: 8080, weight: 1, backup: false, maxServers: 256 } as DnsEntry;
 * const { servers } = expandDnsEntry(entry, [{ ip: "10.0.0.2" }, { ip: "10.0.0.1" }]);
 * if (servers.map((s) => s.address.text).join() !== "10.0.0.1:8080,10.0.0.2:8080") {
 *   throw new Error(JSON.stringify(servers));
 * }
 * ```
 */
export function expandDnsEntry(
  entry: DnsEntry,
  answer: readonly DiscoveredAddress[] | undefined,
): Expansion {
  if (answer === undefined || answer.length === 0) return { servers: [], leftOut: 0 };
  const byText = new Map<string, DiscoveredAddress & { text: string; port: number }>();
  for (const found of answer) {
    const port = entry.type === "SRV" ? found.port ?? 0 : entry.port;
    const family = isIP(found.ip);
    if (family === 0 || !(port >= 1 && port <= 65535)) continue;
    const ip = found.ip.toLowerCase();
    const text = family === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
    const seen = byText.get(text);
    // The same address twice (two SRV records for one target): the live, preferred one counts.
    if (seen === undefined || rank(found) < rank(seen)) {
      byText.set(text, { ...found, ip, text, port });
    }
  }
  const live = [...byText.values()].filter((a) => !a.vanishing);
  const best = Math.min(...(live.length > 0 ? live : [...byText.values()]).map(priorityOf));
  const ordered = [...byText.values()].sort((a, b) =>
    Number(a.vanishing ?? false) - Number(b.vanishing ?? false) ||
    priorityOf(a) - priorityOf(b) || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0)
  );
  const kept = ordered.slice(0, entry.maxServers);
  kept.sort((a, b) => priorityOf(a) - priorityOf(b) || (a.text < b.text ? -1 : 1));
  const servers = kept.map((a): DiscoveredServer => ({
    address: { text: a.text, host: a.ip, port: a.port },
    weight: entry.type === "SRV" ? Math.max(1, a.weight ?? 1) : entry.weight,
    backup: entry.backup || priorityOf(a) > best,
    state: a.vanishing ? "drain" : "ready",
  }));
  return { servers, leftOut: ordered.length - kept.length };
}

function priorityOf(address: DiscoveredAddress): number {
  return address.priority ?? 0;
}

/** Live before vanishing, then the preferred priority. */
function rank(address: DiscoveredAddress): number {
  return (address.vanishing ? 1 << 17 : 0) + priorityOf(address);
}
