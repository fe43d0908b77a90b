/**
 * `sticky-gateway import nginx.conf`: an nginx config (with its includes) → a gateway TOML that
 * passes `--check`, with each server's address text byte-identical (it is the cookie's input),
 * and a warning for every directive not carried.
 *
 * @module
 */
import { dirname } from "node:path";
import { ConfigError, parseConfig } from "../../config/mod.ts";
import {
  formatLocation,
  type ImportWarning,
  NginxParseError,
  type SourceLocation,
} from "./errors.ts";
import { readNginxConfig } from "./reader.ts";
import { renderToml } from "./toml.ts";
import { translate } from "./translate.ts";

export { formatWarning, NginxParseError } from "./errors.ts";
export type { ImportWarning, SourceLocation } from "./errors.ts";

/** The TOML and what was not carried (warnings first as found, notes among them). */
export interface NginxImport {
  readonly toml: string;
  readonly warnings: ImportWarning[];
}

/**
 * Reads `file` (and its includes) and translates it. Throws {@link NginxParseError} (with file,
 * line and column) when it cannot be read or parsed, when nginx would refuse it, or when the
 * result would not pass `--check`.
 *
 * `outputFile` names the TOML in the check (relative paths in it would start there; the
 * importer writes absolute ones).
 */
export function importNginxConfig(file: string, outputFile = "gateway.toml"): NginxImport {
  const tree = readNginxConfig(file);
  const model = translate(tree, file, dirname(file));
  const rendered = renderToml(model);
  const warnings = [...model.warnings];
  selfCheck(rendered.text, rendered.sources, outputFile, warnings);
  // The TOML lists the warnings the check added too.
  const final = warnings.length === model.warnings.length
    ? rendered.text
    : renderToml({ ...model, warnings }).text;
  return { toml: final, warnings };
}

/**
 * Runs the gateway's own validation on the TOML. Certificate files that cannot be read here
 * (a key only root may read, a migration prepared on another machine) are warnings: the gateway
 * reads them where it runs. Anything else is an error at the nginx line it came from.
 */
function selfCheck(
  text: string,
  sources: ReadonlyMap<string, SourceLocation>,
  outputFile: string,
  warnings: ImportWarning[],
): void {
  try {
    parseConfig(text, outputFile);
    return;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const hard = error.problems.filter((p) => !p.path.startsWith("server.tls"));
    for (const problem of error.problems.filter((p) => p.path.startsWith("server.tls"))) {
      warnings.push({
        ...(sources.get("server.tls") ?? { file: outputFile, line: 0, column: 0 }),
        level: "warning",
        message:
          `${problem.path}: ${problem.message} (--check and start will say the same where the gateway runs, unless the file is there and readable)`,
      });
    }
    if (hard.length === 0) return;
    const lines = hard.map((problem) => {
      const at = sourceOf(problem.path, sources) ?? { file: outputFile, line: 0, column: 0 };
      return { at, text: `cannot be carried: ${problem.path}: ${problem.message}` };
    });
    const [first, ...rest] = lines;
    const more = rest.map((l) => `\n${formatLocation(l.at)}: ${l.text}`).join("");
    throw new NginxParseError(first.at, first.text + more);
  }
}

/** The nginx place of the longest key path that starts `path`. */
function sourceOf(
  path: string,
  sources: ReadonlyMap<string, SourceLocation>,
): SourceLocation | undefined {
  let best: string | undefined;
  for (const key of sources.keys()) {
    const prefix = path === key || path.startsWith(`${key}.`) || path.startsWith(`${key}[`);
    if (prefix && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : sources.get(best);
}
