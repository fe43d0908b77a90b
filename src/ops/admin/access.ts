/**
 * Who may talk to the admin listener.
 *
 * - The Host header must name the listen address. A web page cannot then reach a loopback
 *   listener through a DNS name it controls that resolves to 127.0.0.1 (DNS rebinding): the
 *   browser sends that name as Host. Loopback listeners accept `localhost`, `127.0.0.1` and
 *   `[::1]` with the port; a wildcard listen (`0.0.0.0`, `[::]`) cannot know the names it is
 *   reached by and accepts any host with the port (it needs a token anyway). Port 0 in the config
 *   (an ephemeral port) accepts any port.
 * - With a token, requests carry `Authorization: Bearer <token>`, compared in constant time over
 *   SHA-256 digests (equal lengths whatever was sent, so the time says nothing about the token).
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isLoopback } from "../../config/address.ts";
import type { AdminSettings } from "../../config/admin.ts";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];
const WILDCARDS = new Set(["0.0.0.0", "::"]);
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The Host header's `host` and `port` parts (lower case, IPv6 kept in brackets). */
function splitHost(value: string): { host: string; port: string } | undefined {
  const text = value.trim().toLowerCase();
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (match === null) return undefined;
  return { host: match[1], port: match[2] ?? "80" };
}

/** Decides whether a Host header names the admin listener. */
export class HostCheck {
  readonly #hosts: ReadonlySet<string>;
  readonly #anyHost: boolean;
  readonly #port: string | undefined;

  constructor(settings: AdminSettings) {
    const { host, port } = settings.listen;
    const bracketed = host.includes(":") ? `[${host.toLowerCase()}]` : host.toLowerCase();
    this.#hosts = new Set(isLoopback(host) ? [bracketed, ...LOOPBACK_NAMES] : [bracketed]);
    this.#anyHost = WILDCARDS.has(host);
    this.#port = port === 0 ? undefined : String(port);
  }

  /**
   * Whether `value` (a Host header, or an Origin's host) names this listener.
   *
   * @example
   * ```ts
   * const check = new HostCheck({ listen: { text: "127.0.0.1:9901", host: "127.0.0.1", port: 9901 } });
   * check.allows("localhost:9901"); // true
   * check.allows("evil.example:9901"); // false
   * ```
   */
  allows(value: string | null): boolean {
    if (value === null) return false;
    const parts = splitHost(value);
    if (parts === undefined) return false;
    if (this.#port !== undefined && parts.port !== this.#port) return false;
    return this.#anyHost || this.#hosts.has(parts.host);
  }
}

/** Compares bearer tokens in constant time; without a token every request passes. */
export class TokenCheck {
  readonly #digest: Buffer | undefined;

  constructor(token: string | undefined) {
    this.#digest = token === undefined ? undefined : sha256(token);
  }

  /** Whether requests need a token at all. */
  get required(): boolean {
    return this.#digest !== undefined;
  }

  /**
   * Whether the Authorization header carries the token (always true without one).
   *
   * @example
   * ```ts
   * const check = new TokenCheck("0123456789abcdef0123");
   * check.allows("Bearer 0123456789abcdef0123"); // true
   * check.allows("Bearer nope"); // false
   * ```
   */
  allows(authorization: string | null): boolean {
    if (this.#digest === undefined) return true;
    const match = authorization === null ? null : BEARER.exec(authorization);
    // Hash even a missing token, so a request without one takes the same time.
    const sent = sha256(match?.[1] ?? "");
    return timingSafeEqual(sent, this.#digest) && match !== null;
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
