/**
 * The scenarios run through nginx 1.26.3 + nginx-sticky-module-ng v1.3.0 and through the gateway
 * (tests/e2e/nginx_differential.test.ts): server counts, weights, `down`, backups, every hash
 * mode, cookie names, attributes and expires forms, no_fallback at all three levels, refused
 * servers. The rows are those of the reference's decision table (nginx-sticky.md §5).
 *
 * @module
 */
import {
  ALL_REFUSED_502_COOKIE,
  BACKEND_SET_COOKIE,
  BACKUP_COOKIE,
  COOKIE_COMMA,
  COOKIE_TAB,
  NO_FALLBACK_NEW_CLIENT,
  RR_ORDER_UNAVAILABLE,
  SINGLE_SERVER_COOKIE,
  SLOW_START_AFTER_FAILURE,
} from "./differences.ts";
import type { Probe } from "./probe.ts";
import type { Scenario, ServerSpec, StickySpec } from "./scenario.ts";

const three: ServerSpec[] = [{ backend: "A" }, { backend: "B" }, { backend: "C" }];

/** A new client, then a client pinned by the cookie it got: the two halves of every mode. */
async function issueThenPin(p: Probe, name = "route"): Promise<void> {
  const first = await p.ask("a new client gets a cookie");
  await p.ask("that cookie pins it (no Set-Cookie)", { cookies: [`${name}=${first.issued}`] });
  for (const letter of ["B", "A"]) {
    await p.ask(`the computed value of ${letter} pins to ${letter}`, {
      cookies: [`${name}=${p.value(letter)}`],
    });
  }
}

/** Two servers and the sticky arguments `sticky`: values, Set-Cookie bytes, pinning. */
function attributes(id: string, title: string, sticky: StickySpec): Scenario {
  return {
    id,
    title,
    servers: [{ backend: "A" }, { backend: "B" }],
    sticky,
    script: (p) => issueThenPin(p, sticky.name),
  };
}

/** The written scenarios for the module (m01…), in the decision table's order where they can be. */
export const MODULE_SCENARIOS: readonly Scenario[] = [
  {
    id: "m01",
    title: "three servers, `sticky;`: round robin, pinning, invalid cookies, cookie parsing",
    servers: three,
    sticky: {},
    async script(p) {
      await p.round("rows 1: new clients go round robin, each with its server's cookie", 4);
      for (const letter of ["C", "B", "A", "C"]) {
        await p.ask(`row 2: the cookie of ${letter} → ${letter}, no Set-Cookie`, {
          cookies: [`route=${p.value(letter)}`],
        });
      }
      await p.ask("row 2: pinned requests did not move the round robin");
      const b = p.value("B");
      const invalid = [
        "route=garbage",
        `route=${b.toUpperCase()}`,
        `route="${b}"`,
        "route=",
        `route = ${b} ;x=1`,
        `xroute=${b}; myroute=${b}`,
        `route2=${b}`,
        `route=${b}x`,
      ];
      for (const line of invalid) {
        await p.ask(`row 3: ${line} → round robin + Set-Cookie`, { cookies: [line] });
      }
      const c = p.value("C");
      const cases: [string, string[]][] = [
        ["row 16: first occurrence in a line", [`route=${b}; route=${c}`]],
        ["row 16: first of two Cookie lines", [`route=${c}`, `route=${b}`]],
        ["row 16: `,` separates pairs", [`a=1,route=${c}`]],
        ["row 17: the name is case-insensitive", [`ROUTE=${b}`]],
        ["a trailing blank at the end of the line", [`route=${c} `]],
        ["a blank after `=`", [`route= ${b}`]],
      ];
      for (const [label, lines] of cases) await p.ask(label, { cookies: lines });
      await p.ask("HEAD: a new client gets its cookie", { method: "HEAD" });
      await p.ask("POST: a new client gets its cookie", { method: "POST" });
      await p.ask("a backend's 500 carries the new cookie", { path: "status/500" });
      await p.ask("a backend's 404 with a valid cookie: no Set-Cookie", {
        path: "status/404",
        cookies: [`route=${c}`],
      });
      // Last: nginx balances this one and the gateway does not, so the sequences part here.
      await p.ask("`route=B,x`", { cookies: [`route=${b},x`] }, COOKIE_COMMA);
      await p.ask(
        "`route=B<TAB>` at the end of the line",
        { cookies: [`route=${b}\t`] },
        COOKIE_TAB,
      );
    },
  },
  {
    id: "m02",
    title: "hash=sha1 name=srv, weights 3:1:1: smooth WRR order, then pinning",
    servers: [{ backend: "A", weight: 3 }, { backend: "B" }, { backend: "C" }],
    sticky: { mode: "sha1", name: "srv" },
    async script(p) {
      await p.round("weights 3:1:1: A B A C A A B A C A", 10);
      for (const letter of ["A", "B", "C"]) {
        await p.ask(`the cookie of ${letter}`, { cookies: [`srv=${p.value(letter)}`] });
      }
      await p.ask("a cookie named route is not ours", { cookies: [`route=${p.value("B")}`] });
    },
  },
  {
    id: "m03",
    title: "hash=index, four servers, the third `down`, weights 2:1:1:1",
    servers: [
      { backend: "A", weight: 2 },
      { backend: "B" },
      { backend: "C", down: true },
      { backend: "D" },
    ],
    sticky: { mode: "index" },
    async script(p) {
      await p.round("new clients: round robin over A, B, D", 8, {}, RR_ORDER_UNAVAILABLE);
      for (const value of ["3", "1", "01", "0"]) {
        await p.ask(`index ${value}`, { cookies: [`route=${value}`] });
      }
      for (const value of ["+1", "-1", "1abc", "4", "99999999999999999999"]) {
        await p.ask(
          `index ${value} is invalid`,
          { cookies: [`route=${value}`] },
          RR_ORDER_UNAVAILABLE,
        );
      }
      await p.ask(
        "row 6: index 2 names C, which is down",
        { cookies: ["route=2"] },
        RR_ORDER_UNAVAILABLE,
      );
    },
  },
  attributes("m04", "hmac=md5 with every attribute", {
    mode: "hmac-md5",
    hmacKey: "secret",
    domain: ".example.com",
    path: "/app",
    expires: "1h",
    secure: true,
    httponly: true,
  }),
  attributes("m05", "hmac=sha1, name=SERVERID, domain without dot, expires=1h30m", {
    mode: "hmac-sha1",
    hmacKey: "another key",
    name: "SERVERID",
    domain: "example.com",
    expires: "1h30m",
  }),
  {
    id: "m06",
    title: "text=raw: the address text as written (localhost, a zero-padded port)",
    servers: [{ backend: "A", spelling: "localhost" }, { backend: "B", spelling: "zero-port" }],
    sticky: { mode: "raw", expires: "90" },
    script: (p) => issueThenPin(p),
  },
  attributes("m07", "hash=md5 explicit, expires=2d, httponly only", {
    mode: "md5",
    expires: "2d",
    httponly: true,
  }),
  attributes("m08", "expires=1M (30 days), secure only, path=/", {
    expires: "1M",
    secure: true,
    path: "/",
  }),
  attributes("m09", "expires=1y, name=srv_id", { expires: "1y", name: "srv_id" }),
  {
    id: "m10",
    title: "no_fallback in the upstream, B down",
    servers: [{ backend: "A" }, { backend: "B", down: true }, { backend: "C" }],
    sticky: { noFallback: true },
    async script(p) {
      await p.ask("row 7: the cookie of B (down) → 502", { cookies: [`route=${p.value("B")}`] });
      await p.ask("row 2: the cookie of C → C", { cookies: [`route=${p.value("C")}`] });
      await p.ask("row 4: no cookie", {}, NO_FALLBACK_NEW_CLIENT);
      await p.ask("row 5: garbage", { cookies: ["route=garbage"] }, NO_FALLBACK_NEW_CLIENT);
    },
  },
  {
    id: "m11",
    title: "sticky_no_fallback in a location, C refusing connections",
    servers: three,
    sticky: {},
    locationNoFallback: true,
    async script(p) {
      await p.backend("C").close();
      try {
        const c = [`route=${p.value("C")}`];
        await p.ask("row 9: the cookie of C (refusing), no_fallback location → 502", {
          nf: true,
          cookies: c,
        });
        await p.ask("row 10: C failed once; elsewhere → round robin, new cookie", { cookies: c });
        await p.ask("row 11: C failed, no_fallback location → 502 without trying", {
          nf: true,
          cookies: c,
        });
        await p.ask("the cookie of B in the no_fallback location → B", {
          nf: true,
          cookies: [`route=${p.value("B")}`],
        });
        await p.ask(
          "row 4: no cookie in the no_fallback location",
          { nf: true },
          NO_FALLBACK_NEW_CLIENT,
        );
      } finally {
        await p.backend("C").restart();
      }
    },
  },
  {
    id: "m12",
    title: "sticky_no_fallback at server level (a server block of its own), B down",
    servers: [{ backend: "A" }, { backend: "B", down: true }],
    sticky: {},
    serverNoFallback: true,
    async script(p) {
      const host = "m12.nofallback.test";
      await p.ask("row 7: the cookie of B (down) → 502", {
        host,
        cookies: [`route=${p.value("B")}`],
      });
      await p.ask("the cookie of A → A", { host, cookies: [`route=${p.value("A")}`] });
      await p.ask("elsewhere the cookie of B falls back", { cookies: [`route=${p.value("B")}`] });
      await p.ask("row 5: garbage", { host, cookies: ["route=x"] }, NO_FALLBACK_NEW_CLIENT);
    },
  },
  {
    id: "m13",
    title: "fallback when a server refuses: retried elsewhere, re-pinned, then skipped",
    servers: three,
    sticky: {},
    async script(p) {
      await p.backend("B").close();
      try {
        const b = [`route=${p.value("B")}`];
        await p.ask("row 8: the cookie of B (refusing) → another server, its cookie", {
          cookies: b,
        });
        await p.ask("row 10: B failed → not tried, round robin", { cookies: b });
        await p.round("new clients while B is failed", 4, {}, RR_ORDER_UNAVAILABLE);
      } finally {
        await p.backend("B").restart();
      }
    },
  },
  {
    id: "m14",
    title: "one primary server: the module is off",
    servers: [{ backend: "A" }],
    sticky: {},
    async script(p) {
      await p.ask("row 14: no cookie", {}, SINGLE_SERVER_COOKIE);
      await p.ask("row 14: garbage", { cookies: ["route=nope"] }, SINGLE_SERVER_COOKIE);
    },
  },
  {
    id: "m15",
    title: "the backend sets a cookie of the sticky name itself",
    servers: three,
    sticky: {},
    async script(p) {
      await p.ask(
        "a new client: the sticky cookie and the backend's",
        { path: "set-cookie" },
        BACKEND_SET_COOKIE,
      );
      await p.ask("a pinned client: the backend's only", {
        path: "set-cookie",
        cookies: [`route=${p.value("C")}`],
      }, BACKEND_SET_COOKIE);
    },
  },
  {
    id: "m16",
    title: "backup servers (declared before sticky), both primaries down",
    servers: [{ backend: "C", backup: true }, { backend: "A", down: true }, {
      backend: "B",
      down: true,
    }],
    sticky: {},
    async script(p) {
      await p.ask("row 15: the backup answers", {}, BACKUP_COOKIE);
      await p.ask(
        "the cookie of A (down) → the backup",
        { cookies: [`route=${p.value("A")}`] },
        BACKUP_COOKIE,
      );
    },
  },
  {
    id: "m17",
    title: "weights 5:2:1, 24 new clients: the same sequence and shares",
    servers: [{ backend: "A", weight: 5 }, { backend: "B", weight: 2 }, { backend: "C" }],
    sticky: { name: "lb" },
    async script(p) {
      await p.round("24 new clients", 24);
    },
  },
  {
    id: "m18",
    title: "every server refusing: the tries, then 502",
    servers: [{ backend: "A" }, { backend: "B" }],
    sticky: {},
    reachesNoBackend: true,
    async script(p) {
      await p.backend("A").close();
      await p.backend("B").close();
      try {
        await p.ask("row 13: no cookie, both refuse → 502", {}, ALL_REFUSED_502_COOKIE);
        await p.ask("both failed now → 502 at once");
      } finally {
        await p.backend("A").restart();
        await p.backend("B").restart();
      }
    },
  },
  {
    id: "m19",
    title: "row 12: a failed server is used again once fail_timeout (1s) has passed",
    servers: [{ backend: "A", failTimeout: "1s" }, { backend: "B", failTimeout: "1s" }],
    sticky: {},
    async script(p) {
      const b = [`route=${p.value("B")}`];
      await p.backend("B").close();
      try {
        await p.ask("row 8: the cookie of B (refusing) → A, its cookie", { cookies: b });
        await p.ask("row 10: B failed → A without trying B", { cookies: b });
      } finally {
        await p.backend("B").restart();
      }
      await p.ask("B is back but still failed → A", { cookies: b });
      await p.sleep(2100);
      await p.ask("row 12: fail_timeout passed → B, no Set-Cookie", { cookies: b });
    },
  },
  {
    id: "m20",
    title: "max_fails=2: a refusing server is tried twice before it is skipped",
    servers: [{ backend: "A" }, { backend: "B", maxFails: 2 }, { backend: "C" }],
    sticky: {},
    async script(p) {
      const b = [`route=${p.value("B")}`];
      await p.backend("B").close();
      try {
        await p.ask("first failure: tried, then another server", { cookies: b });
        await p.ask("second failure: tried, then another server", { cookies: b });
        await p.ask("now failed: not tried", { cookies: b });
        await p.round("new clients", 3, {}, RR_ORDER_UNAVAILABLE);
      } finally {
        await p.backend("B").restart();
      }
    },
  },
  {
    id: "m21",
    title: "new clients right after a failed server is back",
    servers: [{ backend: "A", failTimeout: "1s" }, { backend: "B", failTimeout: "1s" }],
    sticky: {},
    async script(p) {
      await p.backend("B").close();
      try {
        await p.ask("the cookie of B (refusing) → A", { cookies: [`route=${p.value("B")}`] });
      } finally {
        await p.backend("B").restart();
      }
      await p.sleep(2100);
      await p.round("new clients once B is back", 4, {}, SLOW_START_AFTER_FAILURE);
    },
  },
  {
    id: "m22",
    title: "IPv6 servers: text=raw over `[::1]:port` (brackets in the value)",
    servers: [{ backend: "A", spelling: "ipv6" }, { backend: "B", spelling: "ipv6" }, {
      backend: "C",
    }],
    sticky: { mode: "raw", name: "v6" },
    async script(p) {
      await p.round("new clients", 3);
      for (const letter of ["B", "C", "A"]) {
        await p.ask(`the value of ${letter}`, { cookies: [`v6=${p.value(letter)}`] });
      }
    },
  },
  {
    id: "m23",
    title: "a POST with a body whose cookie names a refusing server: retried with its body",
    servers: three,
    sticky: {},
    async script(p) {
      await p.backend("B").close();
      try {
        await p.ask("row 8 for a POST: B refuses, another server answers, its cookie", {
          method: "POST",
          body: "a=1&b=two",
          cookies: [`route=${p.value("B")}`],
        });
        await p.ask("a POST with the cookie of C → C", {
          method: "POST",
          body: "x".repeat(10_000),
          cookies: [`route=${p.value("C")}`],
        });
      } finally {
        await p.backend("B").restart();
      }
    },
  },
];
