/**
 * `Set-Cookie` values byte-identical to nginx-sticky-module-ng, plus the attributes it lacks.
 *
 * @module
 */

/** The attributes of the sticky cookie, as configured. */
export interface StickyCookieAttributes {
  readonly name: string;
  readonly domain?: string;
  readonly path: string;
  /** Lifetime in seconds; absent for a session cookie. */
  readonly expiresSeconds?: number;
  readonly secure: boolean;
  readonly httpOnly: boolean;
  readonly sameSite?: "Strict" | "Lax" | "None";
  readonly partitioned: boolean;
}

/**
 * A `Set-Cookie` value split around the one part that changes with the clock (`Expires`), so
 * that everything else is built once when the config loads.
 */
export interface SetCookieTemplate {
  /** `name=value[; Domain=d]` */
  readonly head: string;
  /** `; Path=p[; Secure][; HttpOnly][; SameSite=X][; Partitioned]` */
  readonly tail: string;
  readonly expiresSeconds?: number;
}

/**
 * Prepares the `Set-Cookie` value for one server's cookie value.
 *
 * @example
 * ```ts
 * const t = setCookieTemplate({ name: "route", path: "/", secure: false, httpOnly: false,
 *   partitioned: false }, "422db4e6da7b4bba46bd476612df0469");
 * renderSetCookie(t, Date.now()); // "route=422db4e6da7b4bba46bd476612df0469; Path=/"
 * ```
 */
export function setCookieTemplate(
  attributes: StickyCookieAttributes,
  value: string,
): SetCookieTemplate {
  let head = `${attributes.name}=${value}`;
  if (attributes.domain !== undefined) head += `; Domain=${attributes.domain}`;
  let tail = `; Path=${attributes.path}`;
  if (attributes.secure) tail += "; Secure";
  if (attributes.httpOnly) tail += "; HttpOnly";
  if (attributes.sameSite !== undefined) tail += `; SameSite=${attributes.sameSite}`;
  if (attributes.partitioned) tail += "; Partitioned";
  return attributes.expiresSeconds === undefined
    ? { head: head + tail, tail: "" }
    : { head, tail, expiresSeconds: attributes.expiresSeconds };
}

/** The `Set-Cookie` value for a response sent at `nowMs`. */
export function renderSetCookie(template: SetCookieTemplate, nowMs: number): string {
  if (template.expiresSeconds === undefined) return template.head;
  const expires = netscapeDate(Math.floor(nowMs / 1000) + template.expiresSeconds);
  return `${template.head}; Expires=${expires}${template.tail}`;
}

/** What a header value may hold: visible ASCII, space and tab (RFC 9110 field-value, no obs-text). */
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/**
 * Why `value` cannot go out as a header value unchanged, or undefined when it can: only visible
 * ASCII, SP and HTAB, no whitespace at either end (the runtimes' `Headers` would trim it), and
 * accepted by this runtime's `Headers` as it is.
 *
 * @example
 * ```ts
 * invalidHeaderValue("route=v; Path=/"); // undefined
 * invalidHeaderValue("route=v; Path=/日本"); // 'character U+65E5 at 15 is not visible ASCII'
 * ```
 */
export function invalidHeaderValue(value: string): string | undefined {
  let at = 0;
  for (const c of value) {
    if (!HEADER_VALUE.test(c)) {
      const code = c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
      return `character U+${code} at ${at} is not visible ASCII`;
    }
    at++;
  }
  if (value.trim() !== value) return "it starts or ends with whitespace";
  const headers = new Headers();
  try {
    headers.append("set-cookie", value);
  } catch (error) {
    return `the runtime refuses it: ${(error as Error).message}`;
  }
  return headers.get("set-cookie") === value ? undefined : "the runtime changes it";
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * The module's `Expires` date: Netscape style with dashes, in GMT.
 *
 * @param epochSeconds seconds since the Unix epoch
 * @example
 * ```ts
 * netscapeDate(1795263212); // "Sat, 21-Nov-2026 12:13:32 GMT"
 * ```
 */
export function netscapeDate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  return `${DAYS[d.getUTCDay()]}, ${pad2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${
    String(d.getUTCFullYear()).padStart(4, "0")
  } ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} GMT`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
