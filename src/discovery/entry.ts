/**
 * A `dns` server entry of the config → {@link DnsEntry}, every problem naming its key and the fix:
 * `{ dns = "app.internal:8080", type = "A", interval = "5s" }`, or for SRV the record name alone
 * (`{ dns = "_http._tcp.app.internal", type = "SRV" }`: the records bring ports, priorities and
 * weights).
 *
 * @module
 */
import { isIP } from "node:net";
import type { Fields } from "../config/fields.ts";
import { type DnsEntry, type DnsType, queryKey } from "./types.ts";

/** The keys a `dns` entry takes. */
export const DNS_ENTRY_KEYS =
  "dns, type, interval, min_interval, max_interval, vanish_grace, max_servers, weight, max_fails, fail_timeout, backup";
/** Default of `max_servers`: one answer gives at most this many servers. */
export const DEFAULT_MAX_SERVERS = 256;
/** The most `max_servers` may be (each server costs shared memory in every thread). */
export const MAX_SERVERS_LIMIT = 4096;
const TYPES: readonly DnsType[] = ["A", "AAAA", "SRV"];
/** A DNS name: labels of letters, digits, `-` and `_` (SRV names start with `_service._proto`). */
const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?$/;

/**
 * Reads a server entry that has `dns`; undefined (with problems added) when it is not valid.
 *
 * @example
 * ```ts
 * import { Fields } from "../config/fields.ts";
 * import { Problems } from "../config/problems.ts";
 * import { readDnsEntry } from "./entry.ts";
 *
 * const problems = new Problems();
 * const at = "upstreams.app.servers[0]";
 * const table = { dns: "app.internal:8080", interval: "2s" };
 * const entry = readDnsEntry(new Fields(table, at, problems), "app");
 * if (entry?.query !== "A app.internal" || entry.port !== 8080 || entry.intervalMs !== 2000) {
 *   throw new Error(JSON.stringify(problems.list));
 * }
 * ```
 */
export function readDnsEntry(fields: Fields, upstream: string): DnsEntry | undefined {
  const text = fields.string("dns") ?? "";
  const type = fields.oneOf("type", TYPES, "A")!;
  const intervalMs = fields.duration("interval", 5000, 100);
  const minIntervalMs = fields.duration("min_interval", intervalMs, 100);
  const maxIntervalMs = fields.duration("max_interval", intervalMs, 100);
  const settings = {
    vanishGraceMs: fields.duration("vanish_grace", 0, 0),
    maxServers: fields.integer("max_servers", DEFAULT_MAX_SERVERS, 1, MAX_SERVERS_LIMIT),
    weight: fields.integer("weight", 1, 1, 1_000_000),
    maxFails: fields.integer("max_fails", 1, 0, 1_000_000),
    failTimeoutMs: fields.duration("fail_timeout", 10_000, 1),
    backup: fields.boolean("backup", false),
  };
  const weightGiven = fields.has("weight");
  fields.finish();
  const problems = fields.problems;
  const before = problems.list.length;
  if (!(minIntervalMs <= intervalMs && intervalMs <= maxIntervalMs)) {
    problems.add(
      fields.path,
      `needs min_interval ≤ interval ≤ max_interval (here ${minIntervalMs} ms, ${intervalMs} ms, ${maxIntervalMs} ms); e.g. interval = "5s", min_interval = "1s", max_interval = "60s"`,
    );
  }
  if (type === "SRV" && weightGiven) {
    problems.add(
      fields.keyPath("weight"),
      `does not apply to type = "SRV": each record brings its weight; remove weight`,
    );
  }
  const target = dnsTarget(text, type);
  if (typeof target === "string") problems.add(fields.keyPath("dns"), target);
  if (problems.list.length > before || typeof target === "string") return undefined;
  return {
    keyPath: fields.path,
    upstream,
    ...target,
    type,
    query: queryKey(type, target.name),
    intervalMs,
    minIntervalMs,
    maxIntervalMs,
    ...settings,
  };
}

/** The name and port of `dns = "…"`, or why it is not one. */
function dnsTarget(text: string, type: DnsType): { name: string; port: number } | string {
  if (type === "SRV") {
    if (text.includes(":") || !DNS_NAME.test(text)) {
      return `${
        JSON.stringify(text)
      } is not an SRV record name; write the name alone (the records bring the ports), e.g. dns = "_http._tcp.app.internal"`;
    }
    return { name: text.replace(/\.$/, ""), port: 0 };
  }
  const colon = text.lastIndexOf(":");
  const name = colon < 0 ? text : text.slice(0, colon);
  const portText = colon < 0 ? "" : text.slice(colon + 1);
  const port = Number(portText);
  if (isIP(name) !== 0 || name.startsWith("[")) {
    return `${
      JSON.stringify(text)
    } is an IP address, not a name to resolve; list it as a server ("${text}") instead`;
  }
  if (!DNS_NAME.test(name) || !/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    return `${
      JSON.stringify(text)
    } is not "name:port"; write the name and the port its addresses serve on, e.g. dns = "app.internal:8080"`;
  }
  return { name: name.replace(/\.$/, ""), port };
}
