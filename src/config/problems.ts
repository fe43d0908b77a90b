/**
 * Config errors: every problem found, each naming the file, the key path, what was wrong and
 * what is allowed.
 *
 * @module
 */

/** One problem at one key, e.g. `upstreams.app.sticky.hash: "md55" is not one of md5, sha1, index`. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** Thrown when a config cannot be used; `main` prints one line per problem and exits 2. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  readonly file: string;

  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(problems.map((p) => formatProblem(file, p)).join("\n"));
    this.name = "ConfigError";
    this.file = file;
    this.problems = problems;
  }
}

/** `FILE: key.path: message` */
export function formatProblem(file: string, problem: ConfigProblem): string {
  return problem.path === ""
    ? `${file}: ${problem.message}`
    : `${file}: ${problem.path}: ${problem.message}`;
}

/** Collects problems while a config is validated, so that one run reports all of them. */
export class Problems {
  readonly list: ConfigProblem[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }
}
