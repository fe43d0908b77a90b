/**
 * Warming the reload path at start. A reload's time is mostly the new file's parse and checks
 * (about 10 µs a server once optimised); the first reloads after a start ran that code cold, 2-5×
 * slower (a 1,000-server reload: 60-80 ms instead of 20-40, docs/benchmarks.md). Each thread
 * therefore parses its running config twice more soon after it serves, and drops the result.
 *
 * @module
 */

/** How many times the running config is parsed again after start. */
export const WARM_PARSES = 2;

/**
 * Calls `parse` {@link WARM_PARSES} times, each in its own macrotask (requests in between), and
 * ignores what it returns or throws: the file may have changed since start, which is the next
 * reload's business.
 *
 * @example
 * ```ts
 * import { warmReloadPath } from "./warm.ts";
 * let calls = 0;
 * await warmReloadPath(() => calls++);
 * if (calls !== 2) throw new Error(String(calls));
 * ```
 */
export function warmReloadPath(parse: () => unknown): Promise<void> {
  return new Promise((resolve) => {
    let left = WARM_PARSES;
    const step = () => {
      try {
        parse();
      } catch { /* a bad file now is the next reload's to report */ }
      if (--left > 0) setTimeout(step, 0);
      else resolve();
    };
    setTimeout(step, 0);
  });
}
