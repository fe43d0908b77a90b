/**
 * The `[server]` keys that come from nginx directives found at several levels (http, server,
 * location): the gateway has one value for all routes, so the largest one given is used (no
 * request is cut earlier than nginx would cut it), and every other one is a warning.
 *
 * @module
 */
import { parseDuration } from "../../config/duration.ts";
import { parseSize } from "../../config/size.ts";
import { NginxParseError, type SourceLocation } from "./errors.ts";
import type { Notes, SettingModel } from "./model.ts";
import type { Directive } from "./reader.ts";

interface SettingRule {
  readonly key: string;
  readonly kind: "duration" | "size";
  /** nginx's default, written when the gateway's differs and nginx.conf does not say. */
  readonly nginxDefault?: string;
}

/** nginx directive → gateway `[server]` key. */
export const SETTING_RULES: Readonly<Record<string, SettingRule>> = {
  proxy_connect_timeout: { key: "connect_timeout", kind: "duration", nginxDefault: "60s" },
  proxy_read_timeout: { key: "read_timeout", kind: "duration" },
  client_max_body_size: { key: "client_max_body_size", kind: "size", nginxDefault: "1m" },
  keepalive_timeout: { key: "keepalive_timeout", kind: "duration" },
  client_header_timeout: { key: "client_header_timeout", kind: "duration" },
};

interface Occurrence {
  readonly value: string;
  readonly magnitude: number;
  readonly at: SourceLocation;
}

/** Collects the occurrences of each setting directive, then picks one value per key. */
export class Settings {
  private readonly found = new Map<string, Occurrence[]>();

  /** Whether the directive is one of {@link SETTING_RULES}. */
  static handles(directive: Directive): boolean {
    return directive.name in SETTING_RULES;
  }

  /** Records one occurrence; throws for a value nginx would refuse. */
  add(directive: Directive, notes: Notes): void {
    const rule = SETTING_RULES[directive.name];
    const [first, second] = directive.args;
    if (first === undefined || (second !== undefined && directive.name !== "keepalive_timeout")) {
      throw new NginxParseError(
        directive.at,
        `invalid number of arguments in "${directive.name}" directive`,
      );
    }
    if (second !== undefined) {
      notes.warn(
        second.at,
        `keepalive_timeout's second value (the Keep-Alive header) is not carried`,
      );
    }
    const magnitude = rule.kind === "duration"
      ? parseDuration(first.value)
      : parseSize(first.value);
    if (magnitude === null) {
      throw new NginxParseError(
        first.at,
        `"${directive.name}" directive invalid value "${first.value}"`,
      );
    }
    if (directive.name === "keepalive_timeout" && magnitude === 0) {
      notes.warn(
        directive.at,
        `keepalive_timeout 0 (no keep-alive) is not carried: the gateway keeps client connections alive (0 there means never closed by time)`,
      );
      return;
    }
    const size = rule.kind === "size" && magnitude === 0 ? Infinity : magnitude;
    const list = this.found.get(directive.name) ?? [];
    list.push({ value: first.value, magnitude: size, at: directive.at });
    this.found.set(directive.name, list);
  }

  /** One value per gateway key, with the directive it came from. */
  resolve(notes: Notes): Map<string, SettingModel> {
    const out = new Map<string, SettingModel>();
    for (const [name, rule] of Object.entries(SETTING_RULES)) {
      const list = this.found.get(name) ?? [];
      if (list.length === 0) {
        if (rule.nginxDefault !== undefined) {
          out.set(rule.key, { value: rule.nginxDefault, why: `nginx's default for ${name}` });
        }
        continue;
      }
      const chosen = list.reduce((best, o) => (o.magnitude > best.magnitude ? o : best));
      for (const other of list) {
        if (other.value === chosen.value) continue;
        notes.warn(
          other.at,
          `${name} ${other.value}: the gateway has one ${rule.key} for every route; the largest, ${chosen.value} (line ${chosen.at.line}), is used`,
        );
      }
      out.set(rule.key, { value: chosen.value, at: chosen.at });
    }
    return out;
  }
}
