/**
 * `sticky-gateway import nginx.conf [-o gateway.toml]`: prints the TOML (or writes it, whole or
 * not at all: a temp file beside the output, renamed over it once complete), warnings on stderr.
 * Exit 0 (with warnings), 2 when the nginx config cannot be read or parsed, or for bad arguments.
 *
 * @module
 */
import process from "node:process";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { formatWarning, importNginxConfig, NginxParseError } from "./nginx/mod.ts";

/** Usage of the subcommand, for `--help`. */
export const IMPORT_USAGE =
  "sticky-gateway import NGINX_CONF [-o FILE]   translate an nginx config (with its includes) to a TOML config";

interface ImportArguments {
  readonly input: string;
  readonly output?: string;
}

/** The subcommand's arguments (after `import`), or what is wrong with them. */
export function parseImportArguments(args: readonly string[]): ImportArguments | string {
  let input: string | undefined;
  let output: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-o" || arg === "--output") {
      output = args[++i];
      if (output === undefined) return `${arg} needs a file name`;
    } else if (arg.startsWith("--output=")) output = arg.slice("--output=".length);
    else if (arg.startsWith("-") && arg !== "-") return `unknown argument "${arg}"`;
    else if (input === undefined) input = arg;
    else return `one nginx config at a time ("${input}" and "${arg}")`;
  }
  if (input === undefined) {
    return "import needs the nginx config file: sticky-gateway import nginx.conf [-o gateway.toml]";
  }
  return { input, output };
}

/** Runs the subcommand; returns the exit status. */
export function runImport(args: readonly string[]): number {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`Usage: ${IMPORT_USAGE}\n`);
    return 0;
  }
  const parsed = parseImportArguments(args);
  if (typeof parsed === "string") {
    process.stderr.write(`sticky-gateway import: ${parsed}\n`);
    return 2;
  }
  let result;
  try {
    result = importNginxConfig(parsed.input, parsed.output ?? "gateway.toml");
  } catch (error) {
    if (!(error instanceof NginxParseError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  // Every directive not carried is on stderr, in file order: "warning" where behaviour differs,
  // "note" where nothing changes for clients (the TOML's comments list both too).
  for (const warning of result.warnings) process.stderr.write(`${formatWarning(warning)}\n`);
  const warnings = result.warnings.filter((w) => w.level === "warning");
  const notes = result.warnings.length - warnings.length;
  if (parsed.output === undefined) process.stdout.write(result.toml);
  else if (!writeWhole(parsed.output, result.toml)) return 2;
  process.stderr.write(
    `sticky-gateway import: ${warnings.length} warning(s)${notes > 0 ? `, ${notes} note(s)` : ""}${
      parsed.output === undefined ? "" : `; wrote ${parsed.output}`
    }\n`,
  );
  return 0;
}

/** Writes to a temp file beside `file` and renames it over `file`: never a partial file. */
function writeWhole(file: string, text: string): boolean {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, text, { flag: "wx" });
    renameSync(temp, file);
    return true;
  } catch (error) {
    rmSync(temp, { force: true });
    process.stderr.write(
      `sticky-gateway import: cannot write ${file}: ${(error as Error).message}\n`,
    );
    return false;
  }
}
