/**
 * Runs a scenario's script against one target (real nginx or the gateway) and records what each
 * request saw: status, which backend answered, every Set-Cookie line byte for byte (its Expires
 * date checked to be within a second of now + the lifetime, then written as that lifetime).
 * {@link compareRuns} then holds the two records side by side: equal, or different exactly as
 * one of the documented deliberate differences (differences.ts) says, named at the step.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import { sleep } from "../support/gateway.ts";
import { ask } from "../support/http.ts";
import type { Backend } from "./backend.ts";
import type { Difference, DifferenceContext } from "./differences.ts";
import { addressText, type Backends, type Scenario } from "./scenario.ts";

/** Which side a run is of. */
export type TargetName = "nginx" | "gateway";

/** One response as compared: `200 B | route=…; Path=/` (backend "-" when nobody answered). */
export interface Seen {
  readonly status: number;
  readonly backend: string;
  /** Every Set-Cookie line, Expires normalized. */
  readonly cookies: readonly string[];
}

/** One step of a script as run against one target: a request, or a round of them. */
export interface Step {
  readonly label: string;
  readonly seen: readonly Seen[];
  /** The documented deliberate difference this step shows, if any. */
  readonly difference?: Difference;
}

/** How a step's request differs from a plain `GET /ID/x`. */
export interface AskOptions {
  /** Below the scenario's location: `/ID/<path>` (default "x"). */
  readonly path?: string;
  /** Through the location with `sticky_no_fallback` (`/ID/nf/…`). */
  readonly nf?: boolean;
  /** A Host header (the server-level no_fallback block's name). */
  readonly host?: string;
  readonly cookies?: readonly string[];
  /** More request header lines. */
  readonly headers?: readonly [string, string][];
  readonly method?: string;
  readonly body?: string;
}

/** What a step returns to the script: enough to carry a cookie on. */
export interface Got extends Seen {
  /** The sticky cookie's value in this response's Set-Cookie, if it has one. */
  readonly issued?: string;
}

/** The handle a scenario's script drives; the same calls run against both targets. */
export interface Probe {
  readonly target: TargetName;
  /** One request; `difference` names the documented difference this step shows. */
  ask(label: string, options?: AskOptions, difference?: Difference): Promise<Got>;
  /** `n` requests in a row, recorded as one step (round robin order, shares). */
  round(label: string, n: number, options?: AskOptions, difference?: Difference): Promise<Got[]>;
  /** The valid cookie value for backend `letter` (computed here, independently of both). */
  value(letter: string): string;
  /** The backend `letter` (to stop or restart it). */
  backend(letter: string): Backend;
  sleep(ms: number): Promise<void>;
}

const UNITS: Record<string, number> = {
  y: 365 * 86400,
  M: 30 * 86400,
  w: 7 * 86400,
  d: 86400,
  h: 3600,
  m: 60,
  s: 1,
};

/** nginx's `ngx_parse_time(value, 1)` for the forms the scenarios use ("1h30m", "90", "2d"). */
export function lifetimeSeconds(text: string): number {
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([yMwdhms]?)/g)) {
    total += Number(n) * (unit === "" ? 1 : UNITS[unit]);
  }
  return total;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const COOKIE_DATE = /^(\w{3}), (\d{2})-(\w{3})-(\d{2}|\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;

/** Seconds since the epoch of a cookie date (`Www, DD-Mon-YY[YY] HH:MM:SS GMT`), or NaN. */
export function cookieDate(text: string): number {
  const m = COOKIE_DATE.exec(text);
  if (m === null) return NaN;
  const year = m[4].length === 2 ? 2000 + Number(m[4]) : Number(m[4]);
  const ms = Date.UTC(year, MONTHS.indexOf(m[3]), Number(m[2]), +m[5], +m[6], +m[7]);
  if (MONTHS.indexOf(m[3]) < 0 || DAYS[new Date(ms).getUTCDay()] !== m[1]) return NaN;
  return ms / 1000;
}

/** The form of a cookie date, its digits as letters: `Www, DD-Mon-YY HH:MM:SS GMT`. */
function dateForm(date: string): string {
  const year = COOKIE_DATE.exec(date)?.[4] ?? "";
  return `Www, DD-Mon-${"Y".repeat(year.length)} HH:MM:SS GMT`;
}

/**
 * `line` with its Expires date replaced by `<now+Ns as FORM>` when it is within a second of the
 * request's time + `lifetime` (FORM keeps the year's digit count, which nginx 1.30 and the
 * module write differently), else by what is wrong with it (so the comparison shows it).
 * `lifetime` "max" keeps the date as it is (nginx 1.30's fixed 2037 one).
 */
function normalizeExpires(
  line: string,
  lifetime: number | "max" | undefined,
  t0: number,
  t1: number,
): string {
  return line.replace(/(; [Ee]xpires=)([^;]+)/, (_, attr: string, date: string) => {
    if (lifetime === "max") return `${attr}${date}`;
    if (lifetime === undefined) return `${attr}<unexpected: ${date}>`;
    const at = cookieDate(date);
    if (Number.isNaN(at)) return `${attr}<not a cookie date: ${date}>`;
    const low = Math.floor(t0 / 1000) + lifetime - 1;
    const high = Math.floor(t1 / 1000) + lifetime + 1;
    if (at < low || at > high) return `${attr}<${date}: not now+${lifetime}s>`;
    return `${attr}<now+${lifetime}s as ${dateForm(date)}>`;
  });
}

const digest = (algorithm: string, text: string) =>
  createHash(algorithm).update(text).digest("hex");

/** The valid value for the server `letter` of `scenario`, by the module's or nginx 1.30's rule. */
export function validValue(
  scenario: Scenario,
  backends: Backends,
  kind: "module" | "native",
  letter: string,
): string {
  const spec = scenario.servers.find((s) => s.backend === letter);
  if (spec === undefined) throw new Error(`${scenario.id}: no server ${letter}`);
  const port = backends.get(letter)!.port;
  // nginx 1.30: the resolved address as nginx prints it (localhost and 0-padded ports resolve).
  const resolved = spec.spelling === "ipv6" ? `[::1]:${port}` : `127.0.0.1:${port}`;
  if (kind === "native") return spec.route ?? digest("md5", resolved);
  const text = addressText(spec, port);
  const key = scenario.sticky.hmacKey ?? "secret";
  switch (scenario.sticky.mode ?? "md5") {
    case "md5":
      return digest("md5", text);
    case "sha1":
      return digest("sha1", text);
    case "hmac-md5":
      return createHmac("md5", key).update(text).digest("hex");
    case "hmac-sha1":
      return createHmac("sha1", key).update(text).digest("hex");
    case "raw":
      return text;
    case "index":
      return String(scenario.servers.filter((s) => !s.backup).indexOf(spec));
  }
}

/** Runs `scenario`'s script against the target listening on `port`; its steps in order. */
export async function runScript(
  scenario: Scenario,
  backends: Backends,
  kind: "module" | "native",
  target: TargetName,
  port: number,
): Promise<Step[]> {
  const steps: Step[] = [];
  const name = scenario.sticky.name ?? "route";
  const expires = scenario.sticky.expires;
  const lifetime = expires === undefined || expires === "max" ? expires : lifetimeSeconds(expires);
  const one = async (options: AskOptions): Promise<Got> => {
    const base = options.host !== undefined
      ? "/"
      : options.nf
      ? `/${scenario.id}/nf/`
      : `/${scenario.id}/`;
    const t0 = Date.now();
    const answer = await ask(port, {
      path: base + (options.path ?? "x"),
      method: options.method,
      body: options.body,
      cookies: options.cookies,
      headers: [
        ...(options.host === undefined ? [] : [["Host", options.host] as [string, string]]),
        ...(options.headers ?? []),
      ],
      name,
    });
    const t1 = Date.now();
    const issued = answer.sticky.length > 0
      ? /^[^=]*=([^;]*)/.exec(answer.sticky[0])?.[1]
      : undefined;
    return {
      status: answer.status,
      backend: answer.servedBy ?? "-",
      cookies: answer.setCookies.map((line) => normalizeExpires(line, lifetime, t0, t1)),
      issued,
    };
  };
  const probe: Probe = {
    target,
    async ask(label, options = {}, difference) {
      const got = await one(options);
      steps.push({ label, seen: [got], difference });
      return got;
    },
    async round(label, n, options = {}, difference) {
      const all: Got[] = [];
      for (let i = 0; i < n; i++) all.push(await one(options));
      steps.push({ label, seen: all, difference });
      return all;
    },
    value: (letter) => validValue(scenario, backends, kind, letter),
    backend(letter) {
      const found = backends.get(letter);
      if (found === undefined) throw new Error(`${scenario.id}: no backend ${letter}`);
      return found;
    },
    sleep,
  };
  await scenario.script(probe);
  return steps;
}

/** `200 B | set-cookie…`: one response as one comparable line. */
export function show(seen: Seen): string {
  return `${seen.status} ${seen.backend}${seen.cookies.map((c) => ` | ${c}`).join("")}`;
}

/**
 * The problems between nginx's steps and the gateway's: each step equal, or (where the script
 * named a documented difference) different exactly as that difference says.
 */
export function compareRuns(
  nginx: readonly Step[],
  gateway: readonly Step[],
  context: DifferenceContext,
): string[] {
  const problems: string[] = [];
  if (nginx.length !== gateway.length) {
    problems.push(`nginx ran ${nginx.length} steps, the gateway ${gateway.length}`);
  }
  for (let i = 0; i < Math.min(nginx.length, gateway.length); i++) {
    const [n, g] = [nginx[i], gateway[i]];
    const theirs = n.seen.map(show);
    const ours = g.seen.map(show);
    if (n.difference === undefined) {
      if (JSON.stringify(theirs) !== JSON.stringify(ours)) {
        problems.push(
          `step ${i + 1} "${n.label}" differs:\n  nginx:   ${theirs.join("\n           ")}\n` +
            `  gateway: ${ours.join("\n           ")}`,
        );
      }
      continue;
    }
    const wrong = n.difference.check(n.seen, g.seen, context);
    if (wrong !== undefined) {
      problems.push(
        `step ${i + 1} "${n.label}" is not the documented difference ${n.difference.id} ` +
          `(${wrong}):\n  nginx:   ${theirs.join("\n           ")}\n` +
          `  gateway: ${ours.join("\n           ")}`,
      );
    }
  }
  return problems;
}
