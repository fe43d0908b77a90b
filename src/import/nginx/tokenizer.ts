/**
 * nginx's config tokenizer (`ngx_conf_read_token`), rule for rule: words separated by spaces,
 * tabs and line ends; `"…"` and `'…'` quote a word (and must be followed by a space, `;`, `{` or
 * `)`); a backslash keeps the next character from ending a word, and `\"` `\'` `\\` `\t` `\r`
 * `\n` are unescaped (any other `\x` stays as written); `#` starts a comment only where a word
 * could start; `${` does not open a block. Variables stay as text.
 *
 * @module
 */
import { NginxParseError, type SourceLocation } from "./errors.ts";

/** One word of a directive, unescaped, with where it starts. */
export interface Word {
  readonly value: string;
  readonly quoted: boolean;
  readonly at: SourceLocation;
}

/** A directive's words and what ended it: `;`, `{` (a block follows), or a lone `}`. */
export type Statement =
  | { readonly kind: "directive" | "block"; readonly words: readonly Word[] }
  | { readonly kind: "end"; readonly at: SourceLocation };

const SPACE = new Set([" ", "\t", "\r", "\n"]);

/** Unescapes a word as nginx does when it stores it. */
function unescape(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === "\\" && i + 1 < raw.length) {
      const next = raw[i + 1];
      if (next === '"' || next === "'" || next === "\\") {
        out += next;
        i++;
        continue;
      }
      const control = next === "t" ? "\t" : next === "r" ? "\r" : next === "n" ? "\n" : "";
      if (control !== "") {
        out += control;
        i++;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/**
 * Splits config text into statements. Throws {@link NginxParseError} at the character nginx
 * would stop at.
 *
 * @example
 * ```ts
 * const [first] = tokenize('server "127.0.0.1:9001" weight=2;', "nginx.conf");
 * // first.kind === "directive"; its words: server, 127.0.0.1:9001, weight=2
 * ```
 */
export function tokenize(text: string, file: string): Statement[] {
  return new Tokenizer(text, file).run();
}

class Tokenizer {
  private position = 0;
  private line = 1;
  private column = 1;
  private readonly statements: Statement[] = [];
  private words: Word[] = [];

  constructor(private readonly text: string, private readonly file: string) {}

  run(): Statement[] {
    while (this.position < this.text.length) {
      const at = this.here();
      const c = this.next();
      if (SPACE.has(c)) continue;
      if (c === "#") this.skipComment();
      else if (c === ";" || c === "{") this.endStatement(c, at);
      else if (c === "}") this.closeBlock(at);
      else if (c === '"' || c === "'") this.readQuoted(c, at);
      else this.readWord(c, at);
    }
    if (this.words.length > 0) {
      throw new NginxParseError(
        this.here(),
        `unexpected end of file, expecting ";" or "}" after "${
          this.words[0].value
        }" (started at line ${this.words[0].at.line})`,
      );
    }
    return this.statements;
  }

  private here(): SourceLocation {
    return { file: this.file, line: this.line, column: this.column };
  }

  private next(): string {
    const c = this.text[this.position++];
    if (c === "\n") {
      this.line++;
      this.column = 1;
    } else this.column++;
    return c;
  }

  private peek(): string | undefined {
    return this.text[this.position];
  }

  private skipComment(): void {
    while (this.position < this.text.length && this.peek() !== "\n") this.next();
  }

  private endStatement(c: ";" | "{", at: SourceLocation): void {
    if (this.words.length === 0) {
      throw new NginxParseError(at, `unexpected "${c}": expected a directive name before it`);
    }
    this.statements.push({ kind: c === ";" ? "directive" : "block", words: this.words });
    this.words = [];
  }

  private closeBlock(at: SourceLocation): void {
    if (this.words.length > 0) {
      throw new NginxParseError(
        at,
        `unexpected "}": expected ";" to end "${this.words[0].value}" (line ${
          this.words[0].at.line
        }) first`,
      );
    }
    this.statements.push({ kind: "end", at });
  }

  /** A quoted word: up to the same unescaped quote, then a space, `;`, `{` or `)` must follow. */
  private readQuoted(quote: string, at: SourceLocation): void {
    let raw = "";
    for (;;) {
      if (this.position >= this.text.length) {
        throw new NginxParseError(
          at,
          `unexpected end of file: the ${quote} opened here is never closed`,
        );
      }
      const c = this.next();
      if (c === "\\" && this.position < this.text.length) {
        raw += c + this.next();
        continue;
      }
      if (c === quote) break;
      raw += c;
    }
    this.words.push({ value: unescape(raw), quoted: true, at });
    const after = this.peek();
    if (after === undefined || SPACE.has(after) || after === ";" || after === "{") return;
    if (after === ")") {
      this.next();
      return;
    }
    throw new NginxParseError(
      this.here(),
      `unexpected "${after}" after the quoted "${raw}": expected a space, ";" or "{"`,
    );
  }

  /** An unquoted word: up to a space, `;` or `{` (a `{` right after `$` is part of it). */
  private readWord(first: string, at: SourceLocation): void {
    let raw = first;
    let variable = first === "$";
    if (first === "\\" && this.position < this.text.length) raw += this.next();
    for (;;) {
      const c = this.peek();
      if (c === undefined) break;
      if (c === "{" && variable) {
        raw += this.next();
        continue;
      }
      variable = false;
      if (c === "\\") {
        raw += this.next();
        if (this.position < this.text.length) raw += this.next();
        continue;
      }
      if (c === "$") variable = true;
      if (SPACE.has(c) || c === ";" || c === "{") break;
      raw += this.next();
    }
    this.words.push({ value: unescape(raw), quoted: false, at });
  }
}
