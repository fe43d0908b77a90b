/**
 * `[log]`: where the access log goes and in which format.
 *
 * `access = "stdout" | "stderr" | "off" | "FILE"` (default "stdout": nginx logs every request by
 * default), `format = "json" | "combined"` (default "json"). A FILE is any other string: absolute,
 * or relative to the config file's directory; its directory must exist (the gateway creates the
 * file, not directories), so a typo is a config error at start rather than a log silently lost.
 *
 * @module
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import process from "node:process";
import { describe, type Fields } from "./fields.ts";
import type { Problems } from "./problems.ts";

/** Where access log lines go; "file" writes (appends) to {@link LogSettings.file}. */
export type AccessLogTarget = "stdout" | "stderr" | "off" | "file";

/** How an access log line is written: one JSON object, or nginx's combined plus key=value. */
export type AccessLogFormat = "json" | "combined";

/** The `[log]` table, read and checked. */
export interface LogSettings {
  readonly access: AccessLogTarget;
  /** The absolute path when `access` is "file"; undefined otherwise. */
  readonly file: string | undefined;
  readonly format: AccessLogFormat;
}

/** What an absent `[log]` table means: JSON lines on stdout. */
export const DEFAULT_LOG_SETTINGS: LogSettings = Object.freeze({
  access: "stdout",
  file: undefined,
  format: "json",
});

const FORMATS: readonly AccessLogFormat[] = ["json", "combined"];

/**
 * Reads `[log]` (undefined when the config has no such table), recording problems with their key
 * path. `baseDir` is what a relative file path is relative to (the config file's directory).
 *
 * @example
 * ```ts
 * import { Fields } from "./fields.ts";
 * import { Problems } from "./problems.ts";
 * import { readLogSettings } from "./log.ts";
 *
 * const problems = new Problems();
 * const settings = readLogSettings(new Fields({ format: "combined" }, "log", problems), problems);
 * if (settings.access !== "stdout" || settings.format !== "combined") throw new Error("defaults");
 * ```
 */
export function readLogSettings(
  fields: Fields | undefined,
  problems: Problems,
  baseDir: string = process.cwd(),
): LogSettings {
  if (fields === undefined) return DEFAULT_LOG_SETTINGS;
  const format = fields.oneOf("format", FORMATS, "json") ?? "json";
  const access = fields.string("access", "stdout");
  fields.finish();
  if (access === "stdout" || access === "stderr" || access === "off") {
    return Object.freeze({ access, file: undefined, format });
  }
  const file = checkedFile(problems, fields.keyPath("access"), access, baseDir);
  if (file === undefined) return Object.freeze({ ...DEFAULT_LOG_SETTINGS, format });
  return Object.freeze({ access: "file", file, format });
}

/** The absolute path of an access log file whose directory exists and is writable. */
function checkedFile(
  problems: Problems,
  key: string,
  value: string,
  baseDir: string,
): string | undefined {
  if (value === "" || value.endsWith("/")) {
    problems.add(
      key,
      `${
        describe(value)
      } is not a file; use "stdout", "stderr", "off" or a file such as "/var/log/sticky-gateway/access.log"`,
    );
    return undefined;
  }
  const file = isAbsolute(value) ? value : resolve(baseDir, value);
  const dir = dirname(file);
  const kind = statKind(dir);
  if (kind !== "directory") {
    problems.add(
      key,
      `${describe(value)}: the directory ${JSON.stringify(dir)} ${
        kind === "missing" ? "does not exist" : "is not a directory"
      }; create it (mkdir -p) or log to "stdout"`,
    );
    return undefined;
  }
  if (statKind(file) === "directory") {
    problems.add(key, `${describe(value)} is a directory; name a file in it`);
    return undefined;
  }
  if (!writable(statKind(file) === "missing" ? dir : file)) {
    problems.add(
      key,
      `${
        describe(value)
      } is not writable by this user; change its owner or mode, or log to "stdout"`,
    );
    return undefined;
  }
  return file;
}

function statKind(path: string): "missing" | "directory" | "other" {
  try {
    return statSync(path).isDirectory() ? "directory" : "other";
  } catch {
    return "missing";
  }
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
