/**
 * The access log and event lines: formatters, the non-blocking writer, `logEvent`.
 *
 * @module
 */
export { AccessLog } from "./access_log.ts";
export {
  configureEvents,
  type EventFields,
  type EventLevel,
  flushEvents,
  formatEvent,
  logEvent,
} from "./events.ts";
export { formatAccessCombined, formatAccessJson, timeLocal } from "./format.ts";
export { escapeBare, escapeQuoted, safeJson } from "./escape.ts";
export {
  AccessLogWriter,
  type LogDestination,
  type LogWriterOptions,
  type StdioWrite,
} from "./writer.ts";
