/**
 * `include` patterns: nginx expands `*`, `?` and `[…]` with glob(3), whose matches come sorted
 * and skip names starting with "." unless the pattern's part does.
 *
 * @module
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Whether nginx treats the include as a pattern (it checks for these three characters). */
export function hasGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** A glob part as a regular expression over one file name. */
function partPattern(part: string): RegExp {
  let source = "";
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else if (c === "[") {
      const close = part.indexOf("]", i + 2);
      if (close < 0) source += "\\[";
      else {
        let set = part.slice(i + 1, close);
        if (set.startsWith("!")) set = "^" + set.slice(1);
        source += `[${set.replace(/\\/g, "\\\\")}]`;
        i = close;
      }
    } else source += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/**
 * The paths an absolute pattern matches, sorted as glob(3) sorts them (byte order); only
 * regular files and symlinks to them at the last part.
 *
 * @example
 * ```ts
 * expandGlob("/nonexistent/conf.d/*.conf"); // []
 * ```
 */
export function expandGlob(pattern: string): string[] {
  const parts = pattern.split("/");
  let candidates = [parts[0] === "" ? "/" : parts[0]];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i];
    if (part === "") continue;
    const next: string[] = [];
    for (const dir of candidates) {
      if (!hasGlob(part)) {
        next.push(join(dir, part));
        continue;
      }
      const regex = partPattern(part);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (name.startsWith(".") && !part.startsWith(".")) continue;
        if (regex.test(name)) next.push(join(dir, name));
      }
    }
    candidates = next;
  }
  return candidates.filter(isFile).sort(byteOrder);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
