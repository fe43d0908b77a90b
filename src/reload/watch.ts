/**
 * `--watch`: a reload when the config file changes. The file's directory is watched, not the
 * file: editors and config managers replace a file (write a new one, rename it over), which ends
 * a watch on the old file. Events come in bursts (several per save), so a reload is asked for
 * once the directory has been quiet for `debounceMs`, and only if the file is not what it was at
 * the last look: its bytes, or why it cannot be read. A file that disappears or cannot be read
 * is a reload that fails (the running config stays, the problem is logged once per change).
 *
 * An event's name is not enough to tell: Kubernetes updates a ConfigMap by renaming a `..data`
 * link, so the file's own name is in no event; Deno reports a rename by its first path only (the
 * file renamed away, not the config it replaced) when the new file cannot be looked at. Every
 * other event in the directory therefore leads to a look at the file too, at most once per
 * `debounceMs` (it does not postpone one, so a log file written in the same directory all the
 * time cannot hold a reload back).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { lstatSync, readFileSync, watch as watchFs } from "node:fs";
import { basename, dirname } from "node:path";

/** A running watch. */
export interface ConfigWatch {
  close(): void;
}

/**
 * Calls `onChange` once per burst of changes to `file`, `debounceMs` after the last event that
 * names it (or names nothing), or after the first event naming another file, when the file's
 * bytes (or the reason it cannot be read) differ from the last look's.
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
  let seen = fileSignature(file);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const look = () => {
    timer = undefined;
    const now = fileSignature(file);
    if (now === seen) return;
    seen = now;
    onChange();
  };
  const watcher = watchFs(dirname(file), (_event, changed) => {
    const itself = changed === null || changed === undefined || String(changed) === name;
    if (!itself && timer !== undefined) return;
    clearTimeout(timer);
    timer = setTimeout(look, debounceMs);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

/**
 * What `file` is now, to tell a change: the sha256 of its bytes, or the reason it cannot be read
 * with the identity of what stands at its path (a new unreadable file is a change too).
 *
 * @example
 * ```ts
 * import { fileSignature } from "./watch.ts";
 *
 * const gone = fileSignature("/nonexistent/gateway.toml");
 * if (gone !== "ENOENT -") throw new Error(gone);
 * ```
 */
export function fileSignature(file: string): string {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    let entry = "-";
    try {
      const stat = lstatSync(file, { bigint: true });
      entry = `${stat.ino}:${stat.ctimeNs}:${stat.mode}`;
    } catch {
      // nothing at the path
    }
    return `${code} ${entry}`;
  }
}
