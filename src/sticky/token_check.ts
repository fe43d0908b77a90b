/**
 * What a sticky token says on this request: which server, and whether it is forged, under an
 * unknown key, past `max_idle` or `max_life`, signed by an older key (to re-issue) or due for a
 * refresh. Verified tokens are remembered (by their exact text, a bounded map), so a client that
 * sends the same token again costs a map look-up, not an HMAC; only a token that verified is ever
 * remembered.
 *
 * @module
 */
import type { Keyring, TokenKey } from "./keyring.ts";
import {
  readToken,
  serverRef,
  signWithContext,
  type TokenContext,
  tokenContext,
  verifyWithContext,
} from "./token.ts";

/** The lifetimes enforced on tokens, in seconds (0 = none). */
export interface TokenLifetimes {
  readonly maxIdleS: number;
  readonly maxLifeS: number;
  /** Tolerated difference between instances' clocks. */
  readonly clockSkewS: number;
}

/** A server as tokens name it. */
export interface TokenServer {
  readonly id: string;
}

/** The outcome of reading a token. */
export type TokenVerdict<S extends TokenServer> =
  | {
    readonly kind: "valid";
    readonly server: S;
    /** Issue time, kept when the token is re-issued. */
    readonly issuedS: number;
    /** Signed by a key other than the signing one: re-issue (outcome `rotated`). */
    readonly rotated: boolean;
    /** Last seen long enough ago (a quarter of `max_idle`): re-issue with now. */
    readonly refresh: boolean;
  }
  | { readonly kind: "invalid" | "forged" | "unknown_key" | "expired_idle" | "expired_life" };

interface Verified<S> {
  readonly server: S;
  readonly keyId: string;
  readonly issuedS: number;
  readonly seenS: number;
}

/** Verified tokens remembered per upstream; beyond it the map starts over. */
const REMEMBERED = 16_384;

/**
 * Checks tokens of one upstream against its servers and keyring.
 *
 * @example
 * ```ts
 * import { parseKeyring } from "./keyring.ts";
 * import { signToken } from "./token.ts";
 * import { TokenCheck } from "./token_check.ts";
 * const ring = parseKeyring("k1:" + "s".repeat(32)) as import("./keyring.ts").Keyring;
 * const check = new TokenCheck("app", [{ id: "web-1" }], ring, { maxIdleS: 600, maxLifeS: 0, clockSkewS: 30 });
 * const token = signToken(ring.signing, "app", "web-1", 1000, 1000);
 * const verdict = check.check(token, 1100);
 * if (verdict.kind !== "valid" || verdict.server.id !== "web-1" || verdict.refresh) throw new Error();
 * if (check.check(token, 1000 + 631).kind !== "expired_idle") throw new Error("idle");
 * ```
 */
export class TokenCheck<S extends TokenServer> {
  readonly #upstream: string;
  readonly #keyring: Keyring;
  readonly #lifetimes: TokenLifetimes;
  readonly #byRef = new Map<string, S>();
  readonly #refOf = new Map<S, string>();
  /** Per server, per key: the key with the server's context absorbed (made when first used). */
  readonly #contexts = new Map<S, Map<TokenKey, TokenContext>>();
  #verified = new Map<string, Verified<S>>();

  constructor(
    upstream: string,
    servers: readonly S[],
    keyring: Keyring,
    lifetimes: TokenLifetimes,
  ) {
    this.#upstream = upstream;
    this.#keyring = keyring;
    this.#lifetimes = lifetimes;
    for (const server of servers) {
      const ref = serverRef(upstream, server.id);
      this.#byRef.set(ref, server);
      this.#refOf.set(server, ref);
    }
  }

  /**
   * A token for `server` signed with the signing key, issued at `issuedS` and seen at `nowS`.
   * It is remembered as verified: the client's next request with it costs a look-up.
   */
  issue(server: S, issuedS: number, nowS: number): string {
    const key = this.#keyring.signing;
    const ref = this.#refOf.get(server) ?? serverRef(this.#upstream, server.id);
    const value = signWithContext(this.#context(server, key), ref, issuedS, nowS);
    this.#remember(value, { server, keyId: key.id, issuedS, seenS: nowS });
    return value;
  }

  /** The verdict on `value` at `nowS` (seconds since the epoch). */
  check(value: string, nowS: number): TokenVerdict<S> {
    const known = this.#verified.get(value) ?? this.#verify(value);
    if (typeof known === "string") return VERDICTS[known];
    const { maxIdleS, maxLifeS, clockSkewS } = this.#lifetimes;
    if (maxLifeS > 0 && nowS - known.issuedS > maxLifeS + clockSkewS) return VERDICTS.expired_life;
    if (maxIdleS > 0 && nowS - known.seenS > maxIdleS + clockSkewS) return VERDICTS.expired_idle;
    return {
      kind: "valid",
      server: known.server,
      issuedS: known.issuedS,
      rotated: known.keyId !== this.#keyring.signing.id,
      refresh: maxIdleS > 0 && nowS - known.seenS >= maxIdleS / 4,
    };
  }

  #verify(value: string): Verified<S> | "invalid" | "forged" | "unknown_key" {
    const fields = readToken(value);
    if (fields === undefined) return "invalid";
    const key = this.#keyring.byId.get(fields.keyId);
    if (key === undefined) return "unknown_key";
    const server = this.#byRef.get(fields.ref);
    // A ref naming no server of this upstream cannot be verified: a forgery or another upstream's.
    if (server === undefined || !verifyWithContext(fields, this.#context(server, key))) {
      return "forged";
    }
    const verified = { server, keyId: key.id, issuedS: fields.issuedS, seenS: fields.seenS };
    this.#remember(value, verified);
    return verified;
  }

  #context(server: S, key: TokenKey): TokenContext {
    let byKey = this.#contexts.get(server);
    if (byKey === undefined) this.#contexts.set(server, byKey = new Map());
    let context = byKey.get(key);
    if (context === undefined) {
      context = tokenContext(key, this.#upstream, server.id);
      byKey.set(key, context);
    }
    return context;
  }

  #remember(value: string, verified: Verified<S>): void {
    if (this.#verified.size >= REMEMBERED) this.#verified = new Map();
    this.#verified.set(value, verified);
  }
}

const VERDICTS = {
  invalid: { kind: "invalid" },
  forged: { kind: "forged" },
  unknown_key: { kind: "unknown_key" },
  expired_idle: { kind: "expired_idle" },
  expired_life: { kind: "expired_life" },
} as const;
