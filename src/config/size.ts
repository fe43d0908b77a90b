/**
 * nginx's size syntax (`ngx_parse_offset`, as in `client_max_body_size`): a number of bytes,
 * optionally with `k`, `m` or `g` (either case, powers of 1024): `512`, `64k`, `100m`, `1g`.
 *
 * @module
 */
import { describe, type Fields } from "./fields.ts";

const SIZE = /^(\d+)([kKmMgG]?)$/;
const UNIT_BYTES: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Bytes in an nginx size, or `null` when it is not one.
 *
 * @example
 * ```ts
 * parseSize("100m"); // 104_857_600
 * parseSize("32K"); // 32_768
 * parseSize("1.5m"); // null
 * ```
 */
export function parseSize(text: string): number | null {
  const match = SIZE.exec(text);
  if (match === null) return null;
  const bytes = Number(match[1]) * UNIT_BYTES[match[2].toLowerCase()];
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Formats bytes back in the same syntax, with the largest unit that divides them (`--check`). */
export function formatSize(bytes: number): string {
  for (const unit of ["g", "m", "k"]) {
    const size = UNIT_BYTES[unit];
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/**
 * Reads `key` as a size (a string in nginx syntax, or a TOML integer of bytes), recording a
 * problem when it is not one or lies outside `min..max`. `0` passes whenever `allowZero` (it
 * means "no limit").
 */
export function readSize(
  fields: Fields,
  key: string,
  fallback: number,
  min: number,
  max: number,
  allowZero = false,
): number {
  const value = fields.raw(key);
  if (value === undefined) return fallback;
  const text = typeof value === "number" || typeof value === "bigint" ? String(value) : value;
  const bytes = typeof text === "string" ? parseSize(text) : null;
  if (bytes === null) {
    fields.problems.add(
      fields.keyPath(key),
      `${
        describe(value)
      } is not a size; use nginx size syntax such as "512k", "100m", "1g" or a number of bytes`,
    );
    return fallback;
  }
  if (bytes === 0 && allowZero) return 0;
  if (bytes < min || bytes > max) {
    fields.problems.add(
      fields.keyPath(key),
      `${describe(value)} is out of range; allowed: ${formatSize(min)} to ${formatSize(max)}${
        allowZero ? ", or 0 for no limit" : ""
      }`,
    );
    return fallback;
  }
  return bytes;
}
