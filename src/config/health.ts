/**
 * `[upstreams.NAME.health]`: active health checks (issue 9 point 6). Each server of the upstream
 * gets `GET path` every `interval`; `fall` failed checks in a row take it out, `rise` passed ones
 * bring it back (HAProxy's `inter`, `rise`, `fall`, with its defaults: 2s, 2, 3).
 * An answer with `drain_status` puts the server into drain, so a backend can leave by itself.
 *
 * @module
 */
import { describe, type Fields } from "./fields.ts";

/** An inclusive range of HTTP statuses. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
}

/** Active health check settings of one upstream. */
export interface HealthCheckSettings {
  /** Origin-form target of the probe: starts with "/", may carry a query. */
  readonly path: string;
  readonly intervalMs: number;
  /** Limit for connecting and for the whole answer, each probe. */
  readonly timeoutMs: number;
  /** Passed checks in a row that bring a down server back. */
  readonly rise: number;
  /** Failed checks in a row that take an up server out. */
  readonly fall: number;
  /** Statuses that pass (default 200-399). */
  readonly statuses: readonly StatusRange[];
  /** The probe's Host header; absent = the server's address. */
  readonly host?: string;
  /** An answer with this status puts the server into drain (and counts as passed). */
  readonly drainStatus?: number;
}

/** HAProxy's `inter` default. */
export const DEFAULT_HEALTH_INTERVAL_MS = 2000;
/** A probe answering slower than this fails: well under the interval. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 1000;
/** HAProxy's `rise` and `fall` defaults. */
export const DEFAULT_RISE = 2;
export const DEFAULT_FALL = 3;
/** 2xx and 3xx pass, as HAProxy's `httpchk` and NGINX Plus's default `match`. */
export const DEFAULT_STATUSES: readonly StatusRange[] = Object.freeze([
  Object.freeze({ from: 200, to: 399 }),
]);

// A request-target's characters (RFC 3986 pchar, "/", "?", "%"): it goes into the request line.
const PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;
// A Host header value: a host name, IPv4 or [IPv6], and an optional port.
const HOST = /^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const RANGE = /^(\d{3})(?:-(\d{3}))?$/;

/** Reads the health table; problems are recorded in `fields.problems` with their key paths. */
export function readHealthSettings(fields: Fields): HealthCheckSettings {
  const path = readPath(fields);
  const host = fields.string("host");
  if (host !== undefined && !HOST.test(host)) {
    fields.problems.add(
      fields.keyPath("host"),
      `${describe(host)} is not a host name; write a name, an IPv4 or [IPv6] address, ` +
        `with an optional :port (e.g. "app.internal")`,
    );
  }
  const drainStatus = fields.has("drain_status")
    ? fields.integer("drain_status", 0, 100, 599)
    : undefined;
  const settings: HealthCheckSettings = {
    path,
    intervalMs: fields.duration("interval", DEFAULT_HEALTH_INTERVAL_MS, 10),
    timeoutMs: fields.duration("timeout", DEFAULT_HEALTH_TIMEOUT_MS, 1),
    rise: fields.integer("rise", DEFAULT_RISE, 1, 100),
    fall: fields.integer("fall", DEFAULT_FALL, 1, 100),
    statuses: readStatuses(fields),
    ...(host === undefined || !HOST.test(host) ? {} : { host }),
    ...(drainStatus === undefined || drainStatus === 0 ? {} : { drainStatus }),
  };
  fields.finish();
  return Object.freeze(settings);
}

/** Whether `status` passes under these settings. */
export function statusPasses(settings: HealthCheckSettings, status: number): boolean {
  for (const range of settings.statuses) {
    if (status >= range.from && status <= range.to) return true;
  }
  return false;
}

function readPath(fields: Fields): string {
  const path = fields.string("path");
  if (path === undefined) {
    if (!fields.has("path")) {
      fields.problems.add(
        fields.keyPath("path"),
        `missing; write the path to probe, e.g. path = "/health"`,
      );
    }
    return "/";
  }
  if (!PATH.test(path)) {
    fields.problems.add(
      fields.keyPath("path"),
      `${describe(path)} is not a request path; start it with "/" and percent-encode ` +
        `spaces and other characters outside RFC 3986 (e.g. "/health?full=1")`,
    );
    return "/";
  }
  return path;
}

function readStatuses(fields: Fields): readonly StatusRange[] {
  const value = fields.raw("status");
  if (value === undefined) return DEFAULT_STATUSES;
  const key = fields.keyPath("status");
  const fix = `write a list of statuses and ranges, e.g. ["200-399"] or [200, 204]`;
  if (!Array.isArray(value) || value.length === 0) {
    const what = Array.isArray(value) ? "an empty list passes nothing" : describe(value) +
      " is not a list of statuses";
    fields.problems.add(key, `${what}; ${fix}`);
    return DEFAULT_STATUSES;
  }
  const ranges: StatusRange[] = [];
  for (const entry of value) {
    const range = parseRange(entry);
    if (range === undefined) {
      fields.problems.add(
        key,
        `${describe(entry)} is not a status (100-599) or a range "FROM-TO"; ${fix}`,
      );
      return DEFAULT_STATUSES;
    }
    ranges.push(Object.freeze(range));
  }
  return Object.freeze(ranges);
}

function parseRange(entry: unknown): StatusRange | undefined {
  const n = typeof entry === "bigint" ? Number(entry) : entry;
  let from: number;
  let to: number;
  if (typeof n === "number") {
    from = to = n;
  } else if (typeof n === "string") {
    const match = RANGE.exec(n.trim());
    if (match === null) return undefined;
    from = Number(match[1]);
    to = match[2] === undefined ? from : Number(match[2]);
  } else return undefined;
  const valid = (s: number) => Number.isInteger(s) && s >= 100 && s <= 599;
  return valid(from) && valid(to) && from <= to ? { from, to } : undefined;
}
