/**
 * Typed access to tests/fixtures/nginx-sticky-vectors.json (observed on nginx 1.26.3 with
 * nginx-sticky-module-ng v1.3.0), and a helper that turns a fixture's `sticky …;` directive into
 * the equivalent TOML config.
 *
 * @module
 */
import { readFileSync } from "node:fs";

export interface ModeVectorServer {
  readonly index: number;
  readonly server_text: string;
  readonly cookie_value: string;
  readonly set_cookie: string;
}

export interface ModeVector {
  readonly mode: string;
  readonly directive: string;
  readonly servers: readonly ModeVectorServer[];
}

export interface ServerTextVector {
  readonly directive: string;
  readonly server_line: string;
  readonly cookie_value: string;
}

export interface SetCookieCase {
  readonly directive: string;
  readonly served_by: string;
  readonly now: string;
  readonly set_cookie: string;
}

export interface CookieParsingCase {
  readonly mode: string;
  readonly cookie_headers: readonly string[];
  /** "A", "B", "C" for the server picked by the cookie, or "RR" for round robin. */
  readonly expect: string;
  readonly set_cookie: boolean;
}

export interface ValueParsingCase {
  readonly mode: string;
  readonly cookie_value: string;
  readonly expect: string;
  readonly set_cookie: boolean;
}

export interface RrSequence {
  readonly upstream: string;
  readonly no_cookie_sequence: readonly string[];
}

export interface Vectors {
  readonly mode_vectors_9001_9003: readonly ModeVector[];
  readonly mode_vectors_19001_19003_live: readonly ModeVector[];
  readonly server_text_vectors_live: readonly ServerTextVector[];
  readonly hmac_long_key_read_only: {
    readonly key: string;
    readonly server_text: string;
    readonly hmac_md5: string;
    readonly hmac_sha1: string;
  };
  readonly set_cookie_format: { readonly cases: readonly SetCookieCase[] };
  readonly cookie_parsing_cases: readonly CookieParsingCase[];
  readonly index_parsing_cases: readonly ValueParsingCase[];
  readonly raw_parsing_cases: readonly ValueParsingCase[];
  readonly rr_sequences_live: readonly RrSequence[];
}

export const vectors: Vectors = JSON.parse(
  readFileSync(new URL("../fixtures/nginx-sticky-vectors.json", import.meta.url), "utf8"),
);

/**
 * `sticky hash=sha1 secure;` → `hash = "sha1"\nsecure = true` (the body of a
 * `[upstreams.NAME.sticky]` table). Flags become `true`; `expires=90` stays the string "90".
 */
export function stickyDirectiveToToml(directive: string): string {
  const match = /^sticky\s*(.*?);$/.exec(directive.trim());
  if (match === null) throw new Error(`not a sticky directive: ${directive}`);
  return match[1].split(/\s+/).filter((arg) => arg !== "").map((arg) => {
    const equals = arg.indexOf("=");
    return equals < 0
      ? `${arg} = true`
      : `${arg.slice(0, equals)} = ${JSON.stringify(arg.slice(equals + 1))}`;
  }).join("\n");
}

/** A one-upstream config (`app`) with these servers and, when given, a sticky table. */
export function upstreamConfig(servers: readonly string[], stickyToml?: string): string {
  const list = servers.map((s) => s.startsWith("{") ? s : JSON.stringify(s)).join(", ");
  return `[upstreams.app]\nservers = [${list}]\n` +
    (stickyToml === undefined ? "" : `[upstreams.app.sticky]\n${stickyToml}\n`);
}
