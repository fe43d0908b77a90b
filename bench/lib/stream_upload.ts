/**
 * The 1 GiB upload of the streaming rows, one command line for `make bench` (bench/run.ts) and
 * `make profile --load upload` (bench/profile.ts): curl sends the file with a Content-Length and
 * no `Expect: 100-continue`, and prints the sink's JSON answer then its own total time.
 *
 * @module
 */

/** curl's argv (after `load`, e.g. a taskset prefix) uploading `file` to `url` within `maxTime` s. */
export function uploadArgv(load: string[], file: string, url: string, maxTime: number): string[] {
  return [
    ...load,
    "curl",
    "-sS",
    "--fail",
    "--max-time",
    String(maxTime),
    "-H",
    "Expect:",
    "-H",
    "Content-Type: application/octet-stream",
    "-T",
    file,
    "-w",
    "\n%{time_total}",
    url,
  ];
}
