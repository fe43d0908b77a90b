/**
 * nginx's time syntax (`ngx_parse_time` in src/core/ngx_parse.c): `90`, `30s`, `10m`, `1h30m`,
 * `1h 30m`, `2d`, `1w`, `1M`, `1y`.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  y: 365 * 86_400_000,
  M: 30 * 86_400_000,
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};
/** Units from largest to smallest: each may appear once, in this order, as nginx requires. */
const UNIT_ORDER = ["y", "M", "w", "d", "h", "m", "s", "ms"];
const SECONDS_RANK = UNIT_ORDER.indexOf("s");
/** One term and the spaces after it (nginx skips spaces after a term, and only spaces). */
const TERM = /(\d+)(ms|y|M|w|d|h|m|s)? */y;

/**
 * Milliseconds in an nginx time value, or `null` when it is not one.
 *
 * Terms go from the largest unit down, each unit at most once, with or without spaces between
 * them (`1h30m`, `1h 30m`); trailing spaces are allowed. A number without a unit is seconds,
 * alone or as the last term after a unit larger than seconds (`1h30` = 1h 30s). nginx also takes
 * a few forms by accident of its state machine (`1hm`, `h1m`, `" 30"`, `30 40`, `1s30`); those
 * are refused here.
 *
 * @param allowMilliseconds whether `ms` is accepted (nginx refuses it where seconds are meant,
 *   as in the sticky module's `expires=`)
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5_400_000
 * parseDuration("1h 30m"); // 5_400_000
 * parseDuration("90"); // 90_000
 * parseDuration("10x"); // null
 * ```
 */
export function parseDuration(text: string, allowMilliseconds = true): number | null {
  if (text.length === 0) return null;
  let total = 0;
  let position = 0;
  let lastUnitRank = -1;
  while (position < text.length) {
    TERM.lastIndex = position;
    const match = TERM.exec(text);
    if (match === null) return null;
    const unit = match[2];
    let rank: number;
    if (unit === undefined) {
      // A bare number: seconds, and the last term (only spaces may follow it).
      if (TERM.lastIndex !== text.length || lastUnitRank >= SECONDS_RANK) return null;
      rank = SECONDS_RANK;
    } else {
      if (unit === "ms" && !allowMilliseconds) return null;
      rank = UNIT_ORDER.indexOf(unit);
      if (rank <= lastUnitRank) return null;
    }
    lastUnitRank = rank;
    total += Number(match[1]) * UNIT_MS[UNIT_ORDER[rank]];
    position = TERM.lastIndex;
  }
  return Number.isSafeInteger(total) ? total : null;
}

/** Formats milliseconds back in the same syntax, largest units first (for `--check`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const unit of UNIT_ORDER) {
    const size = UNIT_MS[unit];
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
