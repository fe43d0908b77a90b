/**
 * How every table of the bench writes its numbers (report.ts and the phases of bench/phases/).
 *
 * @module
 */

/** A whole number with thousands separators, or "–". */
export const int = (n: number | undefined): string =>
  n === undefined ? "–" : Math.round(n).toLocaleString("en-US");
/** `d` decimals, or "–". */
export const fixed = (
  n: number | undefined,
  d = 2,
): string => (n === undefined ? "–" : n.toFixed(d));
/** A ratio: "0.95×", or "–". */
export const times = (n: number | undefined): string => n === undefined ? "–" : `${n.toFixed(2)}×`;
/** KiB as whole MiB, or "–". */
export const mib = (kib: number | undefined): string =>
  kib === undefined ? "–" : `${(kib / 1024).toFixed(0)} MiB`;
/** µs as milliseconds with 2 decimals, or "–". */
export const ms = (us: number | undefined): string =>
  us === undefined ? "–" : `${(us / 1000).toFixed(2)} ms`;
/** A whole percentage, or "–". */
export const pct = (n: number | undefined): string => (n === undefined ? "–" : `${n.toFixed(0)}%`);

/**
 * A markdown table; the first `textColumns` columns left-aligned, the rest right-aligned (or
 * `align` given whole, e.g. `["---", "---:"]`).
 */
export function table(head: string[], rows: string[][], align: number | string[] = 1): string {
  const a = typeof align === "number" ? head.map((_, i) => (i < align ? "---" : "---:")) : align;
  return [`| ${head.join(" | ")} |`, `|${a.join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)]
    .join("\n");
}
