/**
 * One access log line per {@link RequestRecord}, as JSON or as nginx's combined format followed by
 * the gateway's own fields as key=value. Pure functions: the record in, the line (without its
 * newline) out. Every client-provided string is escaped (see `escape.ts`); names from the config
 * (upstream, server id) and the gateway's own words (sticky outcome, error code) are not client
 * values but are escaped the same way in key=value fields, which cost nothing when clean.
 *
 * `time` is when the request head arrived (the record's `startMs`), as HAProxy logs it; the end
 * is `time` + the duration.
 *
 * @module
 */
import type { RequestRecord } from "../../proxy/request_record.ts";
import { escapeBare, escapeQuoted, safeJson } from "./escape.ts";

let isoMs = Number.NaN;
/** toISOString of isoMs: the requests of one millisecond share it (a string made by
 * concatenation instead would be a cons string, which takes JSON.stringify off its fast path). */
let isoText = "";

/** RFC 3339 in UTC with milliseconds; "" for a time that is not one (never a throw). */
function isoTime(epochMs: number): string {
  if (epochMs === isoMs) return isoText;
  if (!Number.isFinite(epochMs)) return "";
  isoText = new Date(epochMs).toISOString();
  isoMs = epochMs;
  return isoText;
}

/** Characters JSON.stringify leaves as they are but a terminal or a line splitter acts on. */
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029]/;

function jsonSafe(value: string | undefined): boolean {
  return value === undefined || !JSON_UNSAFE.test(value);
}

/** Milliseconds rounded to microseconds: a duration readable in JSON without float noise. */
function ms(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Milliseconds as nginx's `$request_time` shows seconds: "0.012" (millisecond resolution). */
function seconds(valueMs: number): string {
  return (Math.max(0, valueMs) / 1000).toFixed(3);
}

/**
 * The record as one JSON object: time (RFC 3339, UTC, milliseconds), kind, client, method,
 * target, protocol, status, bytes_in, bytes_out, duration_ms, upstream, server, upstream_status,
 * upstream_header_ms, attempts, sticky, code, request_id, user_agent, referer. A field that does
 * not apply is `null` (every line has every key, which makes queries simple).
 *
 * @example
 * ```ts
 * import { formatAccessJson } from "./format.ts";
 *
 * const line = formatAccessJson({
 *   kind: "http", startMs: Date.UTC(2026, 0, 2, 3, 4, 5, 6), clientAddress: "127.0.0.1",
 *   method: "GET", target: "/a?b=1", protocol: "HTTP/1.1", status: 200, bytesIn: 0,
 *   bytesOut: 5, durationMs: 1.5, upstream: "app", server: "web-1", upstreamStatus: 200,
 *   upstreamHeaderMs: 1.25, attempts: 1, sticky: "hit", error: undefined, requestId: "r1",
 *   userAgent: "curl/8", referer: undefined,
 * });
 * if (JSON.parse(line).time !== "2026-01-02T03:04:05.006Z") throw new Error(line);
 * ```
 */
export function formatAccessJson(record: RequestRecord): string {
  const line = JSON.stringify({
    time: isoTime(record.startMs),
    kind: record.kind,
    client: record.clientAddress,
    method: record.method,
    target: record.target,
    protocol: record.protocol,
    status: record.status,
    bytes_in: record.bytesIn,
    bytes_out: record.bytesOut,
    duration_ms: ms(record.durationMs),
    upstream: record.upstream ?? null,
    server: record.server ?? null,
    upstream_status: record.upstreamStatus ?? null,
    upstream_header_ms: record.upstreamHeaderMs === undefined ? null : ms(record.upstreamHeaderMs),
    attempts: record.attempts,
    sticky: record.sticky,
    code: record.error ?? null,
    request_id: record.requestId,
    user_agent: record.userAgent ?? null,
    referer: record.referer ?? null,
  });
  // JSON.stringify escaped quotes and C0 controls; what it leaves (DEL, C1, U+2028/9) can only
  // come from the client's strings: the whole line is rewritten only when one of them has some.
  return jsonSafe(record.target) && jsonSafe(record.userAgent) && jsonSafe(record.referer) &&
      jsonSafe(record.requestId) && jsonSafe(record.method) && jsonSafe(record.clientAddress) &&
      jsonSafe(record.protocol)
    ? line
    : safeJson(JSON.parse(line));
}

/**
 * nginx's combined format, `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent
 * "$http_referer" "$http_user_agent"`, then ` rt= uht= us= upstream= server= attempts= sticky=
 * code= rid= bytes_in=` (seconds for the times, as nginx's `$request_time` and
 * `$upstream_header_time`; `-` for what does not apply), and ` ws=open` or ` ws=close` on a
 * WebSocket's lines. `$time_local` is in the process's time zone, as nginx writes it.
 *
 * @example
 * ```ts
 * import { formatAccessCombined } from "./format.ts";
 *
 * const line = formatAccessCombined({
 *   kind: "http", startMs: Date.now(), clientAddress: "127.0.0.1", method: "GET",
 *   target: "/a b", protocol: "HTTP/1.1", status: 502, bytesIn: 0, bytesOut: 9,
 *   durationMs: 12, upstream: "app", server: undefined, upstreamStatus: undefined,
 *   upstreamHeaderMs: undefined, attempts: 2, sticky: "new", error: "connect_refused",
 *   requestId: "r1", userAgent: undefined, referer: undefined,
 * });
 * if (!line.includes('"GET /a b HTTP/1.1" 502 9 "-" "-" rt=0.012 uht=- us=- upstream=app')) {
 *   throw new Error(line);
 * }
 * ```
 */
export function formatAccessCombined(record: RequestRecord): string {
  const request = `${escapeQuoted(record.method)} ${escapeQuoted(record.target)} ${
    escapeQuoted(record.protocol)
  }`;
  const line = `${escapeQuoted(record.clientAddress)} - - [${
    timeLocal(record.startMs)
  }] "${request}" ${record.status} ${record.bytesOut} ${quotedOrDash(record.referer)} ${
    quotedOrDash(record.userAgent)
  } rt=${seconds(record.durationMs)} uht=${
    record.upstreamHeaderMs === undefined ? "-" : seconds(record.upstreamHeaderMs)
  } us=${record.upstreamStatus ?? "-"} upstream=${bareOrDash(record.upstream)} server=${
    bareOrDash(record.server)
  } attempts=${record.attempts} sticky=${record.sticky} code=${record.error ?? "-"} rid=${
    bareOrDash(record.requestId)
  } bytes_in=${record.bytesIn}`;
  return record.kind === "http"
    ? line
    : `${line} ws=${record.kind === "ws-open" ? "open" : "close"}`;
}

function quotedOrDash(value: string | undefined): string {
  return value === undefined ? '"-"' : `"${escapeQuoted(value)}"`;
}

function bareOrDash(value: string | undefined): string {
  return value === undefined || value === "" ? "-" : escapeBare(value);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The last second formatted: most lines in a busy second share it. */
let cachedSecond = Number.NaN;
let cachedText = "";

/** nginx's `$time_local`: `02/Dec/2026:11:46:01 +0000`, in the process's time zone. */
export function timeLocal(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    cachedText = formatTimeLocal(new Date(second * 1000));
    cachedSecond = second;
  }
  return cachedText;
}

function formatTimeLocal(date: Date): string {
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${two(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}:${
    two(date.getHours())
  }:${two(date.getMinutes())}:${two(date.getSeconds())} ${sign}${two(Math.floor(abs / 60))}${
    two(abs % 60)
  }`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
