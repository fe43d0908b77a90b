/**
 * DNS questions through `node:dns`'s `Resolver` (Deno, Bun and the compiled binary all have it):
 * A and AAAA with their TTLs, SRV with its targets' addresses. Every question is bounded by a
 * timeout; any error (timeout, refused, no such name, a malformed answer) is a {@link LookupError}
 * and the caller keeps its last good answer.
 *
 * @module
 */
import { type RecordWithTtl, Resolver, type SrvRecord } from "node:dns";
import { isIP } from "node:net";
import type { DiscoveredAddress, DnsType } from "./types.ts";

/** What one question found. */
export interface LookupResult {
  /** Valid addresses only, at most the question's `limit`. */
  readonly addresses: readonly DiscoveredAddress[];
  /** The smallest TTL of the records, in ms; undefined when the answer carries none (SRV). */
  readonly ttlMs?: number;
  /** Addresses beyond the limit, left out. */
  readonly leftOut: number;
}

/** A question that found nothing usable: `code` is the resolver's (ETIMEOUT, EREFUSED, …). */
export class LookupError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** What is asked: the name, its record type, and how many addresses are kept at most. */
export interface Question {
  readonly type: DnsType;
  readonly name: string;
  readonly limit: number;
}

/** Asks DNS questions; the test seam of {@link Discovery}. */
export interface Lookups {
  lookup(question: Question): Promise<LookupResult>;
}

/** Questions whose last answer is kept, at most (see {@link NodeDnsLookups}). */
const REMEMBERED_QUESTIONS = 256;

/** SRV targets resolved at once at most. */
const TARGET_CONCURRENCY = 16;

/**
 * Questions to `servers` (`ip` / `ip:port`; default: the system's) through `node:dns`. An answer
 * whose records are the last one's (compared as one text) gives the last result again, the same
 * `addresses` array: re-resolving 200 unchanged SRV records skips their sorts and merge (2.7 of
 * 5.4 ms of CPU a second on Bun, docs/benchmarks.md).
 */
export class NodeDnsLookups implements Lookups {
  readonly #resolver: Resolver;
  readonly #timeoutMs: number;
  /** Per question (type, name, limit): the last answer's records as text, and its result. */
  readonly #last = new Map<string, { records: string; result: LookupResult }>();

  /** `timeoutMs`: the most one question may take, retries included. */
  constructor(servers: readonly string[] | undefined, timeoutMs = 2000) {
    this.#timeoutMs = timeoutMs;
    this.#resolver = new Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 2)), tries: 2 });
    if (servers !== undefined) this.#resolver.setServers([...servers]);
  }

  /** The addresses of the name; throws {@link LookupError}. */
  async lookup(question: Question): Promise<LookupResult> {
    const key = `${question.type} ${question.name} ${question.limit}`;
    const { records, result } = await this.#lookup(question);
    const last = this.#last.get(key);
    if (last !== undefined && last.records === records) {
      return result.ttlMs === last.result.ttlMs ? last.result : { ...last.result, ...ttl(result) };
    }
    // Bounded: names a reload dropped are never asked again (a few entries in practice).
    if (last === undefined && this.#last.size >= REMEMBERED_QUESTIONS) this.#last.clear();
    const fresh = result.get();
    this.#last.set(key, { records, result: fresh });
    return fresh;
  }

  /** The answer's records as text, and its result (made only when asked: unchanged records
   * spare it). */
  async #lookup(
    question: Question,
  ): Promise<{ records: string; result: { ttlMs?: number; get(): LookupResult } }> {
    if (question.type !== "SRV") {
      const found = await this.#addresses(question.type, question.name);
      return {
        records: found.addresses.map((a) => a.ip).sort().join(" "),
        result: { ...ttl(found), get: () => bounded(found.addresses, question.limit, found.ttlMs) },
      };
    }
    const records = await this.#ask<SrvRecord>(
      "SRV",
      question.name,
      (r, name, done) => r.resolveSrv(name, done),
    );
    const valid = records.filter((r) =>
      Number.isInteger(r.port) && r.port > 0 && r.port < 65536 && typeof r.name === "string"
    ).sort((a, b) => a.priority - b.priority);
    if (valid.length === 0) throw new LookupError("EBADRESP", "no usable SRV record");
    // A target's addresses: resolved for at most `limit` records (the preferred ones).
    const kept = valid.slice(0, question.limit);
    // Each target once (records often share one: a port per record on one host).
    const targets = [...new Set(kept.map((record) => record.name.toLowerCase()))];
    const found = new Map<string, { addresses: DiscoveredAddress[]; ttlMs?: number }>();
    for (let i = 0; i < targets.length; i += TARGET_CONCURRENCY) {
      const batch = targets.slice(i, i + TARGET_CONCURRENCY);
      const answers = await Promise.all(batch.map((name) => this.#target(name)));
      batch.forEach((name, j) => found.set(name, answers[j]));
    }
    let ttlMs: number | undefined;
    // In a sorted order: a server may give the same records in another order each time.
    const lines: string[] = [];
    for (const record of kept) {
      const target = found.get(record.name.toLowerCase())!;
      if (target.ttlMs !== undefined) ttlMs = Math.min(ttlMs ?? Infinity, target.ttlMs);
      lines.push(`${record.priority} ${record.weight} ${record.port} ${record.name}`);
    }
    for (const [name, target] of found) {
      lines.push(`${name} ${target.addresses.map((a) => a.ip).sort().join(" ")}`);
    }
    const text = `${valid.length}\n${lines.sort().join("\n")}`;
    const get = () => {
      const addresses: DiscoveredAddress[] = [];
      for (const record of kept) {
        const { port, priority, weight } = record;
        for (const { ip } of found.get(record.name.toLowerCase())!.addresses) {
          addresses.push({ ip, port, priority, weight });
        }
      }
      const result = bounded(addresses, question.limit, ttlMs);
      return { ...result, leftOut: result.leftOut + valid.length - kept.length };
    };
    return { records: text, result: { ...ttl({ ttlMs }), get } };
  }

  /** Stops the questions under way. */
  cancel(): void {
    this.#resolver.cancel();
  }

  /** An SRV target's addresses: an IP as it is, else its A records, else its AAAA records. */
  async #target(name: string): Promise<{ addresses: DiscoveredAddress[]; ttlMs?: number }> {
    if (isIP(name) !== 0) return { addresses: [{ ip: name }] };
    try {
      return await this.#addresses("A", name);
    } catch (error) {
      // A target with no IPv4 address may have IPv6 ones; a timeout is a failure of the whole.
      if ((error as LookupError).code === "ETIMEOUT") throw error;
      return await this.#addresses("AAAA", name);
    }
  }

  async #addresses(
    type: "A" | "AAAA",
    name: string,
  ): Promise<{ addresses: DiscoveredAddress[]; ttlMs?: number }> {
    const records = await this.#ask<RecordWithTtl>(
      type,
      name,
      (r, n, done) =>
        type === "A" ? r.resolve4(n, { ttl: true }, done) : r.resolve6(n, { ttl: true }, done),
    );
    const family = type === "A" ? 4 : 6;
    const valid = records.filter((r) =>
      typeof r.address === "string" && isIP(r.address) === family
    );
    if (valid.length === 0) throw new LookupError("EBADRESP", `no usable ${type} record`);
    const ttls = valid.map((r) => r.ttl).filter((t) => Number.isFinite(t) && t >= 0);
    return {
      addresses: valid.map((r) => ({ ip: r.address })),
      ...(ttls.length === 0 ? {} : { ttlMs: Math.min(...ttls) * 1000 }),
    };
  }

  /** One question, bounded by the timeout whatever the runtime's resolver does. */
  #ask<T>(
    type: string,
    name: string,
    ask: (
      resolver: Resolver,
      name: string,
      done: (error: Error | null, value: T[]) => void,
    ) => void,
  ): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new LookupError("ETIMEOUT", `${type} ${name}: no answer within ${this.#timeoutMs} ms`),
          ),
        this.#timeoutMs,
      );
      try {
        ask(this.#resolver, name, (error, value) => {
          clearTimeout(timer);
          if (error !== null) {
            const code = (error as NodeJS.ErrnoException).code ?? "EFAIL";
            reject(new LookupError(code, `${type} ${name}: ${code}`));
          } else if (!Array.isArray(value)) {
            reject(new LookupError("EBADRESP", `${type} ${name}: malformed answer`));
          } else resolve(value);
        });
      } catch (error) {
        clearTimeout(timer);
        reject(new LookupError("EFAIL", `${type} ${name}: ${(error as Error).message}`));
      }
    });
  }
}

/** The TTL of an answer, as a field to spread (absent when it has none). */
function ttl(answer: { readonly ttlMs?: number }): { ttlMs?: number } {
  return answer.ttlMs === undefined ? {} : { ttlMs: answer.ttlMs };
}

/** At most `limit` addresses (the preferred priority first, then by address text). */
function bounded(
  addresses: readonly DiscoveredAddress[],
  limit: number,
  ttlMs: number | undefined,
): LookupResult {
  const unique = new Map<string, DiscoveredAddress>();
  for (const a of addresses) {
    const key = `${a.ip} ${a.port ?? ""}`;
    const seen = unique.get(key);
    if (seen === undefined || (a.priority ?? 0) < (seen.priority ?? 0)) unique.set(key, a);
  }
  const sorted = [...unique.values()].sort((a, b) =>
    (a.priority ?? 0) - (b.priority ?? 0) || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) ||
    (a.port ?? 0) - (b.port ?? 0)
  );
  const kept = sorted.slice(0, limit);
  return {
    addresses: kept,
    leftOut: sorted.length - kept.length,
    ...ttl({ ttlMs }),
  };
}
