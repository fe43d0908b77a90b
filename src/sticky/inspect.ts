/**
 * Inspecting sticky cookies (`sticky-gateway cookie …` and `GET /api/v1/upstreams/U/cookie`):
 * the value a client of a server carries (the module's value, or a fresh token), and what a
 * value says: which server it names, whether it verifies and under which key, its times, and
 * what the gateway would do with it now. Pure apart from the clock it is given; secrets never
 * appear (key ids only).
 *
 * @module
 */
import type { Server, Upstream } from "../config/mod.ts";
import { resolveSticky, serverForValue, type ServerStates, type StickyOutcome } from "./resolve.ts";
import { readToken, serverRef } from "./token.ts";
import { stickySetCookie } from "./issue.ts";

/** The cookie of one server: what `--server ID` prints. */
export interface ServerCookie {
  readonly upstream: string;
  readonly server: string;
  readonly cookie: string;
  readonly value: string;
  /** The whole `Set-Cookie` the gateway would send. */
  readonly setCookie: string;
}

/** What a value says (`--decode VALUE`). */
export interface DecodedCookie {
  readonly upstream: string;
  readonly cookie: string;
  readonly value: string;
  /** `token` (signed), `module` (the module's or nginx's fixed values). */
  readonly mode: "token" | "module";
  /** The server it names (a token: by its server ref, verified or not), or null. */
  readonly server: string | null;
  /** A token: whether its tag verifies; module values: null (they are not signed). */
  readonly verifies: boolean | null;
  /** A token: its key id, whether the ring has it, and whether it is the signing key. */
  readonly key: { readonly id: string; readonly known: boolean; readonly signing: boolean } | null;
  /** A token's times (ISO 8601), with when it expires by `max_idle` and `max_life`. */
  readonly times: {
    readonly issued: string;
    readonly seen: string;
    readonly idleExpires: string | null;
    readonly lifeExpires: string | null;
  } | null;
  /** The gateway's sticky outcome for it now (as if every server were available). */
  readonly outcome: StickyOutcome;
  /** That decision in words. */
  readonly action: string;
}

/** A server's cookie, or why there is none (an unknown server, an upstream without cookie). */
export function serverCookie(
  upstream: Upstream,
  serverId: string,
  nowMs: number,
): ServerCookie | string {
  const sticky = upstream.sticky;
  if (sticky === undefined || sticky.cookie === false) {
    return `upstream ${upstream.name} sets no sticky cookie`;
  }
  const server = upstream.servers.find((s) => s.id === serverId);
  if (server === undefined) return noServer(upstream, serverId);
  const setCookie = stickySetCookie(sticky, server, nowMs)!;
  const value = setCookie.slice(sticky.name.length + 1).split(";")[0];
  return { upstream: upstream.name, server: server.id, cookie: sticky.name, value, setCookie };
}

/** Every server available, a primary among them: how a value routes when nothing is down. */
const ALL_AVAILABLE: ServerStates = { isAvailable: () => true, anyPrimaryAvailable: () => true };

/** What `value` says to `upstream`'s sticky settings at `nowMs`, or why it cannot say. */
export function decodeCookie(
  upstream: Upstream,
  value: string,
  nowMs: number,
): DecodedCookie | string {
  const sticky = upstream.sticky;
  if (sticky === undefined || sticky.cookie === false) {
    return `upstream ${upstream.name} sets no sticky cookie`;
  }
  const decision = resolveSticky(sticky, value, false, ALL_AVAILABLE, nowMs);
  const base = { upstream: upstream.name, cookie: sticky.name, value };
  const pinned = decision.kind === "pinned" ? decision : undefined;
  const action = pinned?.outcome === "hit" && pinned.reissue
    ? `served by ${pinned.server.id}, the token refreshed (seen = now)`
    : actionText(decision.outcome, pinned?.server);
  const token = sticky.token;
  if (token === undefined) {
    const named = serverForValue(sticky, value) ?? sticky.legacyServerByValue?.get(value);
    return {
      ...base,
      mode: "module",
      server: named?.id ?? null,
      verifies: null,
      key: null,
      times: null,
      outcome: decision.outcome,
      action,
    };
  }
  const fields = readToken(value);
  const named = fields === undefined ? undefined : serverByRef(upstream, fields.ref);
  const lifetimes = token.lifetimes;
  const iso = (s: number) => new Date(s * 1000).toISOString();
  return {
    ...base,
    mode: "token",
    server: named?.id ?? null,
    verifies: fields === undefined
      ? false
      : !["forged", "unknown_key", "invalid"].includes(decision.outcome),
    key: fields === undefined ? null : {
      id: fields.keyId,
      known: token.keyring.byId.has(fields.keyId),
      signing: token.keyring.signing.id === fields.keyId,
    },
    times: fields === undefined ? null : {
      issued: iso(fields.issuedS),
      seen: iso(fields.seenS),
      idleExpires: lifetimes.maxIdleS > 0
        ? iso(fields.seenS + lifetimes.maxIdleS + lifetimes.clockSkewS)
        : null,
      lifeExpires: lifetimes.maxLifeS > 0
        ? iso(fields.issuedS + lifetimes.maxLifeS + lifetimes.clockSkewS)
        : null,
    },
    outcome: decision.outcome,
    action,
  };
}

/** The decoded value as the CLI prints it: one `field: value` line each. */
export function decodedText(decoded: DecodedCookie): string {
  const lines = [
    `upstream: ${decoded.upstream}`,
    `cookie:   ${decoded.cookie}`,
    `mode:     ${decoded.mode}`,
    `server:   ${decoded.server ?? "(none)"}`,
  ];
  if (decoded.mode === "token") {
    lines.push(`verifies: ${decoded.verifies ? "yes" : "no"}`);
    const key = decoded.key;
    lines.push(
      `key:      ${
        key === null
          ? "(not a token)"
          : `${key.id} (${
            !key.known ? "not in the keyring" : key.signing ? "the signing key" : "an older key"
          })`
      }`,
    );
    const times = decoded.times;
    if (times !== null) {
      lines.push(`issued:   ${times.issued}`, `seen:     ${times.seen}`);
      if (times.idleExpires !== null) lines.push(`idle expires: ${times.idleExpires}`);
      if (times.lifeExpires !== null) lines.push(`life expires: ${times.lifeExpires}`);
    }
  }
  lines.push(`outcome:  ${decoded.outcome}`, `now:      ${decoded.action}`);
  return lines.join("\n");
}

function actionText(outcome: StickyOutcome, server: Server | undefined): string {
  switch (outcome) {
    case "hit":
      return `served by ${server!.id}`;
    case "legacy":
      return `served by ${server!.id}, the cookie re-issued in the current format`;
    case "rotated":
      return `served by ${server!.id}, the token re-issued under the signing key`;
    case "forged":
      return "balanced with a new cookie (the token does not verify); never its server";
    case "unknown_key":
      return "balanced with a new cookie (its key is not in the keyring)";
    case "expired_idle":
      return "balanced with a new cookie (max_idle has passed)";
    case "expired_life":
      return "balanced with a new cookie (max_life has passed)";
    default:
      return "balanced with a new cookie (the value names no server)";
  }
}

function serverByRef(upstream: Upstream, ref: string): Server | undefined {
  return upstream.servers.find((s) => serverRef(upstream.name, s.id) === ref);
}

function noServer(upstream: Upstream, id: string): string {
  return `no server ${JSON.stringify(id)} in upstream ${upstream.name}; ids: ${
    upstream.servers.map((s) => s.id).join(", ")
  }`;
}
