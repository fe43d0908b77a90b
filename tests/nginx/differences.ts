/**
 * The documented deliberate differences between nginx and the gateway, as the differential tests
 * allow them: each names where the README documents it, what nginx does and what we do, and
 * checks a step's two records against exactly that (so a difference that changes shape, or goes
 * away, fails the test as much as one nobody documented).
 *
 * README.md, "Migrating from nginx": "Bugs of v1.3.0 we fixed" (numbered 1–6), "Deliberate
 * differences that remain" (a table) and "Small differences in reading cookies".
 *
 * @module
 */
import type { Seen } from "./probe.ts";

/** What a check may ask of the scenario the step belongs to. */
export interface DifferenceContext {
  /** The sticky cookie's name. */
  readonly name: string;
  /** The valid value for backend `letter`. */
  value(letter: string): string;
}

/** One documented deliberate difference, as a step may name it. */
export interface Difference {
  readonly id: string;
  /** Where the README documents it. */
  readonly readme: string;
  readonly nginx: string;
  readonly ours: string;
  /** Undefined when the step's records are this difference; else what does not fit. */
  check(
    nginx: readonly Seen[],
    ours: readonly Seen[],
    context: DifferenceContext,
  ): string | undefined;
}

/** The sticky Set-Cookie lines of `seen` (those starting with `name=`). */
function sticky(seen: Seen, name: string): string[] {
  return seen.cookies.filter((line) => line.startsWith(`${name}=`));
}

const valueOf = (line: string) => /^[^=]*=([^;]*)/.exec(line)?.[1] ?? "";

/** Every record of `ours` answered by a backend, with one Set-Cookie naming that backend. */
function pinnedAnew(ours: readonly Seen[], context: DifferenceContext): string | undefined {
  for (const seen of ours) {
    if (seen.status !== 200 || seen.backend === "-") return "the gateway did not balance it";
    const lines = sticky(seen, context.name);
    if (lines.length !== 1 || valueOf(lines[0]) !== context.value(seen.backend)) {
      return `the gateway's Set-Cookie does not name ${seen.backend}`;
    }
  }
  return undefined;
}

export const NO_FALLBACK_NEW_CLIENT: Difference = {
  id: "no_fallback-new-client",
  readme: `README "Bugs of v1.3.0 we fixed" 1`,
  nginx: "no_fallback (upstream or sticky_no_fallback) answers 502 to a client without a cookie " +
    "or with an invalid one, so no new visitor gets in",
  ours: "only a client whose valid cookie names an unavailable server is refused; new visitors " +
    "are balanced and get a cookie",
  check(nginx, ours, context) {
    if (nginx.some((s) => s.status !== 502 || s.cookies.length > 0)) {
      return "nginx did not answer 502 without Set-Cookie";
    }
    return pinnedAnew(ours, context);
  },
};

export const BACKUP_COOKIE: Difference = {
  id: "backup-cookie",
  readme: `README "Bugs of v1.3.0 we fixed" 2`,
  nginx: "a backup server answering gets the cookie of the primary server with the same index",
  ours: "each backup has its own value",
  check(nginx, ours, context) {
    for (const [i, n] of nginx.entries()) {
      const g = ours[i];
      if (n.status !== g.status || n.backend !== g.backend) return "another backend answered";
      const [theirs] = sticky(n, context.name);
      const [own] = sticky(g, context.name);
      if (own === undefined || valueOf(own) !== context.value(g.backend)) {
        return `the gateway's cookie does not name the backup ${g.backend}`;
      }
      if (theirs === undefined || valueOf(theirs) === valueOf(own)) {
        return "nginx gave the backup's own value";
      }
    }
    return undefined;
  },
};

export const SINGLE_SERVER_COOKIE: Difference = {
  id: "single-server-cookie",
  readme: `README "Bugs of v1.3.0 we fixed" 3`,
  nginx: "with one primary server the module switches itself off: no cookie is set or read",
  ours: "the cookie is set and honoured, so adding servers later keeps sessions where they are",
  check(nginx, ours, context) {
    for (const [i, n] of nginx.entries()) {
      if (n.cookies.length > 0) return "nginx set a cookie";
      if (n.status !== ours[i].status || n.backend !== ours[i].backend) {
        return "another backend answered";
      }
    }
    return pinnedAnew(ours, context);
  },
};

export const BACKEND_SET_COOKIE: Difference = {
  id: "backend-set-cookie",
  readme: `README "Bugs of v1.3.0 we fixed" 4`,
  nginx: "the backend's own Set-Cookie for the sticky name is passed on beside the sticky one " +
    "(the module and nginx 1.30's `sticky cookie` alike)",
  ours: "the backend's Set-Cookie for the sticky name is dropped (its other cookies pass)",
  check(nginx, ours, context) {
    for (const [i, n] of nginx.entries()) {
      const g = ours[i];
      if (n.status !== g.status || n.backend !== g.backend) return "another backend answered";
      const prefix = `${context.name.toLowerCase()}=`;
      // nginx: the sticky cookie (the one naming the backend that answered; none for a pinned
      // client), then every backend line; ours: the same without the backend's lines for the
      // sticky name (in any case).
      const own = `${context.name}=${context.value(n.backend)}`;
      const expected = n.cookies.filter((line) =>
        !line.toLowerCase().startsWith(prefix) || line === own || line.startsWith(`${own};`)
      );
      if (JSON.stringify(expected) !== JSON.stringify(g.cookies)) {
        return "the gateway's Set-Cookie lines are not nginx's without the backend's sticky one";
      }
      if (expected.length === n.cookies.length) return "nginx passed no backend sticky cookie";
    }
    return undefined;
  },
};

export const RR_ORDER_UNAVAILABLE: Difference = {
  id: "rr-order-unavailable",
  readme: `README "Deliberate differences that remain": round-robin order while a server is ` +
    "failed or down",
  nginx: "smooth WRR computes over the available peers only, so its order among them is the " +
    "WRR order of those weights",
  ours: "steps through the cycle precomputed over all servers, stepping over unavailable ones: " +
    "the same shares among the available servers, in another order",
  check(nginx, ours) {
    const count = (all: readonly Seen[]) =>
      JSON.stringify(
        all.map((s) => `${s.status} ${s.backend} ${s.cookies.join(" | ")}`).sort(),
      );
    return count(nginx) === count(ours) ? undefined : "the shares differ";
  },
};

/** nginx finds the value invalid (balances, new cookie); the gateway pins with it (no cookie). */
function invalidThereValidHere(
  nginx: readonly Seen[],
  ours: readonly Seen[],
  context: DifferenceContext,
): string | undefined {
  for (const [i, n] of nginx.entries()) {
    const g = ours[i];
    if (n.status !== 200 || sticky(n, context.name).length !== 1) {
      return "nginx did not treat it as invalid (balanced, new cookie)";
    }
    if (g.status !== 200 || g.cookies.length !== 0) return "the gateway did not pin it";
  }
  return undefined;
}

export const COOKIE_COMMA: Difference = {
  id: "cookie-comma",
  readme: `README "Small differences in reading cookies"`,
  nginx: "a cookie value runs to the next `;`: `route=B,x` is `B,x`, invalid",
  ours: 'a value also ends at `,` (Deno and Bun join Cookie lines with ", "): `route=B,x` is B',
  check: invalidThereValidHere,
};

export const COOKIE_TAB: Difference = {
  id: "cookie-tab",
  readme: `README "Deliberate differences that remain": tabs in Cookie`,
  nginx: "a tab at the end of a Cookie line is part of the value: `route=B<TAB>` is invalid",
  ours: "leading and trailing blanks and tabs of a header value are trimmed (RFC 9110): it is B",
  check: invalidThereValidHere,
};

// ---- Found by these tests and then documented (README, "Deliberate differences that remain").

/** Every record answered by a backend with exactly one Set-Cookie, naming that backend. */
function eachPinnedToItsBackend(all: readonly Seen[], context: DifferenceContext): boolean {
  return all.every((seen) =>
    seen.status === 200 &&
    sticky(seen, context.name).length === 1 &&
    valueOf(sticky(seen, context.name)[0]) === context.value(seen.backend)
  );
}

export const ALL_REFUSED_502_COOKIE: Difference = {
  id: "all-refused-502-cookie",
  readme: `README "Deliberate differences that remain": every server fails during the request`,
  nginx: "the 502 carries the Set-Cookie of the last server tried (module row 13; nginx 1.30 too)",
  ours: "the 502 has no Set-Cookie: the client keeps its cookie",
  check(nginx, ours, context) {
    if (nginx.some((s) => s.status !== 502 || sticky(s, context.name).length !== 1)) {
      return "nginx's 502 did not carry one sticky cookie";
    }
    if (ours.some((s) => s.status !== 502 || s.cookies.length > 0)) {
      return "the gateway's answer is not a 502 without Set-Cookie";
    }
    return undefined;
  },
};

export const SLOW_START_AFTER_FAILURE: Difference = {
  id: "slow-start-after-failure",
  readme: `README "Deliberate differences that remain": a server back after fail_timeout`,
  nginx:
    "a failure cuts the server's effective weight to 0 (weight / max_fails per failure) and it " +
    "climbs back by one per pick: a slow start",
  ours: "the server has its full weight again as soon as fail_timeout has passed",
  check(nginx, ours, context) {
    return eachPinnedToItsBackend(nginx, context) && eachPinnedToItsBackend(ours, context)
      ? undefined
      : "not every new client was balanced with its own cookie";
  },
};

export const PINNED_COUNTS_IN_RR: Difference = {
  id: "pinned-counts-in-rr",
  readme: `README "Deliberate differences that remain": round robin after pinned requests`,
  nginx: "a pinned request counts as a pick of its server in the smooth WRR (nginx 1.30 `sticky`)",
  ours: "pinned requests leave the round robin where it is (as the module does)",
  check(nginx, ours, context) {
    return eachPinnedToItsBackend(nginx, context) && eachPinnedToItsBackend(ours, context)
      ? undefined
      : "not every new client was balanced with its own cookie";
  },
};

/** Every documented difference the tests know, for the notes and for a glance. */
export const DIFFERENCES: readonly Difference[] = [
  NO_FALLBACK_NEW_CLIENT,
  BACKUP_COOKIE,
  SINGLE_SERVER_COOKIE,
  BACKEND_SET_COOKIE,
  RR_ORDER_UNAVAILABLE,
  COOKIE_COMMA,
  COOKIE_TAB,
];
