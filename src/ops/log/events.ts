/**
 * Structured event lines on stderr: what happened to the gateway (a server marked down or up, a
 * drain done, a log file that cannot be written), one JSON object per line with `time`, `level`
 * and `event` first. Written through a non-blocking {@link AccessLogWriter} on stderr, at once
 * when possible (so a line before an exit is not lost), never blocking, never throwing.
 *
 * @module
 */
import { safeJson } from "./escape.ts";
import { AccessLogWriter, type LogWriterOptions, type StdioWrite } from "./writer.ts";

/** How bad an event is. */
export type EventLevel = "info" | "warn" | "error";

/** An event's fields: config names, numbers, flags (undefined ones are left out). */
export type EventFields = Readonly<Record<string, string | number | boolean | undefined>>;

/** Events are few: written soon, and a stuck stderr holds at most 256 KiB of them. */
const EVENT_WRITER_OPTIONS: LogWriterOptions = { flushIntervalMs: 10, maxPendingBytes: 256 * 1024 };

let writer: AccessLogWriter | undefined;
let stdio: StdioWrite | undefined;

function stderrWriter(): AccessLogWriter {
  writer ??= new AccessLogWriter("stderr", { ...EVENT_WRITER_OPTIONS, stdio });
  return writer;
}

/**
 * Gives event lines the runtime's non-blocking stdio write (see {@link StdioWrite}); call it at
 * start, before the first event. Lines already queued are still written by the old writer.
 */
export function configureEvents(options: { readonly stdio?: StdioWrite }): void {
  stdio = options.stdio;
  writer = undefined;
}

/**
 * The event as its line (without the newline): `{"time":…,"level":…,"event":…,…fields}`; a
 * field named time, level or event is left out (they are the line's own).
 *
 * @example
 * ```ts
 * import { formatEvent } from "./events.ts";
 *
 * const line = formatEvent("warn", "server_down", { upstream: "app", server: "web-1" }, 0);
 * if (line !== '{"time":"1970-01-01T00:00:00.000Z","level":"warn","event":"server_down",' +
 *   '"upstream":"app","server":"web-1"}') throw new Error(line);
 * ```
 */
export function formatEvent(
  level: EventLevel,
  event: string,
  fields: EventFields,
  nowMs: number = Date.now(),
): string {
  const line: Record<string, string | number | boolean> = {
    time: new Date(nowMs).toISOString(),
    level,
    event,
  };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined && !(key in line)) line[key] = value;
  }
  return safeJson(line);
}

/**
 * Writes one structured event line to stderr; never throws, never blocks.
 *
 * @example
 * ```ts
 * import { logEvent } from "./events.ts";
 *
 * logEvent("info", "example", { upstream: "app", servers: 2 });
 * ```
 */
export function logEvent(level: EventLevel, event: string, fields: EventFields = {}): void {
  try {
    stderrWriter().writeNow(formatEvent(level, event, fields));
  } catch {
    // stderr cannot even be opened: there is nowhere to say so
  }
}

/** Resolves when the event lines written so far are out (before an exit); at most `timeoutMs`. */
export async function flushEvents(timeoutMs = 1000): Promise<void> {
  if (writer === undefined) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    writer.flushed(),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
