/**
 * An nginx config file → a tree of directives, with `include`s read in place.
 *
 * Relative include paths: nginx resolves them against its conf prefix, the directory of the main
 * config file (`-c`), not against the including file's directory. We do the same, so that a
 * `sites-enabled/app` with `include snippets/proxy.conf;` finds what nginx finds; when that
 * matches nothing and the including file lives elsewhere, the including file's directory is tried
 * too (with a warning), since a config read on its own is often laid out that way.
 * Includes that loop back to a file being read are an error (nginx itself would recurse until it
 * runs out of file descriptors).
 *
 * @module
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join, relative } from "node:path";
import { type ImportWarning, NginxParseError, type SourceLocation } from "./errors.ts";
import { expandGlob, hasGlob } from "./glob.ts";
import { type Statement, tokenize, type Word } from "./tokenizer.ts";

/** One directive: its name, its arguments, its block (when it has one), and where it is. */
export interface Directive {
  readonly name: string;
  readonly args: readonly Word[];
  readonly block?: readonly Directive[];
  readonly at: SourceLocation;
}

/** The tree of a config file and what reading it found worth saying. */
export interface ConfigTree {
  readonly directives: readonly Directive[];
  readonly warnings: readonly ImportWarning[];
}

/**
 * Reads `file` and every file it includes. Throws {@link NginxParseError} for a file that cannot
 * be read, a missing or cyclic include, or text nginx would not parse (unbalanced braces…).
 */
export function readNginxConfig(file: string): ConfigTree {
  const reader = new Reader(dirname(file));
  const directives = reader.readFile(file, undefined);
  return { directives, warnings: reader.warnings };
}

class Reader {
  readonly warnings: ImportWarning[] = [];
  /** Real paths of the files being read, outermost first, and how they were named. */
  private readonly stack: { real: string; shown: string }[] = [];

  constructor(private readonly confDir: string) {}

  readFile(file: string, includedAt: SourceLocation | undefined): Directive[] {
    const text = this.readText(file, includedAt);
    const real = realpathSync(file);
    const loop = this.stack.findIndex((entry) => entry.real === real);
    if (loop >= 0) {
      const chain = [...this.stack.slice(loop).map((e) => e.shown), file].join(" → ");
      throw new NginxParseError(includedAt!, `cyclic include: ${chain}`);
    }
    this.stack.push({ real, shown: file });
    const statements = tokenize(text, file);
    const state = { index: 0 };
    const directives = this.readBlock(statements, state, undefined);
    this.stack.pop();
    return directives;
  }

  private readText(file: string, includedAt: SourceLocation | undefined): string {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // nginx's (strerror's) words for the usual causes.
      const why = code === "ENOENT"
        ? "No such file or directory"
        : code === "EACCES"
        ? "Permission denied"
        : code === "EISDIR"
        ? "Is a directory"
        : (error as Error).message;
      const at = includedAt ?? { file, line: 0, column: 0 };
      const what = includedAt === undefined ? "cannot read the config" : `cannot read ${file}`;
      throw new NginxParseError(at, `${what}: ${why}`);
    }
  }

  /** Statements up to the `}` that closes `opened` (or the end of the file at the top). */
  private readBlock(
    statements: readonly Statement[],
    state: { index: number },
    opened: Word | undefined,
  ): Directive[] {
    const directives: Directive[] = [];
    while (state.index < statements.length) {
      const statement = statements[state.index++];
      if (statement.kind === "end") {
        if (opened !== undefined) return directives;
        throw new NginxParseError(statement.at, `unexpected "}": no block is open here`);
      }
      const [name, ...args] = statement.words;
      if (statement.kind === "block") {
        const block = this.readBlock(statements, state, name);
        directives.push({ name: name.value, args, block, at: name.at });
      } else if (name.value === "include" && !name.quoted) {
        directives.push(...this.include(name, args));
      } else directives.push({ name: name.value, args, at: name.at });
    }
    if (opened !== undefined) {
      throw new NginxParseError(
        opened.at,
        `the "${opened.value}" block opened here is never closed: unexpected end of file, expecting "}"`,
      );
    }
    return directives;
  }

  private include(name: Word, args: readonly Word[]): Directive[] {
    if (args.length !== 1) {
      throw new NginxParseError(name.at, `invalid number of arguments in "include" directive`);
    }
    const pattern = args[0].value;
    const files = this.resolve(pattern, name.at);
    return files.flatMap((file) => this.readFile(file, name.at));
  }

  /** The files an include names; see the module comment for relative paths. */
  private resolve(pattern: string, at: SourceLocation): string[] {
    if (isAbsolute(pattern)) return this.matches(pattern, at, true);
    const found = this.matches(join(this.confDir, pattern), at, false);
    if (found.length > 0) return found;
    const ownDir = dirname(at.file);
    if (relative(ownDir, this.confDir) !== "") {
      const local = this.matches(join(ownDir, pattern), at, false);
      if (local.length > 0) {
        this.warnings.push({
          ...at,
          level: "warning",
          message: `include "${pattern}": found relative to ${ownDir}, the including file's ` +
            `directory; nginx resolves it against ${this.confDir} (the main config's directory), ` +
            `where it matches nothing`,
        });
        return local;
      }
    }
    return this.matches(join(this.confDir, pattern), at, true);
  }

  /** A glob's matches (none is fine for nginx), or the one file (which must then exist). */
  private matches(path: string, at: SourceLocation, final: boolean): string[] {
    if (hasGlob(path)) {
      const files = expandGlob(path);
      if (files.length === 0 && final) {
        this.warnings.push({
          ...at,
          level: "note",
          message: `include "${path}" matches no file (nginx accepts that silently)`,
        });
      }
      return files;
    }
    return final || existsSync(path) ? [path] : [];
  }
}
