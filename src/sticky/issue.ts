/**
 * The sticky `Set-Cookie` a response carries: the server's prepared one, or under
 * `mode = "token"` the same bytes around a token signed for this response.
 *
 * @module
 */
import type { Server, Sticky } from "../config/mod.ts";
import { renderSetCookie } from "../cookie/set_cookie.ts";

/**
 * The `Set-Cookie` value naming `server` on a response sent at `nowMs`, or undefined when the
 * upstream sets no cookie. `issuedS`: a token's first issue time, kept when a valid token of the
 * same server is re-issued (rotation, refresh); absent = now.
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config/mod.ts";
 * const app = parseConfig(`[upstreams.app]
 * servers = ["127.0.0.1:9001"]
 * [upstreams.app.sticky]
 * `).upstreams.get("app")!;
 * stickySetCookie(app.sticky!, app.servers[0], Date.now()); // "route=422db4e6da7b4bba46bd476612df0469; Path=/"
 * ```
 */
export function stickySetCookie(
  sticky: Sticky,
  server: Server,
  nowMs: number,
  issuedS?: number,
): string | undefined {
  const template = server.setCookie;
  if (template === undefined) return undefined;
  const token = sticky.token;
  if (token === undefined) return renderSetCookie(template, nowMs);
  const nowS = Math.floor(nowMs / 1000);
  return renderSetCookie(template, nowMs, token.check.issue(server, issuedS ?? nowS, nowS));
}
