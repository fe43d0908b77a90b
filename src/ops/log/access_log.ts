/**
 * The access log: `[log]` settings in, one line per {@link RequestRecord} out, through the
 * non-blocking {@link AccessLogWriter}. What the gateway's request-done consumer calls.
 *
 * @module
 */
import type { LogSettings } from "../../config/log.ts";
import type { RequestRecord } from "../../proxy/request_record.ts";
import { logEvent } from "./events.ts";
import { formatAccessCombined, formatAccessJson } from "./format.ts";
import { AccessLogWriter, type LogDestination, type LogWriterOptions } from "./writer.ts";

/**
 * Formats and writes request records; created by {@link AccessLog.open} (undefined when the log is
 * off). `log()` never throws: a record that cannot be formatted or written is counted as dropped.
 *
 * @example
 * ```ts
 * import { mkdtempSync, readFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { AccessLog } from "./access_log.ts";
 *
 * const file = join(mkdtempSync(join(tmpdir(), "log-")), "access.log");
 * const log = AccessLog.open({ access: "file", file, format: "json" });
 * log?.log({
 *   kind: "http", startMs: Date.now(), clientAddress: "127.0.0.1", method: "GET", target: "/",
 *   protocol: "HTTP/1.1", status: 200, bytesIn: 0, bytesOut: 2, durationMs: 1,
 *   upstream: "app", server: "web-1", upstreamStatus: 200, upstreamHeaderMs: 0.5, attempts: 1,
 *   sticky: "new", error: undefined, requestId: "r1", userAgent: undefined, referer: undefined,
 * });
 * await log?.close();
 * if (JSON.parse(readFileSync(file, "utf8")).server !== "web-1") throw new Error("logged");
 * ```
 */
export class AccessLog {
  readonly #writer: AccessLogWriter;
  readonly #format: (record: RequestRecord) => string;
  readonly #onDrop: ((lines: number) => void) | undefined;
  #unformatted = 0;

  private constructor(
    writer: AccessLogWriter,
    format: (record: RequestRecord) => string,
    onDrop: ((lines: number) => void) | undefined,
  ) {
    this.#writer = writer;
    this.#format = format;
    this.#onDrop = onDrop;
  }

  /**
   * The access log `settings` ask for, or undefined when `access = "off"`. Throws when the file
   * cannot be opened (at start: the config check found its directory, so this is rare).
   * `options.onDrop` is where lost lines are counted (the metrics); write failures are reported
   * with {@link logEvent} unless `options.onError` is given.
   */
  static open(settings: LogSettings, options: LogWriterOptions = {}): AccessLog | undefined {
    const destination: LogDestination | undefined = settings.access === "off"
      ? undefined
      : settings.access === "file"
      ? { file: settings.file ?? "" }
      : settings.access;
    if (destination === undefined) return undefined;
    const target = typeof destination === "string" ? destination : destination.file;
    const writer = new AccessLogWriter(destination, {
      ...options,
      onError: options.onError ??
        ((error) => logEvent("error", "access_log_failed", { target, error: error.message })),
    });
    return new AccessLog(
      writer,
      settings.format === "combined" ? formatAccessCombined : formatAccessJson,
      options.onDrop,
    );
  }

  /** Writes the record's line; O(1), never throws, never waits. */
  log(record: RequestRecord): void {
    let line: string;
    try {
      line = this.#format(record);
    } catch {
      // A record the formatter cannot read is a bug elsewhere: counted, never the request's end.
      this.#unformatted++;
      this.#onDrop?.(1);
      return;
    }
    this.#writer.write(line);
  }

  /** Reopens the file (SIGUSR1, after logrotate moved it); nothing for stdout/stderr. */
  reopen(): void {
    this.#writer.reopen();
  }

  /** Writes what is queued and closes the file; at most `timeoutMs`. */
  close(timeoutMs?: number): Promise<void> {
    return this.#writer.close(timeoutMs);
  }

  /** Lines lost so far (buffer full, destination failing). */
  get dropped(): number {
    return this.#writer.dropped + this.#unformatted;
  }

  /** The writer underneath (tests). */
  get writer(): AccessLogWriter {
    return this.#writer;
  }
}
