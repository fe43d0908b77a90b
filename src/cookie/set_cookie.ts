/**
 * `Set-Cookie` values byte-identical to nginx-sticky-module-ng, plus the attributes it lacks; and
 * (`format = "nginx"`) byte-identical to nginx's own `sticky cookie` (observed on nginx 1.30.4,
 * /work/notes/nginx-native-observed.md): lower-case names in its order, `expires` with a two-digit
 * year up to 2037, `max-age`, no path unless configured.
 *
 * @module
 */

/** Whose bytes: nginx-sticky-module-ng's (`module`) or nginx's own `sticky cookie` (`nginx`). */
export type CookieFormat = "module" | "nginx";

/** The attributes of the sticky cookie, as configured. */
export interface StickyCookieAttributes {
  readonly name: string;
  readonly domain?: string;
  /** The module always sends a path (its default "/"); nginx only when configured. */
  readonly path?: string;
  /** Lifetime in seconds; absent for a session cookie. nginx: {@link NGINX_MAX_EXPIRES} is
   * `expires=max`. */
  readonly expiresSeconds?: number;
  readonly secure: boolean;
  readonly httpOnly: boolean;
  /** `Strict`, `Lax`, `None`; under `nginx` as written (any case), as nginx writes it. */
  readonly sameSite?: string;
  readonly partitioned: boolean;
  /** Absent = `module`. */
  readonly format?: CookieFormat;
  /** The value is made per response (`mode = "token"`): the template leaves a place for it. */
  readonly valuePerResponse?: boolean;
}

/** nginx's `expires=max` (NGX_HTTP_STICKY_COOKIE_MAX_EXPIRES): any lifetime equal to it is sent
 * as the fixed string below, as nginx does. */
export const NGINX_MAX_EXPIRES = 2145916555;
const NGINX_MAX_EXPIRES_TEXT = "; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000";

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
  /** nginx's date and `max-age` rather than the module's `Expires`. */
  readonly nginx?: boolean;
  /** With a value per response: `head` is `name=` and this follows the value (`[; Domain=d]`,
   * and the tail too for a session cookie). */
  readonly afterValue?: string;
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
  if (attributes.format === "nginx") return nginxTemplate(attributes, value);
  if (attributes.valuePerResponse === true) return perResponseTemplate(attributes);
  let head = `${attributes.name}=${value}`;
  if (attributes.domain !== undefined) head += `; Domain=${attributes.domain}`;
  let tail = `; Path=${attributes.path ?? "/"}`;
  if (attributes.secure) tail += "; Secure";
  if (attributes.httpOnly) tail += "; HttpOnly";
  if (attributes.sameSite !== undefined) tail += `; SameSite=${attributes.sameSite}`;
  if (attributes.partitioned) tail += "; Partitioned";
  return attributes.expiresSeconds === undefined
    ? { head: head + tail, tail: "" }
    : { head, tail, expiresSeconds: attributes.expiresSeconds };
}

/**
 * The module's bytes with a place for a value made per response (signed tokens): rendered by
 * {@link renderSetCookie} with the value, as fast as a fixed one (one concatenation more).
 *
 * @example
 * ```ts
 * const t = setCookieTemplate({ name: "s", path: "/", secure: true, httpOnly: true,
 *   partitioned: false, valuePerResponse: true }, "");
 * renderSetCookie(t, Date.now(), "1.k1.x"); // "s=1.k1.x; Path=/; Secure; HttpOnly"
 * ```
 */
function perResponseTemplate(attributes: StickyCookieAttributes): SetCookieTemplate {
  const fixed = setCookieTemplate({ ...attributes, valuePerResponse: false }, "");
  const name = `${attributes.name}=`;
  return { ...fixed, head: name, afterValue: fixed.head.slice(name.length) };
}

/**
 * nginx 1.30's order: `name=value[; expires=D; max-age=N][; domain=d][; httponly][; secure]
 * [; samesite=s][; path=p]` (ngx_http_upstream_sticky_cookie_insert).
 *
 * @example
 * ```ts
 * const t = setCookieTemplate({ name: "s", path: "/", secure: true, httpOnly: false,
 *   partitioned: false, format: "nginx" }, "node1");
 * renderSetCookie(t, Date.now()); // "s=node1; secure; path=/"
 * ```
 */
function nginxTemplate(attributes: StickyCookieAttributes, value: string): SetCookieTemplate {
  const head = `${attributes.name}=${value}`;
  let tail = "";
  if (attributes.domain !== undefined) tail += `; domain=${attributes.domain}`;
  if (attributes.httpOnly) tail += "; httponly";
  if (attributes.secure) tail += "; secure";
  if (attributes.sameSite !== undefined) tail += `; samesite=${attributes.sameSite}`;
  if (attributes.path !== undefined) tail += `; path=${attributes.path}`;
  const seconds = attributes.expiresSeconds;
  if (seconds === undefined) return { head: head + tail, tail: "" };
  if (seconds === NGINX_MAX_EXPIRES) {
    return { head: head + NGINX_MAX_EXPIRES_TEXT + tail, tail: "" };
  }
  return { head, tail, expiresSeconds: seconds, nginx: true };
}

/**
 * The `Set-Cookie` value for a response sent at `nowMs`; `value` fills a template made for a
 * value per response (ignored by the others).
 */
export function renderSetCookie(template: SetCookieTemplate, nowMs: number, value = ""): string {
  const head = template.afterValue === undefined
    ? template.head
    : template.head + value + template.afterValue;
  const seconds = template.expiresSeconds;
  if (seconds === undefined) return head;
  const at = Math.floor(nowMs / 1000) + seconds;
  return template.nginx === true
    ? `${head}; expires=${nginxCookieDate(at)}; max-age=${seconds}${template.tail}`
    : `${head}; Expires=${netscapeDate(at)}${template.tail}`;
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

/**
 * nginx's cookie date (`ngx_http_cookie_time`): like the module's, but the year has two digits up
 * to 2037 (old Netscape clients) and four after.
 *
 * @param epochSeconds seconds since the Unix epoch
 * @example
 * ```ts
 * nginxCookieDate(1796225149); // "Wed, 02-Dec-26 15:25:49 GMT"
 * ```
 */
export function nginxCookieDate(epochSeconds: number): string {
  const d = new Date(Math.max(0, epochSeconds) * 1000);
  const year = d.getUTCFullYear();
  return `${DAYS[d.getUTCDay()]}, ${pad2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${
    year > 2037 ? String(year) : pad2(year % 100)
  } ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} GMT`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
