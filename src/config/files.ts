/**
 * Files a config names (TLS certificates and keys, the admin token): read at load, relative to
 * the config file's directory, each failure said the same way.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Problems } from "./problems.ts";

/**
 * The text of `file` (relative to `baseDir`), or undefined with a problem at `keyPath` naming the
 * file, its full path and why it cannot be read.
 *
 * @param what what the file should hold, for the message about an empty name
 *
 * @example
 * ```ts
 * import { Problems } from "./problems.ts";
 * const problems = new Problems();
 * readConfigFile(problems, "admin.token_file", "missing.txt", "/nowhere", "the token");
 * problems.list[0].message; // 'cannot read "missing.txt" (/nowhere/missing.txt): no such file'
 * ```
 */
export function readConfigFile(
  problems: Problems,
  keyPath: string,
  file: string,
  baseDir: string,
  what: string,
): string | undefined {
  if (file === "") {
    problems.add(keyPath, `is empty; give the path of a file holding ${what}`);
    return undefined;
  }
  const path = isAbsolute(file) ? file : resolve(baseDir, file);
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT"
      ? "no such file"
      : code === "EACCES"
      ? "permission denied"
      : code === "EISDIR"
      ? "it is a directory"
      : firstLine(error);
    problems.add(
      keyPath,
      `cannot read ${JSON.stringify(file)}${path === file ? "" : ` (${path})`}: ${why}`,
    );
    return undefined;
  }
}

/** An error's message, first line only (for one-line problems). */
export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
