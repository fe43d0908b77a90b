/**
 * Typed reads of one TOML table, each recording a problem (with its key path) instead of throwing,
 * so a config with several mistakes reports all of them at once.
 *
 * @module
 */
import { parseDuration } from "./duration.ts";
import type { Problems } from "./problems.ts";

export type TomlTable = Record<string, unknown>;

/** Whether a TOML value is a table (not an array or a date). */
export function isTable(value: unknown): value is TomlTable {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/** A TOML value as a message shows it: strings quoted, arrays and tables named. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "an array";
  if (isTable(value)) return "a table";
  return String(value);
}

/** Reads the keys of one table; `finish()` reports the keys nobody asked for (typos). */
export class Fields {
  readonly #seen = new Set<string>();

  constructor(
    readonly table: TomlTable,
    readonly path: string,
    readonly problems: Problems,
  ) {}

  keyPath(key: string): string {
    return this.path === "" ? key : `${this.path}.${key}`;
  }

  has(key: string): boolean {
    this.#seen.add(key);
    return this.table[key] !== undefined;
  }

  raw(key: string): unknown {
    this.#seen.add(key);
    return this.table[key];
  }

  string(key: string, fallback: string): string;
  string(key: string): string | undefined;
  string(key: string, fallback?: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== "string") {
      this.problems.add(
        this.keyPath(key),
        `${describe(value)} is not a string; write it in quotes`,
      );
      return fallback;
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") {
      this.problems.add(this.keyPath(key), `${describe(value)} is not true or false`);
      return fallback;
    }
    return value;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    const n = typeof value === "bigint" ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
      this.problems.add(
        this.keyPath(key),
        `${describe(value)} is not a whole number from ${min} to ${max}`,
      );
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T | undefined {
    const value = this.string(key);
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.add(
        this.keyPath(key),
        `${describe(value)} is not one of ${allowed.join(", ")}`,
      );
      return fallback;
    }
    return value as T;
  }

  /**
   * A duration in nginx syntax ("30s", "1h30m", a bare number of seconds), in milliseconds.
   * `minMs` is the smallest allowed value.
   */
  duration(key: string, fallbackMs: number, minMs: number, allowMilliseconds?: boolean): number;
  duration(
    key: string,
    fallbackMs: undefined,
    minMs: number,
    allowMilliseconds?: boolean,
  ): number | undefined;
  duration(key: string, fallbackMs: number | undefined, minMs: number, allowMilliseconds = true) {
    const value = this.raw(key);
    if (value === undefined) return fallbackMs;
    const text = typeof value === "number" || typeof value === "bigint" ? String(value) : value;
    const ms = typeof text === "string" ? parseDuration(text, allowMilliseconds) : null;
    const units = allowMilliseconds ? "ms, s, m, h, d, w, M, y" : "s, m, h, d, w, M, y";
    if (ms === null) {
      this.problems.add(
        this.keyPath(key),
        `${
          describe(value)
        } is not a duration; use nginx time syntax such as "90", "30s", "1h30m" (units ${units})`,
      );
      return fallbackMs;
    }
    if (ms < minMs) {
      this.problems.add(
        this.keyPath(key),
        `${describe(value)} is too short; the least allowed is ${minMs / 1000}s`,
      );
      return fallbackMs;
    }
    return ms;
  }

  /** A nested table, or undefined (recording a problem if the key holds something else). */
  subtable(key: string): TomlTable | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!isTable(value)) {
      this.problems.add(
        this.keyPath(key),
        `${describe(value)} is not a table; write [${this.keyPath(key)}]`,
      );
      return undefined;
    }
    return value;
  }

  /** Reports every key that was never read. */
  finish(): void {
    for (const key of Object.keys(this.table)) {
      if (!this.#seen.has(key)) {
        // Built only for a typo: a reload reads thousands of tables without one.
        const known = [...this.#seen].join(", ");
        this.problems.add(this.keyPath(key), `unknown key; allowed here: ${known}`);
      }
    }
  }
}
