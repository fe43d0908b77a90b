/**
 * `--watch`: a reload when the config file changes. The file's directory is watched, not the
 * file: editors and config managers replace a file (write a new one, rename it over), which ends
 * a watch on the old file. Events come in bursts (several per save), so a reload is asked for
 * once the directory has been quiet for `debounceMs`. A file that disappears or cannot be read
 * is a reload that fails (the running config stays, the problem is logged once per change).
 *
 * @module
 */
import { watch as watchFs } from "node:fs";
import { basename, dirname } from "node:path";

/** A running watch. */
export interface ConfigWatch {
  close(): void;
}

/**
 * Calls `onChange` once per burst of changes to `file` (its directory's events for its name;
 * an event without a name counts too), `debounceMs` after the last one.
 *
 * @example
 * ```ts ignore
 * const watch = watchConfig("gateway.toml", () => reloader.reload("watch"));
 * // … on stop:
 * watch.close();
 * ```
 */
export function watchConfig(
  file: string,
  onChange: () => void,
  debounceMs = 200,
): ConfigWatch {
  const name = basename(file);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watcher = watchFs(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== undefined && String(changed) !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
