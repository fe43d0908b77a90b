/**
 * Where things are in an nginx config, and what the importer says about them: errors (the file
 * cannot be read or parsed, exit 2) and warnings (a directive not carried, exit 0).
 *
 * @module
 */

/** A place in an nginx config file: 1-based line and column. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** `file:line:column`, or the file alone when the problem is the whole file (line 0). */
export function formatLocation(at: SourceLocation): string {
  return at.line === 0 ? at.file : `${at.file}:${at.line}:${at.column}`;
}

/** The nginx config cannot be read or parsed; `message` says what was expected. */
export class NginxParseError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The problem without the location. */
  readonly reason: string;

  constructor(at: SourceLocation, reason: string) {
    super(`${formatLocation(at)}: ${reason}`);
    this.name = "NginxParseError";
    this.file = at.file;
    this.line = at.line;
    this.column = at.column;
    this.reason = reason;
  }
}

/**
 * Something in the nginx config the TOML does not carry. `warning`: behaviour differs (printed on
 * stderr and written as a comment); `note`: nothing changes for clients (only the comment), e.g.
 * `pid` or `proxy_http_version 1.1`.
 */
export interface ImportWarning extends SourceLocation {
  readonly level: "warning" | "note";
  readonly message: string;
}

/** `file:line:column: warning: message` */
export function formatWarning(warning: ImportWarning): string {
  return `${formatLocation(warning)}: ${warning.level}: ${warning.message}`;
}

/** Warnings in reading order: the main file first, then each file as first named; by line. */
export function sortWarnings(list: ImportWarning[], mainFile: string): void {
  const rank = new Map<string, number>([[mainFile, 0]]);
  for (const w of list) if (!rank.has(w.file)) rank.set(w.file, rank.size);
  list.sort((a, b) =>
    rank.get(a.file)! - rank.get(b.file)! || a.line - b.line || a.column - b.column
  );
}
