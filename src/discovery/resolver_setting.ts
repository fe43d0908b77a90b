/**
 * `[server] resolver`: which DNS servers `dns` server entries ask, `"127.0.0.1:5353"` or a list
 * of them (`ip`, `ip:port`, `[v6]:port`); absent = the system's (/etc/resolv.conf).
 *
 * @module
 */
import { isIP } from "node:net";
import { describe, type Fields } from "../config/fields.ts";

/**
 * Reads `resolver` from the `[server]` fields: `{ resolver }` when given, `{}` otherwise.
 *
 * @example
 * ```ts
 * import { Fields } from "../config/fields.ts";
 * import { Problems } from "../config/problems.ts";
 * import { readResolver } from "./resolver_setting.ts";
 *
 * const problems = new Problems();
 * const read = readResolver(new Fields({ resolver: "127.0.0.1:5353" }, "server", problems));
 * if (read.resolver?.[0] !== "127.0.0.1:5353" || !problems.empty) throw new Error();
 * ```
 */
export function readResolver(fields: Fields): { resolver?: readonly string[] } {
  const value = fields.raw("resolver");
  if (value === undefined) return {};
  const list = Array.isArray(value) ? value : [value];
  const path = fields.keyPath("resolver");
  const bad = list.find((item) => typeof item !== "string" || resolverProblem(item));
  if (list.length === 0 || bad !== undefined) {
    fields.problems.add(
      path,
      `${
        bad === undefined ? "[]" : describe(bad)
      } is not a DNS server; write "ip" or "ip:port" (IPv6 "[v6]:port"), or a list of them, e.g. resolver = "127.0.0.1:5353"`,
    );
    return {};
  }
  return { resolver: Object.freeze([...list as string[]]) };
}

/** Whether the text is not `ip`, `ip:port` or `[v6]:port`. */
function resolverProblem(text: string): boolean {
  if (isIP(text) !== 0) return false;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (match === null) return true;
  const ip = match[1] ?? match[2];
  const port = Number(match[3]);
  return isIP(ip) !== (match[1] === undefined ? 4 : 6) || port < 1 || port > 65535;
}
