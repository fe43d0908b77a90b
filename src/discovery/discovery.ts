/**
 * DNS discovery, off the request path: resolves every `dns` server entry of the config serving,
 * on its interval (or TTL, within the entry's clamp), and keeps the answers ({@link Discovered})
 * the next config generation is parsed with. When an answer changes, it says so (`onChange`):
 * the reloader then swaps in a generation of the same text with the new answers, the swap every
 * reload takes (src/reload/reloader.ts), so in-flight requests finish, a vanished server's
 * clients fall back, state is carried by (upstream, server id).
 *
 * A failed question (timeout, refused, no such name, a malformed answer) keeps the last good
 * answer: logged when the failure starts or changes, counted always. What is kept per name is
 * bounded: at most `max_servers` live addresses, and as many vanishing ones.
 *
 * The gateway runs it in a thread of its own (src/discovery_worker.ts, driven by
 * {@link DiscoveryThread} in thread.ts): a question, its answer's parse and its merge then cost
 * the serving thread nothing, and it hears only of changed answers and the figures.
 *
 * @module
 */
import type { GatewayConfig } from "../config/types.ts";
import { logEvent } from "../ops/log/events.ts";
import { LookupError, type Lookups, NodeDnsLookups } from "./lookup.ts";
import type { Discovered, DiscoveredAddress, DnsEntry } from "./types.ts";

/** One name's figures, for `/metrics` and `/readyz`. */
export interface DiscoveryFigure {
  /** `A app.internal` (the entry's query). */
  readonly query: string;
  /** The upstreams whose entries ask it. */
  readonly upstreams: readonly string[];
  /** Live addresses in the answer in use (vanishing ones not counted). */
  readonly addresses: number;
  readonly resolutions: number;
  readonly failures: number;
  /** Addresses beyond `max_servers` left out of the last answer. */
  readonly leftOut: number;
  /** The error of the last question when it failed; undefined after a success. */
  readonly error?: string;
  /** Whether a question ever succeeded. */
  readonly resolved: boolean;
}

/** What discovery asks and where: plain data (a thread is posted it), from a config by
 * {@link discoverySettings}. */
export interface DiscoverySettings {
  /** `[server] resolver` (`ip` / `ip:port`); undefined = the system's. */
  readonly resolver?: readonly string[];
  /** Every `dns` server entry, in upstream order. */
  readonly entries: readonly DnsEntry[];
}

/**
 * The settings of `config`'s DNS discovery.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * import { discoverySettings } from "./discovery.ts";
 * const config = parseConfig(`[upstreams.app]\nservers = [{ dns = "app.internal:8080" }]\n`);
 * if (discoverySettings(config).entries[0].query !== "A app.internal") throw new Error();
 * ```
 */
export function discoverySettings(config: GatewayConfig): DiscoverySettings {
  const resolver = config.server.resolver;
  return { ...(resolver === undefined ? {} : { resolver }), entries: dnsEntries(config) };
}

/** Options; the defaults are the process's. */
export interface DiscoveryOptions {
  /** Told when an answer changed (the latest are in {@link Discovery.snapshot}). */
  readonly onChange?: () => void;
  /** Told after each question, answered or not (the figures changed). */
  readonly onResolved?: () => void;
  /** Makes the question-asker for a resolver setting (default `node:dns`). */
  readonly lookups?: (resolver: readonly string[] | undefined) => Lookups;
  readonly log?: typeof logEvent;
  /** The clock (ms); default `performance.now`. */
  readonly now?: () => number;
}

interface Name {
  entries: readonly DnsEntry[];
  /** Address key → the address and when an answer last had it. */
  readonly seen: Map<string, { address: DiscoveredAddress; at: number }>;
  answer: readonly DiscoveredAddress[] | undefined;
  /** The answer's addresses as one comparable text: what tells a changed answer. */
  answerText: string;
  /** The addresses the answer was last merged from (the asker's array). */
  merged?: readonly DiscoveredAddress[];
  timer?: ReturnType<typeof setTimeout>;
  resolutions: number;
  failures: number;
  leftOut: number;
  error?: string;
  /** Bumped when the name is dropped: a question under way then changes nothing. */
  stopped: boolean;
}

/** Keeps the `dns` entries' answers (see the module doc). */
export class Discovery {
  readonly #names = new Map<string, Name>();
  readonly #options: DiscoveryOptions;
  readonly #log: typeof logEvent;
  readonly #now: () => number;
  #lookups: Lookups;
  #resolverKey: string;
  #running = false;

  /** Discovery for the settings' `dns` entries; nothing is asked before {@link first}. */
  constructor(settings: DiscoverySettings, options: DiscoveryOptions = {}) {
    this.#options = options;
    this.#log = options.log ?? logEvent;
    this.#now = options.now ?? (() => performance.now());
    this.#resolverKey = JSON.stringify(settings.resolver ?? null);
    this.#lookups = this.#makeLookups(settings.resolver);
    this.#setEntries(settings.entries);
  }

  /** Whether the config has `dns` entries at all. */
  static wanted(config: GatewayConfig): boolean {
    return dnsEntries(config).length > 0;
  }

  /** Resolves every name once (in parallel), for at most `timeoutMs`: what start waits for. */
  async first(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#names.values()].map((name) => this.#resolve(name))),
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  /** Re-resolves every name on its interval from now on. `serving`: the answers the running
   * generation was parsed with; an answer that came since (after {@link first} gave up) is a
   * change at once. */
  run(serving: Discovered): void {
    this.#running = true;
    for (const name of this.#names.values()) this.#schedule(name, entryOf(name).intervalMs);
    if (answersText(serving) !== answersText(this.snapshot())) this.#options.onChange?.();
  }

  /** A new generation serves: its entries and resolver from now on (new names are asked at
   * once; a changed resolver asks every name again). */
  configure(settings: DiscoverySettings): void {
    const key = JSON.stringify(settings.resolver ?? null);
    const resolverChanged = key !== this.#resolverKey;
    if (resolverChanged) {
      this.#resolverKey = key;
      this.#lookups = this.#makeLookups(settings.resolver);
    }
    const added = this.#setEntries(settings.entries);
    if (!this.#running) return;
    for (const name of this.#names.values()) {
      if (resolverChanged || added.includes(name)) this.#schedule(name, 0);
    }
  }

  /** The answers in use, by query: what a generation is parsed with. */
  snapshot(): Discovered {
    const answers = new Map<string, readonly DiscoveredAddress[]>();
    for (const [query, name] of this.#names) {
      if (name.answer !== undefined) answers.set(query, name.answer);
    }
    return answers;
  }

  /** Every name's figures. */
  figures(): DiscoveryFigure[] {
    return [...this.#names].map(([query, name]) => ({
      query,
      upstreams: [...new Set(name.entries.map((e) => e.upstream))],
      addresses: name.answer?.filter((a) => !a.vanishing).length ?? 0,
      resolutions: name.resolutions,
      failures: name.failures,
      leftOut: name.leftOut,
      resolved: name.answer !== undefined,
      ...(name.error === undefined ? {} : { error: name.error }),
    }));
  }

  /** Stops every timer (a question under way changes nothing after). */
  stop(): void {
    this.#running = false;
    for (const name of this.#names.values()) {
      name.stopped = true;
      clearTimeout(name.timer);
    }
  }

  #makeLookups(resolver: readonly string[] | undefined): Lookups {
    return this.#options.lookups?.(resolver) ?? new NodeDnsLookups(resolver);
  }

  /** Names asked by the entries; a name no entry asks any more is dropped. Returns the names
   * new here. */
  #setEntries(entries: readonly DnsEntry[]): Name[] {
    const byQuery = new Map<string, DnsEntry[]>();
    for (const entry of entries) {
      const list = byQuery.get(entry.query) ?? [];
      list.push(entry);
      byQuery.set(entry.query, list);
    }
    for (const [query, name] of this.#names) {
      if (byQuery.has(query)) continue;
      name.stopped = true;
      clearTimeout(name.timer);
      this.#names.delete(query);
    }
    const added: Name[] = [];
    for (const [query, entries] of byQuery) {
      const name = this.#names.get(query);
      if (name !== undefined) {
        name.entries = entries;
        continue;
      }
      const fresh: Name = {
        entries,
        seen: new Map(),
        answer: undefined,
        answerText: "",
        resolutions: 0,
        failures: 0,
        leftOut: 0,
        stopped: false,
      };
      this.#names.set(query, fresh);
      added.push(fresh);
    }
    return added;
  }

  #schedule(name: Name, delayMs: number): void {
    clearTimeout(name.timer);
    if (!this.#running || name.stopped) return;
    name.timer = setTimeout(async () => {
      const ttlMs = await this.#resolve(name);
      this.#options.onResolved?.();
      const entry = entryOf(name);
      const next = name.error !== undefined
        ? entry.minIntervalMs
        : Math.min(entry.maxIntervalMs, Math.max(entry.minIntervalMs, ttlMs ?? entry.intervalMs));
      this.#schedule(name, next);
    }, delayMs);
  }

  /** Asks once; updates the answer and says when it changed. Returns the answer's TTL. */
  async #resolve(name: Name): Promise<number | undefined> {
    const entry = entryOf(name);
    const query = entry.query;
    const limit = Math.max(...name.entries.map((e) => e.maxServers));
    let result;
    try {
      result = await this.#lookups.lookup({ type: entry.type, name: entry.name, limit });
    } catch (error) {
      if (name.stopped) return undefined;
      name.failures++;
      const message = error instanceof LookupError ? error.message : String(error);
      if (name.error !== message) {
        this.#log("warn", "dns_failed", {
          query,
          error: message,
          kept: name.answer?.length ?? 0,
          upstreams: name.entries.map((e) => e.upstream).join(","),
        });
      }
      name.error = message;
      return undefined;
    }
    if (name.stopped) return undefined;
    name.resolutions++;
    if (name.error !== undefined && name.answer !== undefined) {
      this.#log("info", "dns_recovered", { query, addresses: result.addresses.length });
    }
    name.error = undefined;
    const leftOut = result.leftOut + Math.max(0, result.addresses.length - limit);
    if (leftOut !== name.leftOut && leftOut > 0) {
      this.#log("warn", "dns_servers_left_out", {
        query,
        kept: Math.min(limit, result.addresses.length),
        left_out: leftOut,
        hint: "max_servers bounds the servers of one answer",
      });
    }
    name.leftOut = leftOut;
    // The asker's last result again (unchanged records): the answer stands, unless vanished
    // addresses are kept for a grace, whose times only a merge keeps.
    const graceMs = Math.max(...name.entries.map((e) => e.vanishGraceMs));
    if (result.addresses === name.merged && graceMs === 0) return result.ttlMs;
    name.merged = result.addresses;
    const before = name.answer === undefined ? undefined : name.answerText;
    // Bounded here too, whatever the asker gave: memory follows max_servers, not the answer.
    const merged = this.#merge(name, result.addresses.slice(0, limit), graceMs, limit);
    name.answer = merged.answer;
    name.answerText = merged.text;
    if (merged.text !== before) {
      const live = name.answer.filter((a) => !a.vanishing).length;
      this.#log("info", "dns_changed", {
        query,
        addresses: live,
        vanishing: name.answer.length - live,
      });
      this.#options.onChange?.();
    }
    return result.ttlMs;
  }

  /**
   * The new answer with the vanished addresses still within `vanish_grace` (as vanishing), in
   * key order, and its text. Each address's key is made once: at 200 addresses, a sort that
   * made them per comparison and two JSON texts to compare cost about 0.1 ms of a resolution's
   * 1.4 ms on Bun (docs/benchmarks.md, ninth session). `graceMs` and `limit`: the entries'
   * largest `vanish_grace` and `max_servers`.
   */
  #merge(
    name: Name,
    addresses: readonly DiscoveredAddress[],
    graceMs: number,
    limit: number,
  ): { answer: DiscoveredAddress[]; text: string } {
    const now = this.#now();
    const keyed: { key: string; address: DiscoveredAddress }[] = [];
    for (const address of addresses) {
      const key = keyOf(address);
      name.seen.set(key, { address, at: now });
      keyed.push({ key, address });
    }
    const vanishing: { key: string; at: number; address: DiscoveredAddress }[] = [];
    for (const [key, record] of name.seen) {
      if (record.at === now) continue;
      if (now - record.at >= graceMs) name.seen.delete(key);
      else vanishing.push({ key, ...record });
    }
    // The most recently seen first: at most `limit` are kept (the memory bound).
    vanishing.sort((a, b) => b.at - a.at);
    for (const dropped of vanishing.splice(limit)) name.seen.delete(dropped.key);
    for (const { key, address } of vanishing) {
      keyed.push({ key: `${key} vanishing`, address: { ...address, vanishing: true } });
    }
    keyed.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    return {
      answer: keyed.map((k) => k.address),
      text: keyed.map((k) => k.key).join("\n"),
    };
  }
}

/** Answers as comparable text. */
export function answersText(discovered: Discovered): string {
  return JSON.stringify([...discovered].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/** Every `dns` entry of the config, in upstream order. */
function dnsEntries(config: GatewayConfig): DnsEntry[] {
  return [...config.upstreams.values()].flatMap((u) => u.dns ?? []);
}

/** The entry whose settings the name follows (the first that asks it; they share the answer). */
function entryOf(name: Name): DnsEntry {
  return name.entries[0];
}

function keyOf(address: DiscoveredAddress): string {
  return `${address.ip} ${address.port ?? ""} ${address.priority ?? ""} ${address.weight ?? ""}`;
}
